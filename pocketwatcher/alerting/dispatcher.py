"""The dispatcher: outbox → channels, every alert delivered once, through 429s, outages and crashes.

Each channel has its own workers (``concurrency``), HTTP client and pacing keys, so a
slow or failing channel only ever holds up itself. A worker waits until its channel
may send, claims one due delivery, sends it, and records the attempt and the new state
in one statement (``outbox.RECORD``). Failures are rescheduled in the database (not
slept on) with exponential backoff and equal jitter, or after the server's
``retry_after``; the worker moves on meanwhile and is woken when the retry falls due.

Crashes: a claim is a lease, renewed while its request is in flight; a dispatcher that
dies leaves ``sending`` rows whose lease runs out, and any dispatcher then claims them
again. So an alert is sent at least once, and twice only if the process dies while its
request is on the wire or before the one statement that records the answer commits
(measured: a SIGKILL duplicates at most the ``concurrency`` requests in flight per
channel). A request that times out after the service accepted it is the same window:
neither Discord nor Telegram takes an idempotency key, so it cannot be closed further.
Deliveries to a channel that is not configured, or that was disabled (its webhook is
gone), go dead with the reason; nothing waits forever.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Sequence

import asyncpg

from . import outbox
from .channels import Channel, Outcome, make_channel
from .config import AlertingConfig
from .pacing import Pacer
from .redact import get_logger, redact
from .render import AlertView

log = get_logger(__name__)
DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class Dispatcher:
    def __init__(self, database: str | asyncpg.Pool, config: AlertingConfig, *, name: str | None = None,
                 rng: random.Random | None = None) -> None:
        self.database = database
        self.config = config
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.pacer = Pacer()
        self.rng = rng or random.Random()
        self.channels: dict[str, Channel] = {}
        self.disabled: dict[str, str] = {}  # channel → reason (this process only)
        self.counts: dict[str, Counter] = {}
        self._inflight: set[tuple[str, str]] = set()
        self._wake: dict[str, asyncio.Event] = {}

    # -- public ---------------------------------------------------------------------------
    @property
    def notices(self) -> list[str]:
        """What an operator must act on: disabled channels, migrated chats."""
        return [n for ch in self.channels.values() for n in ch.notices]

    def stats(self) -> dict:
        """Per channel: attempts, sent, dead, retried, rate_limited; seconds spent pacing; disabled channels."""
        out: dict = {name: dict(c) for name, c in self.counts.items()}
        out["paced_s"] = round(self.pacer.waited_s, 3)
        if self.disabled:
            out["disabled"] = dict(self.disabled)
        return out

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set, then finish the requests in flight and return."""
        own = not isinstance(self.database, asyncpg.Pool)
        size = sum(c.settings.concurrency for c in self.config.channels.values()) + 3
        pool = await asyncpg.create_pool(self.database, min_size=1, max_size=size) if own else self.database
        workers: list[asyncio.Task] = []
        chores: list[asyncio.Task] = []
        listener = None
        try:
            self.channels = {n: make_channel(rc, self.pacer) for n, rc in self.config.channels.items()}
            self._wake = {n: asyncio.Event() for n in self.channels}
            self.counts = {n: Counter() for n in self.channels}
            listener = await self._listen(pool)
            workers = [asyncio.create_task(self._worker(ch, pool, stop), name=f"dispatch:{n}:{i}")
                       for n, ch in self.channels.items() for i in range(ch.settings.concurrency)]
            chores = [asyncio.create_task(self._heartbeat(pool)), asyncio.create_task(self._sweeper(pool, stop))]
            await stop.wait()
            for ev in self._wake.values():
                ev.set()
            drain_s = max((c.settings.timeout_s for c in self.channels.values()), default=1.0) * 2 + 5
            _, late = await asyncio.wait(workers, timeout=drain_s)
            for t in late:
                t.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        finally:
            for t in workers + chores:
                t.cancel()
            await asyncio.gather(*workers, *chores, return_exceptions=True)
            if listener is not None:
                await _quietly(listener.remove_listener(outbox.NOTIFY, self._notified))
                await _quietly(pool.release(listener))
            for ch in self.channels.values():
                await ch.aclose()
            if own:
                await pool.close()

    async def run_until_idle(self, alert_ids: Sequence[str] | None = None, timeout: float | None = None) -> bool:
        """Run until every delivery (of ``alert_ids``, or all) is sent or dead; False on timeout."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        deadline = None if timeout is None else time.monotonic() + timeout
        ids = list(alert_ids) if alert_ids is not None else None
        conn = await asyncpg.connect(self.database) if isinstance(self.database, str) else None
        try:
            while not task.done():
                await asyncio.sleep(0.05)
                try:
                    if conn is not None:
                        n = await outbox.open_count(conn, ids)
                    else:
                        async with self.database.acquire() as c:
                            n = await outbox.open_count(c, ids)
                except DB_ERRORS as e:
                    log.warning("could not count open deliveries: %s", redact(e))
                    continue
                if n == 0:
                    return True
                if deadline is not None and time.monotonic() > deadline:
                    return False
            task.result()
            return False
        finally:
            stop.set()
            await task
            if conn is not None:
                await conn.close()

    # -- workers ----------------------------------------------------------------------------
    async def _worker(self, ch: Channel, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        lease, poll = self.config.dispatcher.lease_s, self.config.dispatcher.poll_s
        while not stop.is_set() and ch.name not in self.disabled:
            if (d := self.pacer.delay(ch.pace_keys())) > 0:
                await _sleep(stop, min(d, poll))
                continue
            try:
                rows = await pool.fetch(outbox.CLAIM, ch.name, 1, self.name, lease)
                if rows:
                    await self._deliver(ch, rows[0], pool)
                else:
                    await self._idle(ch.name, stop, poll)
            except DB_ERRORS as e:
                log.warning("channel %s: cannot claim work (%s); retrying in %.1f s", ch.name, redact(e), poll)
                await _sleep(stop, poll)
            except Exception:  # a bug must not silence the channel; its claim runs out and is retried
                log.exception("channel %s: unexpected error in the worker", ch.name)
                await _sleep(stop, poll)

    async def _idle(self, channel: str, stop: asyncio.Event, poll: float) -> None:
        ev = self._wake[channel]
        if not ev.is_set() and not stop.is_set():
            try:
                await asyncio.wait_for(ev.wait(), poll)
            except TimeoutError:
                pass
        ev.clear()

    async def _deliver(self, ch: Channel, row, pool: asyncpg.Pool) -> None:
        alert = AlertView.from_record(row)
        key = (alert.id, ch.name)
        if row["previous_state"] == "sending":
            log.info("alert %s on %s: an earlier claim ran out (a dispatcher died mid-send?); sending again",
                     alert.id, ch.name)
        self._inflight.add(key)
        t0 = time.monotonic()
        try:
            out = await ch.send(alert)
        except asyncio.CancelledError:
            await asyncio.shield(_quietly(pool.execute(outbox.RELEASE, alert.id, ch.name, self.name)))
            self._inflight.discard(key)
            raise
        except Exception as e:  # a bug in a channel must not stop the others: retry, then dead
            log.exception("channel %s: unexpected error sending alert %s", ch.name, alert.id)  # redacted
            out = Outcome("retry", None, f"internal error: {type(e).__name__}: {redact(e)}")
        ms = int((time.monotonic() - t0) * 1000)
        state, reason, delay = self._decide(ch, row, out)
        args = (alert.id, ch.name, out.status, _clip(out.error), ms, state, out.external_id, _clip(reason),
                delay, self.name)
        await self._record(pool, args)
        self._inflight.discard(key)
        c = self.counts[ch.name]
        c["attempts"] += 1
        c[state if state != "pending" else ("rate_limited" if out.rate_limited else "retried")] += 1
        if out.disable:
            self.disabled.setdefault(ch.name, out.disable)
        if state == "pending":
            asyncio.get_running_loop().call_later(delay, self._wake[ch.name].set)
            log.info("alert %s on %s: %s; retry in %.2f s", alert.id, ch.name, out.error, delay)
        elif state == "dead":
            log.warning("alert %s on %s is dead: %s", alert.id, ch.name, reason)

    def _decide(self, ch: Channel, row, out: Outcome) -> tuple[str, str | None, float]:
        """(new state, dead reason, seconds until the next attempt) for an attempt's outcome."""
        s = ch.settings
        if out.kind == "sent":
            return "sent", None, 0.0
        if out.kind == "dead":
            return "dead", out.error or "rejected", 0.0
        if out.rate_limited:
            limited = row["attempts"] - row["failures"] + 1
            if limited >= s.max_rate_limited:
                return "dead", f"gave up after {limited} rate-limited attempts; last: {out.error}", 0.0
            return "pending", None, out.retry_after if out.retry_after is not None else self.backoff(s, limited)
        failures = row["failures"] + 1
        if failures >= s.max_attempts:
            return "dead", f"gave up after {failures} failed attempts; last: {out.error}", 0.0
        return "pending", None, out.retry_after if out.retry_after is not None else self.backoff(s, failures)

    def backoff(self, s, n: int) -> float:
        """Exponential, capped, with equal jitter: half fixed, half random, so retries spread out."""
        d = min(s.backoff_max_s, s.backoff_base_s * 2 ** (n - 1))
        return d / 2 + self.rng.random() * d / 2

    async def _record(self, pool: asyncpg.Pool, args: tuple) -> None:
        for i in range(30):
            try:
                status = await pool.execute(outbox.RECORD, *args)
            except DB_ERRORS as e:
                log.warning("alert %s on %s: cannot record the attempt (%s); retrying", args[0], args[1], redact(e))
                await asyncio.sleep(min(5.0, 0.1 * 2**i))
                continue
            if status.endswith(" 0"):
                log.warning("alert %s on %s: the claim was lost before the attempt was recorded (lease too "
                            "short?); outcome %s kept in alert_attempts", args[0], args[1], args[5])
            return
        log.error("alert %s on %s: attempt not recorded; its lease will run out and it will be sent again",
                  args[0], args[1])

    # -- chores -------------------------------------------------------------------------------
    async def _heartbeat(self, pool: asyncpg.Pool) -> None:
        """Renew the leases of deliveries in flight, so a slow send is never taken over."""
        lease = self.config.dispatcher.lease_s
        while True:
            await asyncio.sleep(lease / 3)
            if self._inflight:
                try:
                    await pool.execute(outbox.RENEW, self.name, lease)
                except DB_ERRORS as e:
                    log.warning("cannot renew claims: %s", redact(e))

    async def _sweeper(self, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        """Deliveries no worker here will ever take go dead now, with the reason."""
        while not stop.is_set():
            try:
                rows = await pool.fetch(outbox.KILL_UNCONFIGURED, list(self.channels),
                                        list(self.config.switched_off))
                for name, n in sorted(Counter(r["channel"] for r in rows).items()):
                    log.warning("%d deliveries to channel '%s' marked dead: it is %s", n, name,
                                "disabled in the config" if name in self.config.switched_off else
                                f"not configured (add [channels.{name}] or drop it from the trigger)")
                for name, reason in list(self.disabled.items()):
                    await pool.execute(outbox.KILL_CHANNEL, name, reason)
            except DB_ERRORS as e:
                log.warning("sweeper: %s", redact(e))
            await _sleep(stop, self.config.dispatcher.poll_s)

    async def _listen(self, pool: asyncpg.Pool):
        """LISTEN for new alerts so delivery starts at once; polling covers a lost connection."""
        try:
            conn = await pool.acquire()
            await conn.add_listener(outbox.NOTIFY, self._notified)
            return conn
        except DB_ERRORS as e:
            log.warning("cannot LISTEN for new alerts (%s); polling every %.1f s", redact(e),
                        self.config.dispatcher.poll_s)
            return None

    def _notified(self, *_args) -> None:
        for ev in self._wake.values():
            ev.set()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass


async def _quietly(aw) -> None:
    try:
        await aw
    except (Exception, asyncio.CancelledError):  # cleanup must not mask the original error
        pass


def _clip(text: str | None, limit: int = 1000) -> str | None:
    return None if text is None else redact(text)[:limit]
