"""Pace requests to each destination below its documented limits, so 429s stay rare.

A destination is a key (a Discord webhook, a Telegram chat, a bot token, ...) with one or
more sliding windows (``count`` requests per ``per_s`` seconds); a request waits until
every key it touches has room, then is counted in all of them at once. A key can also
be blocked until a time, which is how a 429's ``retry_after`` (or Discord's
``X-RateLimit-Remaining: 0``) pauses its route, or with a global limit every route of the
service. Windows are sliding logs rather than token buckets because Discord and Telegram
count requests in windows: a bucket refilled continuously would allow 6 in 2 s.

Pacing is per process: several dispatchers sharing a webhook should split its limits
(``rate`` in the channel config) or rely on the 429 handling.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MARGIN_S = 0.05  # the service's clock and ours disagree by a round trip; stay clear of the edge


@dataclass(frozen=True, slots=True)
class Window:
    count: int
    per_s: float


@dataclass(slots=True)
class _Key:
    windows: tuple[Window, ...]
    sent: deque = field(default_factory=deque)  # send times, oldest first
    blocked_until: float = 0.0


# Documented limits. Discord: ~5 requests / 2 s per webhook, 30 messages / min per channel
# (one webhook = one channel here). Telegram: 1 msg/s per chat, 20 msg/min per group,
# 30 msg/s per bot overall.
DISCORD_WEBHOOK = (Window(5, 2.0), Window(30, 60.0))
TELEGRAM_CHAT = (Window(1, 1.0),)
TELEGRAM_GROUP = (Window(1, 1.0), Window(20, 60.0))
TELEGRAM_BOT = (Window(30, 1.0),)


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.keys: dict[str, _Key] = {}
        self.waited_s = 0.0

    def _key(self, name: str, windows: Sequence[Window]) -> _Key:
        k = self.keys.get(name)
        if k is None or k.windows != tuple(windows):
            k = self.keys[name] = _Key(tuple(windows), k.sent if k else deque(), k.blocked_until if k else 0.0)
        return k

    def delay(self, keys: Sequence[tuple[str, Sequence[Window]]]) -> float:
        """Seconds until a request to all ``keys`` may go (0: now)."""
        now = self.clock()
        wait = 0.0
        for name, windows in keys:
            k = self._key(name, windows)
            wait = max(wait, k.blocked_until - now)
            longest = max((w.per_s for w in k.windows), default=0.0)
            while k.sent and k.sent[0] <= now - longest - MARGIN_S:
                k.sent.popleft()
            for w in k.windows:
                recent = [t for t in k.sent if t > now - w.per_s - MARGIN_S]
                if len(recent) >= w.count:
                    wait = max(wait, recent[-w.count] + w.per_s + MARGIN_S - now)
        return max(wait, 0.0)

    async def wait_ready(self, keys: Sequence[tuple[str, Sequence[Window]]]) -> None:
        """Wait until ``keys`` have room, without taking it (used before claiming work)."""
        while (d := self.delay(keys)) > 0:
            await asyncio.sleep(d)

    async def acquire(self, keys: Sequence[tuple[str, Sequence[Window]]]) -> float:
        """Wait for room in every key, then count one request in each; return the seconds waited."""
        start = self.clock()
        while (d := self.delay(keys)) > 0:
            await asyncio.sleep(d)
        now = self.clock()
        for name, windows in keys:
            self._key(name, windows).sent.append(now)
        self.waited_s += now - start
        return now - start

    def block(self, name: str, seconds: float) -> None:
        """Nothing goes to ``name`` for ``seconds`` (a 429's retry_after, an exhausted bucket)."""
        k = self.keys.setdefault(name, _Key(()))
        k.blocked_until = max(k.blocked_until, self.clock() + seconds)
