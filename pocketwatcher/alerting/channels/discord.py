"""Discord: one rich embed per alert through an incoming webhook.

``?wait=true`` makes Discord answer with the created message (200 + its id, stored as
the delivery's external id) instead of 204, so a rejected message is seen at once.
The URL is pinned to API v10: the unversioned ``/api/webhooks/...`` a user copies from
the channel settings runs the retired v6, whose ``retry_after`` is in milliseconds.

Rate limits: the documented pace (5 per 2 s per webhook, 30 per minute per channel; a
webhook posts to one channel) is kept by the pacer; ``X-RateLimit-Remaining: 0`` pauses
the webhook for ``X-RateLimit-Reset-After``; a 429 pauses the webhook, or every Discord
channel when the limit is global (``"global": true``, ``X-RateLimit-Global`` or
``X-RateLimit-Scope: global``), for ``retry_after`` (body, float seconds) or the
headers. 401 and 404 mean the webhook was deleted or its token is wrong: the channel is
disabled and reported, naming the channel, never the URL.
"""

from __future__ import annotations

import re

import httpx

from ..config import ResolvedChannel
from ..pacing import DISCORD_WEBHOOK, Pacer
from ..render import AlertView, discord_payload
from .base import HttpChannel, Outcome, PaceKeys, json_body, retry_after_header

GLOBAL_KEY = "discord:global"
_HOOK = re.compile(r"^(?P<base>.*?)(?:/v\d+)?/webhooks/(?P<id>\d+)/(?P<rest>[^?#]+)")


def webhook_url(url: str, api_base: str | None = None) -> tuple[httpx.URL, str]:
    """The v10 execute URL with ``wait=true`` (query kept, e.g. ``thread_id``), and the webhook id."""
    u = httpx.URL(url)
    m = _HOOK.match(str(u.copy_with(query=None, fragment=None)))
    if not m:
        raise ValueError("not a Discord webhook URL (…/api/webhooks/<id>/<token>)")
    base = (api_base or m.group("base")).rstrip("/")
    if re.search(r"/v\d+$", base) is None:
        base += "/v10"
    target = httpx.URL(f"{base}/webhooks/{m.group('id')}/{m.group('rest')}", params=u.params)
    return target.copy_merge_params({"wait": "true"}), m.group("id")


class DiscordChannel(HttpChannel):
    kind = "discord"

    def __init__(self, resolved: ResolvedChannel, pacer: Pacer) -> None:
        super().__init__(resolved, pacer)
        self.url, self.webhook_id = webhook_url(resolved.secret.get(), self.settings.api_base)
        self.route_key = f"discord:webhook:{self.webhook_id}"
        self._keys: PaceKeys = [(self.route_key, self.windows(DISCORD_WEBHOOK)), (GLOBAL_KEY, ())]

    def pace_keys(self) -> PaceKeys:
        return self._keys

    async def send(self, alert: AlertView) -> Outcome:
        s = self.settings
        resp = await self.post(self.url, discord_payload(alert, s.username, s.avatar_url))
        if isinstance(resp, Outcome):
            return resp
        self._follow_bucket(resp)
        if resp.status_code != 429:
            out = self.classify(resp, "Discord")
            if out.disable:
                self.notice(out.disable)
            return out
        body = json_body(resp)
        ra = _float(body.get("retry_after"))
        if ra is None:
            ra = _float(resp.headers.get("x-ratelimit-reset-after"))
        if ra is None:
            ra = retry_after_header(resp.headers)
        if ra is None:
            ra = 1.0
        glob = (body.get("global") is True or resp.headers.get("x-ratelimit-global", "").lower() == "true"
                or resp.headers.get("x-ratelimit-scope", "").lower() == "global")
        self.pacer.block(GLOBAL_KEY if glob else self.route_key, ra)
        scope = "global" if glob else "webhook"
        return Outcome("retry", 429, f"Discord rate limit ({scope}): retry after {ra:g} s", retry_after=ra,
                       global_limit=glob)

    def _follow_bucket(self, resp: httpx.Response) -> None:
        """An exhausted bucket pauses the webhook until it resets: the next request would be a 429."""
        if resp.headers.get("x-ratelimit-remaining") == "0":
            reset = _float(resp.headers.get("x-ratelimit-reset-after"))
            if reset:
                self.pacer.block(self.route_key, reset)


def _float(v: object) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f >= 0 else None
