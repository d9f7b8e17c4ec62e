"""A ``Subscribe`` stream read with grpclib (gRPC over h2 on asyncio), for the parse process.

Why a second reader beside :class:`~pocketwatcher.geyser.client.Subscription` (grpcio):
grpcio's streaming reader hands every message from its completion-queue thread to the
reading thread, ~50 µs of CPU per transaction update on a 2-core box; grpclib parses the
HTTP/2 frames on the event loop itself, ~38 µs with the protobuf decoding included
(``bench/runner.py`` spends the difference in the parse process, its busiest). The
behaviour a Yellowstone provider expects is the same: server pings are answered at once,
the client pings every ``ping_interval``, a stream on which the server said nothing for
``idle_timeout`` is reported as stalled (retryable), and errors are explained the same
way (``client._explain_status``; the x-token never appears). ``https://`` endpoints use
TLS with the system's (or certifi's) roots, ``ssl_context`` overrides that.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator

import grpc
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.encoding.base import CodecBase
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from ..proto import geyser_pb2 as pb
from .client import GeyserError, _explain_status, parse_endpoint


class _Codec(CodecBase):
    __content_subtype__ = "proto"

    def encode(self, message, message_type) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes, message_type):
        return message_type.FromString(data)


async def h2_updates(endpoint: str, x_token: str | None, request: pb.SubscribeRequest, *,
                     ping_interval: float = 10.0, idle_timeout: float | None = 60.0,
                     ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[pb.SubscribeUpdate]:
    """Yield the stream's updates (not pings/pongs) until the server ends it; raises
    ``GeyserError`` (with ``retryable``) on failure. Cancel the consuming task to stop.

    A stall is detected by a keepalive task that cancels the consuming task, so iterate
    from a task that awaits nothing but this iterator (the parse process's stream task):
    a cancel landing elsewhere would end the stream without the stall error.
    """
    target, tls, display = parse_endpoint(endpoint)
    token = x_token.strip() if x_token else None
    host, _, port = target.rpartition(":")
    channel = Channel(host.strip("[]"), int(port), ssl=(ssl_context or True) if tls else None, codec=_Codec())
    last_rx = time.monotonic()
    stalled = False
    ping_ids = iter(range(1, 1 << 62))
    try:
        async with channel.request("/geyser.Geyser/Subscribe", Cardinality.STREAM_STREAM, pb.SubscribeRequest,
                                   pb.SubscribeUpdate, metadata={"x-token": token} if token else None) as stream:
            reader = asyncio.current_task()

            async def keepalive() -> None:
                nonlocal stalled
                next_ping = time.monotonic() + ping_interval
                while True:
                    now = time.monotonic()
                    if idle_timeout and now - last_rx >= idle_timeout:
                        stalled = True  # the server said nothing at all, not even a ping
                        reader.cancel()
                        return
                    if now >= next_ping:
                        next_ping = now + ping_interval
                        await stream.send_message(pb.SubscribeRequest(ping=pb.SubscribeRequestPing(id=next(ping_ids))))
                    await asyncio.sleep(min(1.0, ping_interval, idle_timeout or 1.0) / 2)

            await stream.send_message(request)
            pinger = asyncio.create_task(keepalive())
            try:
                while (update := await stream.recv_message()) is not None:
                    last_rx = time.monotonic()
                    which = update.WhichOneof("update_oneof")
                    if which == "ping":  # answer at once: some providers drop clients that do not
                        await stream.send_message(pb.SubscribeRequest(ping=pb.SubscribeRequestPing(id=next(ping_ids))))
                    elif which != "pong":
                        yield update
                # the server ended the stream: end our half, then read its status (an
                # error status raises GRPCError here)
                pinger.cancel()
                await stream.end()
                await stream.recv_trailing_metadata()
            except asyncio.CancelledError:
                if stalled:
                    raise GeyserError(f"{display} sent nothing for {idle_timeout:g} s (servers ping every ~10 s): "
                                      "the connection is stalled; reconnect", retryable=True) from None
                raise
            finally:
                pinger.cancel()
    except GRPCError as e:
        code = getattr(grpc.StatusCode, e.status.name, grpc.StatusCode.UNKNOWN)
        raise _explain_status(code, e.message, display, token is not None) from None
    except (StreamTerminatedError, ProtocolError) as e:
        raise GeyserError(f"{display}: the stream broke ({e}); reconnect", retryable=True) from None
    except (ConnectionError, OSError) as e:
        reason = e.strerror or type(e).__name__
        raise _explain_status(grpc.StatusCode.UNAVAILABLE, reason, display, token is not None) from None
    finally:
        channel.close()

