"""A Yellowstone (Geyser) gRPC client for ``capture`` and the live runner's ingest.

An asyncio API, like the rest of the runner's I/O (the stream itself is read by a
thread, see :class:`Subscription`; unary calls use ``grpc.aio``). One ``Subscription`` is one
stream: iterate it for updates; it answers server pings, sends its own keepalive pings
(some proxies drop a quiet client→server half), and ``update()`` swaps the filters in
place. A stream on which the server has said nothing (not even its 10 s pings) for
``idle_timeout`` while we wait is reported as a retryable error instead of hanging.

Reconnecting is the caller's loop, with what it needs: ``GeyserError.retryable`` says
whether to try again, ``Subscription.last_slot`` is the highest slot seen (resume with
``build_request(..., from_slot=...)``; the resumed slot may repeat, so dedupe), and
``backoff()`` gives jittered delays.

Errors say what was wrong and what to do. The endpoint is shown as scheme://host:port
only (providers sometimes put keys in the path) and the x-token never appears.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import queue
import random
import threading
import time
from collections.abc import Iterable, Iterator
from urllib.parse import urlsplit

import grpc

from ..proto import geyser_pb2 as pb

TX_FILTER = "pocketwatcher"
BLOCKS_FILTER = "pocketwatcher_blocks"
SLOTS_FILTER = "pocketwatcher_slots"
COMMITMENTS = {"processed": pb.PROCESSED, "confirmed": pb.CONFIRMED, "finalized": pb.FINALIZED}
_RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
              grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
              grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED}


class GeyserError(Exception):
    """A failed call or stream, explained for a user; ``retryable`` guides reconnect logic."""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, retryable: bool = False):
        super().__init__(message)
        self.code, self.retryable = code, retryable


def parse_endpoint(endpoint: str) -> tuple[str, bool, str]:
    """``http://host:port`` / ``https://host[:port]`` → (target, tls, display)."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise GeyserError(f"endpoint {endpoint.split('?')[0][:80]!r}: expected http://HOST:PORT (plaintext) "
                          "or https://HOST[:PORT] (TLS), e.g. https://grpc.example.com or http://127.0.0.1:10000")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise GeyserError(f"endpoint {parts.scheme}://{parts.hostname}: the port is not a number") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", tls, f"{parts.scheme}://{host}:{port}"


