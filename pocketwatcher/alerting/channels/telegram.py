"""Telegram: the Bot API's ``sendMessage`` in HTML mode.

HTML rather than MarkdownV2 because only ``& < >`` need escaping (MarkdownV2 has 18
reserved characters and rejects the whole message on one miss). Should Telegram still
refuse the entities (``can't parse entities``), the same message goes again at once as
plain text, so a formatting bug never costs an alert. A group upgraded to a supergroup
answers 400 with ``parameters.migrate_to_chat_id``: the channel switches to the new id,
resends, and reports it (put the new id in the config: the switch lives in memory).

Pacing: 1 message per second per chat, 20 per minute in a group or channel (negative
ids, ``@name``), 30 per second per bot over every chat; a 429's ``parameters.retry_after`` pauses the chat.
401 (bad token), 403 (bot blocked or removed) and 404 disable the channel: every
message would fail the same way.
"""

from __future__ import annotations

import hashlib

import httpx

from ..config import ResolvedChannel
from ..pacing import TELEGRAM_BOT, TELEGRAM_CHAT, TELEGRAM_GROUP, Pacer
from ..render import AlertView, plain_text, telegram_html
from .base import HttpChannel, Outcome, PaceKeys, json_body, retry_after_header, snippet


class TelegramChannel(HttpChannel):
    kind = "telegram"

    def __init__(self, resolved: ResolvedChannel, pacer: Pacer) -> None:
        super().__init__(resolved, pacer)
        token = resolved.secret.get()
        self.url = httpx.URL(f"{self.settings.api_base.rstrip('/')}/bot{token}/sendMessage")
        self.bot_key = "telegram:bot:" + hashlib.sha256(token.encode()).hexdigest()[:12]
        self.chat_id = resolved.chat_id

    @property
    def chat_key(self) -> str:
        return f"telegram:chat:{self.chat_id}"

    def pace_keys(self) -> PaceKeys:
        group = isinstance(self.chat_id, str) or self.chat_id < 0  # "@channel" posts like a group
        bot = TELEGRAM_BOT if self.settings.rate is None or self.settings.rate else ()
        return [(self.chat_key, self.windows(TELEGRAM_GROUP if group else TELEGRAM_CHAT)), (self.bot_key, bot)]

    def _payload(self, text: str, html: bool) -> dict:
        p: dict = {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True}
        if html:
            p["parse_mode"] = "HTML"
        if self.settings.message_thread_id is not None:
            p["message_thread_id"] = self.settings.message_thread_id
        if self.settings.disable_notification:
            p["disable_notification"] = True
        return p

    async def send(self, alert: AlertView) -> Outcome:
        text, html, notes = telegram_html(alert), True, []
        for _ in range(4):
            resp = await self.post(self.url, self._payload(text, html))
            if isinstance(resp, Outcome):
                return resp
            body, s = json_body(resp), resp.status_code
            if 200 <= s < 300 and body.get("ok") is True:
                msg = (body.get("result") or {}).get("message_id")
                return Outcome("sent", s, "; ".join(notes) or None, str(msg) if msg is not None else None)
            desc = self._redact(body.get("description") or snippet(resp))
            params = body.get("parameters") or {}
            new_chat = params.get("migrate_to_chat_id")
            if new_chat is not None and new_chat != self.chat_id:
                old, self.chat_id = self.chat_id, new_chat
                notes.append(f"chat {old} migrated to {new_chat}")
                self.notice(f"channel '{self.name}': Telegram group {old} became supergroup {new_chat}; "
                            f"now posting there; set chat_id = {new_chat} in the config")
                continue
            if s == 400 and html and "parse entities" in desc.lower():
                text, html = plain_text(alert), False
                notes.append(f"sent as plain text: Telegram rejected the HTML ({desc})")
                continue
            return self._failure(s, desc, params, resp)
        return Outcome("dead", None, "gave up: the chat kept migrating; check chat_id")

    def _failure(self, s: int, desc: str, params: dict, resp: httpx.Response) -> Outcome:
        if s == 429:
            ra = params.get("retry_after")
            ra = float(ra) if isinstance(ra, int | float) and not isinstance(ra, bool) else None
            ra = ra if ra is not None else (retry_after_header(resp.headers) or 1.0)
            self.pacer.block(self.chat_key, ra)
            return Outcome("retry", 429, f"Telegram rate limit: retry after {ra:g} s", retry_after=ra)
        if s >= 500 or s == 408:
            return Outcome("retry", s, f"Telegram answered {s}: {desc}")
        if s in (401, 403, 404):
            why = (f"channel '{self.name}' disabled: Telegram answered {s} ({desc}); check the bot token "
                   "and that the bot may post in the chat, then run `pocketwatcher alerts retry-dead`")
            self.notice(why)
            return Outcome("dead", s, f"Telegram answered {s}: {desc}", disable=why)
        return Outcome("dead", s, f"Telegram answered {s}: {desc}")
