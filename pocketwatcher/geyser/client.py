"""A Yellowstone (Geyser) gRPC client for ``capture`` and the live runner's ingest.

asyncio (``grpc.aio``), like the rest of the runner's I/O. One ``Subscription`` is one
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
import itertools
import random
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
                  vote: bool | None = False, failed: bool | None = False) -> pb.SubscribeRequest:
    """The standard subscription: non-vote, successful transactions touching ``programs``.

    Confirmed by default: a processed transaction can still land on a dropped fork, and
    a swap stored from it would never be undone. ``blocks_meta`` brings block times.
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


class Subscription:
    """One open ``Subscribe`` stream. ``async for update in sub`` (or ``raw=True``: (update, bytes))."""

    def __init__(self, client: GeyserClient, request: pb.SubscribeRequest, *, raw: bool,
                 keepalive_updates: bool) -> None:
        self._client, self._request = client, request
        self._raw, self._keepalive_updates = raw, keepalive_updates
        self._call = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._ping_ids = itertools.count(1)
        self._waiting_since: float | None = None  # set while blocked reading from the server
        self._stalled = False
        self._ping_due = False
        self.last_slot: int | None = None

    async def _open(self) -> None:
        c = self._client
        self._call = c._get_channel().stream_stream(
            "/geyser.Geyser/Subscribe", request_serializer=pb.SubscribeRequest.SerializeToString,
            response_deserializer=None)(metadata=c._metadata)
        # Wait for the response headers first, as Yellowstone's own clients do. A server
        # that rejects the call (x-token) has then already finished it, and we report its
        # status instead of racing a write against it (grpc.aio turns a write that loses
        # that race into a bare INTERNAL error).
        await self._call.initial_metadata()
        if self._call.done():
            code = await self._call.code()
            if code != grpc.StatusCode.OK:
                raise _explain_status(code, await self._call.details(), c.display, c.x_token is not None)
            return
        await self._write(self._request)
        self._tasks.append(asyncio.get_running_loop().create_task(self._keepalive()))

    async def _write(self, request: pb.SubscribeRequest) -> None:
        async with self._lock:
            await self._call.write(request)

    async def update(self, request: pb.SubscribeRequest) -> None:
        """Replace every filter of this stream (the server keeps its position)."""
        if self._call is None:
            self._request = request
        else:
            await self._write(request)

    async def ping(self) -> None:
        await self._write(pb.SubscribeRequest(ping=pb.SubscribeRequestPing(id=next(self._ping_ids))))

    async def _keepalive(self) -> None:
        """Answers server pings and sends our own, from one task, at most once a tick.

        Answers are deferred to the next tick (<= 1 s) rather than written from the read
        loop: a write racing a server that is finishing the stream (a replay that closes)
        makes grpc.aio fail the whole call with INTERNAL, losing the updates still queued.
        """
        c = self._client
        step = min(c.ping_interval, 1.0)
        next_ping = time.monotonic() + c.ping_interval
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            since = self._waiting_since  # a slow consumer is not a stalled server
            if c.idle_timeout and since is not None and now - since > c.idle_timeout:
                self._stalled = True
                self._call.cancel()
                return
            if self._ping_due or now >= next_ping:
                self._ping_due = False
                next_ping = now + c.ping_interval
                if self._call.done():
                    return
                try:
                    await self.ping()
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                    return  # the read side reports what happened

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self):
        c = self._client
        if self._call is None:
            try:
                await self._open()
            except grpc.aio.AioRpcError as e:
                await self.close()
                raise _explain(e, c.display, c.x_token is not None) from None
            except GeyserError:
                await self.close()
                raise
        while True:
            self._waiting_since = time.monotonic()
            try:
                data = await self._call.read()
            except grpc.aio.AioRpcError as e:
                await self.close()
                raise _explain(e, c.display, c.x_token is not None) from None
            except asyncio.CancelledError:
                if not self._stalled:
                    raise
                await self.close()
                raise GeyserError(f"{c.display} sent nothing for {c.idle_timeout:g} s (servers ping every "
                                  "~10 s): the connection is stalled; reconnect", retryable=True) from None
            finally:
                self._waiting_since = None
            if data is grpc.aio.EOF:
                await self.close()
                raise StopAsyncIteration
            update = pb.SubscribeUpdate.FromString(data)
            which = update.WhichOneof("update_oneof")
            if which == "ping":
                self._ping_due = True
            elif which != "pong":
                slot = getattr(update, which).slot if which else 0
                if slot and (self.last_slot is None or slot > self.last_slot):
                    self.last_slot = slot
            if which in ("ping", "pong") and not self._keepalive_updates:
                continue
            return (update, data) if self._raw else update

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self._call is not None:
            self._call.cancel()


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

    async def __aenter__(self) -> GeyserClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
