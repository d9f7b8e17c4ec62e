"""One replay ``Subscribe`` stream: requests in, the capture out at the configured pace.

A reader task takes requests (filters, pings) as they arrive while the stream's own
task sends updates. A ping is answered with a pong and changes nothing; any other
request replaces the whole filter set and keeps the position, unless it carries
``from_slot`` (rewind/skip there) or a new commitment (continue from the current slot
in that commitment's order), as on Yellowstone.

Pace: record ``i`` is due ``(t_i - t_start) / speed`` after the subscription started
(``t`` = the record's ``created_at``); ``speed=None`` sends as fast as the client reads,
which HTTP/2 flow control turns into backpressure (``send_message`` waits for the
client's window). Server pings go out every ``ping_interval`` (the first at once, like
Yellowstone's interval timer), during data too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from google.protobuf.message import DecodeError
from grpclib import GRPCError, Status
from grpclib.exceptions import StreamTerminatedError

from ..proto import geyser_pb2 as pb
from .filters import Filter, FilterError, compile_request
from .index import TX

if TYPE_CHECKING:
    from grpclib.server import Stream

    from .server import ReplayServer

log = logging.getLogger(__name__)
_EMPTY = Filter([], [], [], 0)
BATCH = 256  # updates taken per pass over the capture; pings and requests are checked between passes


def _now_update(**fields) -> bytes:
    msg = pb.SubscribeUpdate(**fields)
    msg.created_at.GetCurrentTime()
    return msg.SerializeToString()


class Session:
    """One ``Subscribe`` stream; ``await run()`` serves it until it ends or is cancelled."""

    def __init__(self, server: ReplayServer, stream: Stream) -> None:
        self.srv, self.stream = server, stream
        self.index = server.index
        self.ctl: deque = deque()
        self.wake = asyncio.Event()
        self.done = False
        self.error: tuple[Status, str] | None = None
        self.flt: Filter = _EMPTY
        self.started = False
        self.order = self.index.order(0)
        self.i = 0
        self.min_slot = 0
        self.t0 = self.r0 = 0.0
        self.deadline = 0.0
        self.next_ping = time.monotonic()  # Yellowstone's ping interval ticks at once

    def _take(self, req: pb.SubscribeRequest) -> bool:
        """Pings get a pong and leave the filter alone; any other request replaces it."""
        if req.HasField("ping"):
            self.ctl.append(("pong", req.ping.id))
            return True
        try:
            flt = compile_request(req, self.srv.limits)
        except FilterError as e:
            self.ctl.append(("error", Status.INVALID_ARGUMENT, f"failed to create filter: {e}"))
            return False
        self.ctl.append(("filter", flt, req.from_slot if req.HasField("from_slot") else None))
        return True

    async def _read(self) -> None:
        """Requests as they come; a half-closed request stream is normal (the client only
        listens now): the replay goes on."""
        try:
            while (req := await self.stream.recv_message()) is not None:
                ok = self._take(req)
                self.wake.set()
                if not ok:
                    return
        except DecodeError as e:
            self.ctl.append(("error", Status.INVALID_ARGUMENT, f"failed to decode SubscribeRequest: {e}"))
            self.wake.set()
        except NotImplementedError:  # grpclib reads no compressed message; the gRPC answer is UNIMPLEMENTED
            log.warning("replay: a Subscribe stream sent a compressed request; ended with UNIMPLEMENTED")
            self.ctl.append(("error", Status.UNIMPLEMENTED,
                             "compressed requests are not supported by this replay server: "
                             "send SubscribeRequest uncompressed (responses are never compressed)"))
            self.wake.set()
        except (StreamTerminatedError, ConnectionError):  # the client went away
            self.done = True
            self.wake.set()

    async def _wait(self) -> None:
        timeout = self.deadline - time.monotonic()
        if timeout > 0 and not self.wake.is_set():
            try:
                await asyncio.wait_for(self.wake.wait(), timeout)
            except TimeoutError:
                pass
        self.wake.clear()

    def _apply(self, flt: Filter, from_slot: int | None) -> None:
        idx = self.index
        if from_slot is not None and idx.first_slot is not None and from_slot < idx.first_slot:
            self.error = (Status.INTERNAL,
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
            if from_slot is not None:
                self.min_slot = from_slot  # Yellowstone replays only slots >= from_slot
            self.t0 = time.monotonic()
            self.r0 = order.times[pos] if pos < len(order.times) else 0.0
        self.flt, self.started = flt, True

    def _step(self) -> list[bytes]:
        """Updates that may go out now, up to ``BATCH``; empty: wait until ``deadline``."""
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
        if self.srv.stopping:
            self.error, self.done = (Status.UNAVAILABLE, "replay server is shutting down"), True
            return []
        now = time.monotonic()
        if now >= self.next_ping:
            self.next_ping = now + self.srv.ping_interval
            return [_now_update(ping=pb.SubscribeUpdatePing())]
        self.deadline = self.next_ping
        if not self.started:
            return []
        recs, times, i, n = self.order.recs, self.order.times, self.i, len(self.order.recs)
        render, speed, lo = self.flt.render, self.srv.speed, self.min_slot
        status = self.flt.render_status
        out: list[bytes] = []
        while i < n:
            if speed is not None:
                due = self.t0 + (times[i] - self.r0) / speed
                if due > now:
                    self.deadline = min(due, self.next_ping)
                    break
            rec = recs[i]
            i += 1
            if rec.slot < lo:  # a late status of a slot before from_slot
                continue
            data = render(rec)
            if data is not None:
                out.append(data)
            if status is not None and rec.kind == TX:
                data = status(rec)
                if data is not None:
                    out.append(data)
            if len(out) >= BATCH:
                break
        else:
            if self.srv.end_of_stream == "close" and not out:
                self.done = True
        self.i = i
        return out

    async def run(self) -> None:
        """Send updates until the stream ends; an error ends it with its status."""
        reader = asyncio.create_task(self._read())
        send = self.stream.send_message
        try:
            while True:
                batch = self._step()
                if batch:
                    for data in batch:
                        await send(data)
                    await asyncio.sleep(0)  # let the reader take requests between batches
                    continue
                if self.done:
                    break
                await self._wait()
        finally:
            self.done = True
            reader.cancel()
        if self.error is not None:
            raise GRPCError(*self.error)
