"""A generic JSON webhook: the alert as a JSON document, for tools that are not chat apps.

The body is ``AlertView.to_json()``: the alert's fields, its features, links and a
plain ``text`` rendering. 2xx is delivered (a JSON ``id`` in the answer is kept as the
external id); 408, 429 (``Retry-After`` honoured) and 5xx are retried; 401, 404 and 410
disable the channel; any other status is final.
"""

from __future__ import annotations

from ..config import ResolvedChannel
from ..pacing import Pacer
from ..render import AlertView
from .base import HttpChannel, Outcome, PaceKeys


class WebhookChannel(HttpChannel):
    kind = "webhook"

    def __init__(self, resolved: ResolvedChannel, pacer: Pacer) -> None:
        super().__init__(resolved, pacer)
        self.url = resolved.secret.get()
        self._keys: PaceKeys = [(f"webhook:{self.name}", self.windows(()))]

    def pace_keys(self) -> PaceKeys:
        return self._keys

    async def send(self, alert: AlertView) -> Outcome:
        resp = await self.post(self.url, alert.to_json())
        if isinstance(resp, Outcome):
            return resp
        out = self.classify(resp, "the webhook")
        if out.rate_limited and out.retry_after is not None:
            self.pacer.block(self._keys[0][0], out.retry_after)
        if out.disable:
            self.notice(out.disable)
        return out
