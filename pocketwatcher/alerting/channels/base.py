"""The one interface every channel implements, and the HTTP plumbing the web ones share.

A channel turns an alert into requests and their answer into an ``Outcome``: sent (with
the service's message id), retry (with the server's ``retry_after`` when it gave one) or
dead (with the reason), optionally asking the dispatcher to disable the channel. It
never raises for a delivery problem and never touches the database: retries, backoff,
attempt records and states are the dispatcher's, so a new channel is one module with a
``send``.

A channel's ``send`` may make more than one request (Telegram's plain-text fallback, a
chat migration): together they are one attempt, and the outcome's ``error`` says what
happened on the way.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import httpx

from ..config import ResolvedChannel
from ..pacing import Pacer, Window
from ..redact import get_logger, redact
from ..render import AlertView, dumps

log = get_logger(__name__)
USER_AGENT = "pocketwatcher-alerts/0.1"
PaceKeys = list[tuple[str, Sequence[Window]]]


@dataclass(slots=True)
class Outcome:
    kind: Literal["sent", "retry", "dead"]
    status: int | None = None
    error: str | None = None
    external_id: str | None = None
    retry_after: float | None = None  # what the server asked for (429); None: use backoff
    global_limit: bool = False
    disable: str | None = None  # why the whole channel should stop (the webhook is gone)

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


class Channel(ABC):
    kind: ClassVar[str]

    def __init__(self, resolved: ResolvedChannel, pacer: Pacer) -> None:
        self.name = resolved.name
        self.settings = resolved.settings
        self.pacer = pacer
        self.notices: list[str] = []

    @abstractmethod
    async def send(self, alert: AlertView) -> Outcome:
        """Deliver one alert; report, never raise, what happened."""

    def pace_keys(self) -> PaceKeys:
        """The destinations a request counts against (empty: unpaced)."""
        return []

    def windows(self, default: Sequence[Window]) -> tuple[Window, ...]:
        rate = self.settings.rate
        return tuple(default) if rate is None else tuple(Window(r.count, r.per_s) for r in rate)

    def notice(self, text: str) -> None:
        """Something an operator must act on (a disabled webhook, a migrated chat)."""
        text = redact(text)
        self.notices.append(text)
        log.warning("%s", text)

    async def aclose(self) -> None:
        return None


def retry_after_header(headers: httpx.Headers) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def json_body(resp: httpx.Response) -> dict:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def snippet(resp: httpx.Response, limit: int = 300) -> str:
    text = " ".join(resp.text.split())
    return redact(text[:limit] + ("…" if len(text) > limit else ""))


class HttpChannel(Channel):
    """A channel that POSTs JSON; one client per channel so a stalled one holds only itself."""

    def __init__(self, resolved: ResolvedChannel, pacer: Pacer) -> None:
        super().__init__(resolved, pacer)
        self.timeout_s = self.settings.timeout_s
        self.secret_parts: tuple[str, ...] = (resolved.secret.get(),) if resolved.secret else ()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s), follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            limits=httpx.Limits(max_connections=self.settings.concurrency + 1))

    async def post(self, url: str | httpx.URL, payload: dict) -> httpx.Response | Outcome:
        """POST after pacing, within ``timeout_s`` in total (connect + send + the whole answer)."""
        await self.pacer.acquire(self.pace_keys())
        body = dumps(payload)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.client.post(url, content=body)
        except (TimeoutError, httpx.TimeoutException):
            return Outcome("retry", None, f"timeout: no complete answer within {self.timeout_s:g} s")
        except httpx.TransportError as e:
            return Outcome("retry", None, f"network error: {type(e).__name__}: {self._redact(e)}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as e:
            reason = f"the URL of channel '{self.name}' is invalid ({self._redact(e)}); fix the config"
            return Outcome("dead", None, reason, disable=reason)

    def _redact(self, e: object) -> str:
        return redact(e, self.secret_parts) or "no detail"

    def classify(self, resp: httpx.Response, service: str, disable_on: tuple[int, ...] = (401, 404, 410),
                 ) -> Outcome:
        """The common reading of a status: 2xx sent; 429, 408, 5xx retry; other 4xx dead."""
        s = resp.status_code
        if 200 <= s < 300:
            ext = json_body(resp).get("id")
            return Outcome("sent", s, external_id=str(ext) if ext is not None else None)
        if s == 429:
            ra = retry_after_header(resp.headers)
            return Outcome("retry", s, f"{service} rate limited this channel"
                           + (f"; retry after {ra:g} s" if ra is not None else ""), retry_after=ra)
        if s >= 500 or s == 408:
            return Outcome("retry", s, f"{service} answered {s}: {snippet(resp, 120)}")
        reason = f"{service} answered {s}: {snippet(resp)}"
        if s in disable_on:
            why = (f"channel '{self.name}' disabled: {service} answered {s}, so its URL is wrong or "
                   "was revoked; fix the config and run `pocketwatcher alerts retry-dead`")
            return Outcome("dead", s, reason, disable=why)
        return Outcome("dead", s, reason)

    async def aclose(self) -> None:
        await self.client.aclose()
