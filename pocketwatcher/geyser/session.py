"""One replay ``Subscribe`` stream: requests in, the capture out at the configured pace.

Requests (filters, pings) are taken between batches of updates, either polled without
a thread (see ``grpc_shims``) or from a reader thread blocked on the request iterator
(public API only). A ping is answered with a pong and changes nothing; any other
request replaces the whole filter set and keeps the position, unless it carries
``from_slot`` (rewind/skip there) or a new commitment (continue from the current slot
in that commitment's order), as on Yellowstone.

Pace: record ``i`` is due ``(t_i - t_start) / speed`` after the subscription started
(``t`` = the record's ``created_at``); ``speed=None`` sends as fast as the client reads,
which grpc's flow control turns into backpressure. Server pings go out every
``ping_interval`` (the first at once, like Yellowstone's interval timer), during data too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc

from ..proto import geyser_pb2 as pb
from .filters import Filter, FilterError, compile_request
from .grpc_shims import RequestPoller, hint_setter

if TYPE_CHECKING:
    from .server import ReplayServer

_EMPTY = Filter([], [], [], 0)
BATCH = 256  # updates taken per pass over the capture; pings and requests are checked between passes


def _now_update(**fields) -> bytes:
    msg = pb.SubscribeUpdate(**fields)
    msg.created_at.GetCurrentTime()
    return msg.SerializeToString()


class Session:
    """One ``Subscribe`` stream; ``run()`` is the response iterator grpc pulls from."""

    def __init__(self, server: ReplayServer, requests: Iterator, context) -> None:
        self.srv, self.ctx = server, context
        self.index = server.index
        self.ctl: deque = deque()
        self.wake = threading.Event()
        self.done = False
        self.error: tuple[grpc.StatusCode, str] | None = None
        self.flt: Filter = _EMPTY
        self.started = False
        self.order = self.index.order(0)
        self.i = 0
        self.t0 = self.r0 = 0.0
        self.deadline = 0.0
        self.next_ping = time.monotonic()  # Yellowstone's ping interval ticks at once
        fast = server.fast_path
        self.set_hint = hint_setter(context) if fast else None
        self.poller = RequestPoller(requests) if fast and RequestPoller.usable(requests) else None
        context.add_callback(self._gone)
        if self.poller is None:
            threading.Thread(target=self._read, args=(requests,), daemon=True,
                             name="replay-requests").start()

    def _gone(self) -> None:
        self.done = True
        self.wake.set()

    def _take(self, req) -> bool:
        """Pings get a pong and leave the filter alone; any other request replaces it."""
        if req.HasField("ping"):
            self.ctl.append(("pong", req.ping.id))
            return True
        try:
            flt = compile_request(req, self.srv.limits)
        except FilterError as e:
            self.ctl.append(("error", grpc.StatusCode.INVALID_ARGUMENT, f"failed to create filter: {e}"))
            return False
        self.ctl.append(("filter", flt, req.from_slot if req.HasField("from_slot") else None))
        return True

    def _read(self, requests: Iterator) -> None:
        """The public-API reader: a thread blocked on the request iterator."""
        try:
            for req in requests:
                ok = self._take(req)
                self.wake.set()
                if not ok:
                    return
        except Exception:  # the call ended under us: cancelled, deadline, server stop
            self._gone()
        # A half-closed request stream is normal (the client only listens now): keep serving.

    def _poll(self) -> None:
        try:
            while (req := self.poller.poll()) is not None:
                if not self._take(req):
                    self.poller = None
                    return
        except StopIteration:
            self.poller = None  # half-closed: nothing more to read, keep serving
        except Exception:
            self.poller = None
            self._gone()

    def _wait(self) -> None:
        timeout = self.deadline - time.monotonic()
        if timeout > 0:
            if self.poller is not None:
                self.poller.wait(timeout)
            else:
                self.wake.wait(timeout)
        self.wake.clear()

    def _apply(self, flt: Filter, from_slot: int | None) -> None:
        idx = self.index
        if from_slot is not None and idx.first_slot is not None and from_slot < idx.first_slot:
            self.error = (grpc.StatusCode.INTERNAL,
                          f"broadcast from {from_slot} is not available, last available: {idx.first_slot}")
            self.done = True
            return
        if not self.started or from_slot is not None or flt.commitment != self.flt.commitment:
            order = idx.order(flt.commitment)
            if from_slot is not None:
                pos = order.start_for(from_slot)
            elif self.started and self.i < len(self.order.recs):
                pos = order.start_for(self.order.recs[self.i].slot)
            else:
                pos = len(order.recs) if self.started else 0
            self.order, self.i = order, pos
            self.t0 = time.monotonic()
            self.r0 = order.times[pos] if pos < len(order.times) else 0.0
        self.flt, self.started = flt, True

    def _step(self) -> list[bytes]:
        """Updates that may go out now, up to ``BATCH``; empty: wait until ``deadline``."""
        if self.poller is not None:
            self._poll()
        ctl = self.ctl
        while ctl:
            item = ctl.popleft()
            if item[0] == "pong":
                return [_now_update(pong=pb.SubscribeUpdatePong(id=item[1]))]
            if item[0] == "filter":
                self._apply(item[1], item[2])
            else:
                self.error, self.done = (item[1], item[2]), True
            if self.done:
                return []
        now = time.monotonic()
        if now >= self.next_ping:
            self.next_ping = now + self.srv.ping_interval
            return [_now_update(ping=pb.SubscribeUpdatePing())]
        self.deadline = self.next_ping
        if not self.started:
            return []
        recs, times, i, n = self.order.recs, self.order.times, self.i, len(self.order.recs)
        render, speed = self.flt.render, self.srv.speed
        out: list[bytes] = []
        while i < n:
            if speed is not None:
                due = self.t0 + (times[i] - self.r0) / speed
                if due > now:
                    self.deadline = min(due, self.next_ping)
                    break
            data = render(recs[i])
            i += 1
            if data is not None:
                out.append(data)
                if len(out) >= BATCH:
                    break
        else:
            if self.srv.end_of_stream == "close" and not out:
                self.done = True
        self.i = i
        return out

    def run(self) -> Iterator[bytes]:
        """Yield updates; a write is flagged "more follows" only when the next one is ready."""
        set_hint = self.set_hint or (lambda on: None)
        pending = None
        try:
            while True:
                batch = self._step()
                if batch:
                    set_hint(True)
                    if pending is not None:
                        yield pending
                    pending = batch.pop()
                    yield from batch
                    continue
                if pending is not None:
                    set_hint(False)
                    yield pending
                    pending = None
                    continue
                if self.done:
                    break
                self._wait()
        finally:
            self.done = True
        if self.error is not None:
            self.ctx.abort(*self.error)