def commitment_level(value: str | int | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    try:
        return COMMITMENTS[value.lower()]
    except KeyError:
        raise GeyserError(f"commitment {value!r}: expected one of {', '.join(COMMITMENTS)}") from None


def build_request(programs: Iterable[str] = (), *, commitment: str | int | None = "confirmed",
                  from_slot: int | None = None, blocks_meta: bool = True, slots: bool = False,
                  interslot: bool = False, vote: bool | None = False,
                  failed: bool | None = False) -> pb.SubscribeRequest:
    """The standard subscription: non-vote, successful transactions touching ``programs``.

    Confirmed by default: a processed transaction can still land on a dropped fork, and
    a swap stored from it would never be undone. ``blocks_meta`` brings block times;
    ``slots`` slot statuses, and ``interslot`` also the ones between processed and
    finalized (first shred, completed, created bank, and dead: a dropped fork).
    """
    req = pb.SubscribeRequest()
    tx = req.transactions[TX_FILTER]
    tx.account_include.extend(sorted(set(programs)))
    if vote is not None:
        tx.vote = vote
    if failed is not None:
        tx.failed = failed
    if blocks_meta:
        req.blocks_meta[BLOCKS_FILTER].SetInParent()
    if slots:
        req.slots[SLOTS_FILTER].SetInParent()
        if interslot:
            req.slots[SLOTS_FILTER].interslot_updates = True
    level = commitment_level(commitment)
    if level is not None:
        req.commitment = level
    if from_slot is not None:
        req.from_slot = from_slot
    return req


def backoff(base: float = 0.5, cap: float = 30.0) -> Iterator[float]:
    """Reconnect delays: exponential with full jitter (0..min(cap, base*2^n))."""
    for n in itertools.count():
        yield random.uniform(0, min(cap, base * 2 ** min(n, 30)))


def _explain(e: grpc.aio.AioRpcError, display: str, has_token: bool) -> GeyserError:
    return _explain_status(e.code(), e.details(), display, has_token)


def _explain_status(code: grpc.StatusCode, details: str | None, display: str, has_token: bool) -> GeyserError:
    details = (details or "").strip()
    if code == grpc.StatusCode.UNAUTHENTICATED or code == grpc.StatusCode.PERMISSION_DENIED:
        fix = ("this endpoint wants an x-token: pass --x-token (or set it in the config)" if not has_token
               else "the x-token was refused: check it is the token issued for this endpoint")
        msg = f"{display} rejected the request ({code.name}: {details}); {fix}"
    elif code == grpc.StatusCode.UNAVAILABLE:
        msg = (f"cannot reach {display} ({details}); check host and port, and http:// (plaintext) "
               "versus https:// (TLS)")
    elif code == grpc.StatusCode.INVALID_ARGUMENT:
        msg = f"{display} refused the subscription: {details}"
    elif code == grpc.StatusCode.UNIMPLEMENTED:
        msg = f"{display} does not implement this call ({details}); is it a Yellowstone gRPC endpoint?"
    else:
        msg = f"{display}: {code.name}: {details}"
    return GeyserError(msg, code=code, retryable=code in _RETRYABLE)


class _End:
    """The reader thread's last item: the stream ended (``error`` None) or failed."""

    __slots__ = ("error",)

    def __init__(self, error: GeyserError | None = None) -> None:
        self.error = error


class Subscription:
    """One open ``Subscribe`` stream. ``async for update in sub`` (or ``raw=True``: (update, bytes)).

    The stream is read by a thread on a synchronous gRPC channel, which hands updates to
    the event loop through a bounded queue: grpc.aio costs about twice the CPU per message
    (an event-loop round trip each), and at thousands of updates a second that is the
    runner's largest fixed cost. The thread blocks when ``max_buffered`` updates wait,
    so a slow consumer slows the server through gRPC flow control instead of growing
    memory. Requests (the subscription, filter updates, pings) go out through a queue
    that the channel consumes on its own thread.
    """

    def __init__(self, client: GeyserClient, request: pb.SubscribeRequest, *, raw: bool,
                 keepalive_updates: bool, max_buffered: int = 10_000) -> None:
        self._client, self._request = client, request
        self._raw, self._keepalive_updates = raw, keepalive_updates
        self._max = max_buffered
        self._requests: queue.Queue = queue.Queue()
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._waiter: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._call = None
        self._closed = False
        self._stalled = False
        self._ping_ids = itertools.count(1)
        self._last_rx = time.monotonic()  # last message of any kind from the server
        self.last_slot: int | None = None

    # -- requests (consumed by gRPC's own thread) ----------------------------------------
    def _request_stream(self):
        yield self._request
        c = self._client
        next_ping = time.monotonic() + c.ping_interval
        while True:
            try:
                req = self._requests.get(timeout=max(0.0, next_ping - time.monotonic()))
            except queue.Empty:
                next_ping = time.monotonic() + c.ping_interval
                req = pb.SubscribeRequest(ping=pb.SubscribeRequestPing(id=next(self._ping_ids)))
            if req is None:  # closed
                return
            yield req

    async def update(self, request: pb.SubscribeRequest) -> None:
        """Replace every filter of this stream (the server keeps its position)."""
        if self._thread is None:
            self._request = request
        else:
            self._requests.put(request)

    async def ping(self) -> None:
        self._requests.put(pb.SubscribeRequest(ping=pb.SubscribeRequestPing(id=next(self._ping_ids))))

    # -- the reader thread ---------------------------------------------------------------
    def _read(self) -> None:
        c = self._client
        end = _End()
        try:
            self._call = c._sync_channel().stream_stream(
                "/geyser.Geyser/Subscribe", request_serializer=pb.SubscribeRequest.SerializeToString,
                response_deserializer=None)(self._request_stream(), metadata=c._metadata)
            from_string = pb.SubscribeUpdate.FromString
            for data in self._call:
                self._last_rx = time.monotonic()
                update = from_string(data)
                which = update.WhichOneof("update_oneof")
                if which == "ping":  # answer at once: some providers drop clients that do not
                    self._requests.put(pb.SubscribeRequest(ping=pb.SubscribeRequestPing(id=next(self._ping_ids))))
                elif which != "pong":
                    slot = getattr(update, which).slot if which else 0
                    if slot and (self.last_slot is None or slot > self.last_slot):
                        self.last_slot = slot
                if which in ("ping", "pong") and not self._keepalive_updates:
                    continue
                if not self._push((update, data) if self._raw else update):
                    return
        except grpc.RpcError as e:
            if self._stalled:
                end.error = GeyserError(f"{c.display} sent nothing for {c.idle_timeout:g} s (servers ping every "
                                        "~10 s): the connection is stalled; reconnect", retryable=True)
            elif not self._closed:
                end.error = _explain_status(e.code(), e.details(), c.display, c.x_token is not None)
        except Exception as e:  # noqa: BLE001 - handed to the consumer, never lost in a thread
            end.error = GeyserError(f"{c.display}: reading the stream failed: {type(e).__name__}: {e}",
                                    retryable=True)
        finally:
            self._requests.put(None)
        self._push(end, force=True)

    def _push(self, item, force: bool = False) -> bool:
        with self._cond:
            while len(self._items) >= self._max and not self._closed and not force:
                self._cond.wait(0.5)
            if self._closed and not force:
                return False
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)
        return True

    # -- the consumer (event loop) ---------------------------------------------------------
    def buffered(self) -> int:
        """Updates received and waiting to be taken: 0 means the consumer has caught up
        (a consumer that batches its work flushes then)."""
        return len(self._items)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self):
        batch = await self.take(1)
        return batch[0]

    async def take(self, limit: int = 512) -> list:
        """The updates waiting now (at least one, at most ``limit``), in order; waits for one.

        A consumer that takes one update per wake-up pays an event-loop round trip and a
        thread switch for each; one that takes what has piled up pays them once per batch,
        and batches grow by themselves when it falls behind.
        """
        if self._thread is None:
            if self._closed:
                raise StopAsyncIteration
            self._loop = asyncio.get_running_loop()
            self._last_rx = time.monotonic()
            self._thread = threading.Thread(target=self._read, name="geyser-reader", daemon=True)
            self._thread.start()
        c = self._client
        items = self._items
        while True:
            with self._cond:
                if self._closed:  # closed by the consumer: what is still buffered is not wanted
                    raise StopAsyncIteration
                if items:
                    was_full = len(items) >= self._max
                    out = []
                    while items and len(out) < limit and not isinstance(items[0], _End):
                        out.append(items.popleft())
                    if was_full:
                        self._cond.notify()
                    item = out if out else items.popleft()
                else:
                    item = None
                    self._waiter = waiter = self._loop.create_future()
            if item is None:
                timeout = None
                if c.idle_timeout:
                    timeout = max(0.05, c.idle_timeout - (time.monotonic() - self._last_rx))
                try:
                    await asyncio.wait_for(waiter, timeout)
                except TimeoutError:
                    if c.idle_timeout and time.monotonic() - self._last_rx >= c.idle_timeout:
                        self._stalled = True  # the server said nothing at all, not even a ping
                        if self._call is not None:
                            self._call.cancel()
                continue
            if isinstance(item, _End):
                await self.close()
                if item.error is not None:
                    raise item.error
                raise StopAsyncIteration
            return item  # a non-empty list

    async def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._requests.put(None)
        if self._call is not None:
            self._call.cancel()


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class GeyserClient:
    """A connection to one Yellowstone endpoint; see the module docstring."""

    def __init__(self, endpoint: str, x_token: str | None = None, *, ping_interval: float = 10.0,
                 idle_timeout: float | None = 60.0, max_message_bytes: int = 256 << 20) -> None:
        self.target, self.tls, self.display = parse_endpoint(endpoint)
        self.x_token = x_token.strip() if x_token else None
        if self.x_token is not None and not self.x_token.isprintable():
            raise GeyserError("the x-token contains control characters; copy it again without line breaks")
        self.ping_interval, self.idle_timeout = ping_interval, idle_timeout
        self._metadata = (("x-token", self.x_token),) if self.x_token else ()
        self._options = [("grpc.max_receive_message_length", max_message_bytes),
                         ("grpc.max_send_message_length", max_message_bytes)]
        self._channel: grpc.aio.Channel | None = None
        self._sync: grpc.Channel | None = None

    def _sync_channel(self) -> grpc.Channel:
        """The channel streams are read on (by a thread; see :class:`Subscription`)."""
        if self._sync is None:
            if self.tls:
                self._sync = grpc.secure_channel(self.target, grpc.ssl_channel_credentials(), options=self._options)
            else:
                self._sync = grpc.insecure_channel(self.target, options=self._options)
        return self._sync

    def _get_channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            if self.tls:
                self._channel = grpc.aio.secure_channel(self.target, grpc.ssl_channel_credentials(),
                                                        options=self._options)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
        return self._channel

    def subscribe(self, request: pb.SubscribeRequest, *, keepalive_updates: bool = False) -> Subscription:
        """Open a stream of ``SubscribeUpdate``; pings/pongs are handled unless asked for."""
        return Subscription(self, request, raw=False, keepalive_updates=keepalive_updates)

    def subscribe_raw(self, request: pb.SubscribeRequest, *, keepalive_updates: bool = False) -> Subscription:
        """Like ``subscribe`` but yields ``(update, wire_bytes)``, for recording bytes unchanged."""
        return Subscription(self, request, raw=True, keepalive_updates=keepalive_updates)

    async def _unary(self, method: str, request, response_type, timeout: float):
        call = self._get_channel().unary_unary(
            f"/geyser.Geyser/{method}", request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString)
        try:
            return await call(request, metadata=self._metadata, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            raise _explain(e, self.display, self.x_token is not None) from None

    async def ping(self, count: int = 1, *, timeout: float = 10.0) -> int:
        return (await self._unary("Ping", pb.PingRequest(count=count), pb.PongResponse, timeout)).count

    async def get_slot(self, commitment: str | int | None = None, *, timeout: float = 10.0) -> int:
        req = pb.GetSlotRequest()
        level = commitment_level(commitment)
        if level is not None:
            req.commitment = level
        return (await self._unary("GetSlot", req, pb.GetSlotResponse, timeout)).slot

    async def get_version(self, *, timeout: float = 10.0) -> str:
        return (await self._unary("GetVersion", pb.GetVersionRequest(), pb.GetVersionResponse, timeout)).version

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def __aenter__(self) -> GeyserClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
