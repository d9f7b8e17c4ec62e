"""``pocketwatcher replay``: serve a capture as a Yellowstone (Geyser) gRPC endpoint.

Any Yellowstone client works against it unchanged: same service, filters, ping/pong,
``from_slot``, x-token and status codes. Each ``Subscribe`` replays the capture from its
start (or ``from_slot``) at the recorded pace times ``speed``, or as fast as the client
reads (``speed=None``). When the capture runs out the stream stays open and keeps
pinging, like a live provider with no new data (``end_of_stream="close"`` ends it).

Served with grpclib (gRPC over h2 on asyncio) on an event loop in a background thread.
Why not grpcio's server: its sync server waits for each streamed message's write to
complete through its completion-queue thread (two thread hand-offs per message), which
capped one stream at ~13k updates/s on a 2-core box even with private write-flag tricks;
``grpc.aio`` did ~10-12k. grpclib sends a message with plain buffered writes under
HTTP/2 flow control: ~65k/s to one grpcio client on the same box (``bench/replay.py``).
Clients are unaffected: they still use grpcio. Records go out as their original bytes
with only ``filters`` prepended (``wire``); the stream logic lives in ``session``.

Status codes follow Yellowstone: UNAUTHENTICATED for a missing/wrong x-token,
INVALID_ARGUMENT "failed to create filter: ..." for a bad request (the stream ends),
INTERNAL "broadcast from N is not available" for a ``from_slot`` before the capture;
RESOURCE_EXHAUSTED past ``max_streams``; UNAVAILABLE to open streams when stopping.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import socket
import ssl
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path

from grpclib import GRPCError, Status
from grpclib.const import Cardinality, Handler
from grpclib.encoding.base import CodecBase
from grpclib.health.service import Health
from grpclib.server import Server, Stream

from .. import __version__
from ..proto import geyser_pb2 as pb
from .filters import FilterLimits
from .index import CaptureIndex
from .session import Session

log = logging.getLogger(__name__)

SERVICE = "geyser.Geyser"
MAX_RECENT_BLOCKHASHES = 300


def parse_speed(value: str | float | None) -> float | None:
    """``"max"``/None → None (as fast as the client reads); ``"10"``/10 → 10.0."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "max"):
        return None
    try:
        speed = float(value)
    except ValueError:
        raise ValueError(f"--speed {value!r}: expected 'max' or a positive number such as 1 or 10") from None
    if not speed > 0:
        raise ValueError(f"--speed {value!r}: must be 'max' or a number above 0")
    return speed


class _Codec(CodecBase):
    """Protobuf on the wire; replies may also be bytes already serialized (capture records)."""

    __content_subtype__ = "proto"

    def encode(self, message, message_type) -> bytes:
        return message if isinstance(message, bytes) else message.SerializeToString()

    def decode(self, data: bytes, message_type):
        return message_type.FromString(data)


class _Server(Server):
    """grpclib's server, remembering its connections so ``stop`` can close them.

    grpclib's ``close()`` cancels running handlers but leaves accepted connections open
    until the peer hangs up; a stopped replay server must look like a provider that went
    away, so the connections are closed too. (Hooks grpclib's protocol factory; when that
    is gone, connections close when the event loop does.)
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.protocols: weakref.WeakSet = weakref.WeakSet()

    def _protocol_factory(self):  # noqa: D401 (grpclib's hook)
        protocol = super()._protocol_factory()
        self.protocols.add(protocol)
        return protocol

    def drop_connections(self) -> None:
        for protocol in list(self.protocols):
            processor = getattr(protocol, "processor", None)
            if processor is not None:
                processor.close("replay server stopped")


class ReplayServer:
    """A Yellowstone gRPC endpoint backed by a capture file; see the module docstring.

    The capture is indexed here, once (errors name the file). ``speed``: None = as fast
    as each client reads, 1 = recorded pace, 10 = ten times faster. ``port=0`` binds any
    free port (``.port`` after ``start()``). ``limits`` caps filters per request like a
    provider's config; ``max_streams`` caps concurrent ``Subscribe`` calls (more get
    RESOURCE_EXHAUSTED rather than queueing). ``ssl_context`` (a server context with its
    certificate, ALPN ``h2``) serves TLS, as providers do.
    """

    def __init__(self, capture: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 speed: float | None = None, x_token: str | None = None, ping_interval: float = 10.0,
                 end_of_stream: str = "idle", limits: FilterLimits = FilterLimits(),
                 max_streams: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        if end_of_stream not in ("idle", "close"):
            raise ValueError(f"end_of_stream={end_of_stream!r}: expected 'idle' or 'close'")
        if speed is not None and not speed > 0:
            raise ValueError(f"speed={speed!r}: expected None (max) or a number above 0")
        if not ping_interval > 0:
            raise ValueError(f"ping_interval={ping_interval!r}: expected seconds above 0")
        self.index = CaptureIndex(capture)
        self.host, self.port = host, port
        self.speed, self.ping_interval, self.end_of_stream = speed, ping_interval, end_of_stream
        self.limits, self.max_streams = limits, max_streams
        self.ssl_context = ssl_context  # serve TLS (``https://`` endpoints) when given
        self.stopping = False
        self._token = x_token.encode() if x_token else None
        self._sessions: set[Session] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: _Server | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def _listen(self) -> socket.socket:
        try:
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][0]
            return socket.create_server((self.host, self.port), family=family, backlog=128)
        except OSError as e:
            raise OSError(f"replay: cannot listen on {self.host}:{self.port} ({e.strerror or e}); "
                          "pick another --port or stop what is using it") from None

    def start(self) -> int:
        """Bind and serve on a background thread's event loop; returns the bound port (also ``.port``)."""
        if self._thread is not None:
            return self.port
        sock = self._listen()
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        ready: dict = {}
        started = threading.Event()

        async def begin() -> None:
            server = _Server(list(self._handlers()), codec=_Codec())
            await server.start(sock=sock, ssl=self.ssl_context)
            self._server = server

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(begin())
            except BaseException as e:  # noqa: BLE001 - reported to start()'s caller
                ready["error"] = e
                started.set()
                return
            started.set()
            loop.run_forever()

        self.stopping = False
        self._loop = loop
        self._thread = threading.Thread(target=run, name="replay-server", daemon=True)
        self._thread.start()
        started.wait()
        if "error" in ready:
            self._thread.join()
            self._thread = self._loop = None
            loop.close()
            sock.close()
            raise OSError(f"replay: cannot serve on {self.host}:{self.port}: {ready['error']}")
        idx = self.index
        log.info("replaying %s: %d records (%d transactions), slots %s..%s, on %s:%d%s",
                 idx.path, len(idx.records), idx.tx_count, idx.first_slot, idx.last_slot,
                 self.host, self.port, " (x-token required)" if self._token else "")
        return self.port

    def stop(self, grace: float | None = 1.0) -> None:
        """Stop listening, end open streams with UNAVAILABLE (they get ``grace`` seconds to
        flush), then close every connection and the event loop."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            self.stopping = True
            for s in list(self._sessions):
                s.wake.set()
            server = self._server
            if server is None:
                return
            if self._sessions and grace:
                deadline = loop.time() + grace
                while self._sessions and loop.time() < deadline:
                    await asyncio.sleep(0.01)
            server.close()
            try:
                await asyncio.wait_for(server.wait_closed(), max(grace or 0, 0.5))
            except TimeoutError:
                log.warning("replay: some streams did not end within %.1f s of stop", max(grace or 0, 0.5))
            server.drop_connections()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=(grace or 0) + 5)
        except Exception as e:  # noqa: BLE001 - stopping goes on regardless
            log.warning("replay: unclean stop (%s)", e)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()
        self._server = self._loop = self._thread = None

    def __enter__(self) -> ReplayServer:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop(0)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    # ---- handlers ------------------------------------------------------------------------

    def _auth(self, stream: Stream) -> None:
        if self._token is None:
            return
        got = stream.metadata.get("x-token") if stream.metadata is not None else None
        if got is None:
            raise GRPCError(Status.UNAUTHENTICATED, "No valid auth token: x-token metadata is missing")
        if not hmac.compare_digest(got.encode() if isinstance(got, str) else got, self._token):
            raise GRPCError(Status.UNAUTHENTICATED, "No valid auth token: x-token does not match")

    async def _subscribe(self, stream: Stream) -> None:
        self._auth(stream)
        if len(self._sessions) >= self.max_streams:
            raise GRPCError(Status.RESOURCE_EXHAUSTED,
                            f"too many concurrent streams (this replay server allows {self.max_streams})")
        if self.stopping:
            raise GRPCError(Status.UNAVAILABLE, "replay server is shutting down")
        await stream.send_initial_metadata()  # clients (tonic, yellowstone-grpc-client) wait for headers
        session = Session(self, stream)
        self._sessions.add(session)
        try:
            await session.run()
        finally:
            self._sessions.discard(session)

    def _commitment(self, req) -> int:
        c = req.commitment if req.HasField("commitment") else 0
        if c not in (0, 1, 2):
            raise GRPCError(Status.UNKNOWN, f"failed to create CommitmentLevel from {c}")
        return c

    def _block(self, req) -> tuple[int, str, int]:
        block = self.index.latest_block(self._commitment(req))
        if block is None:
            raise GRPCError(Status.INTERNAL, "block is not available yet (the capture has no block_meta "
                                             "at that commitment)")
        return block

    def _unary(self) -> dict[str, tuple[Callable, type, type]]:
        idx = self.index

        def ping(req):
            return pb.PongResponse(count=req.count)

        def get_slot(req):  # Yellowstone answers from its block_meta store, as the others do
            return pb.GetSlotResponse(slot=self._block(req)[0])

        def get_block_height(req):
            return pb.GetBlockHeightResponse(block_height=self._block(req)[2])

        def get_latest_blockhash(req):
            slot, blockhash, height = self._block(req)
            return pb.GetLatestBlockhashResponse(slot=slot, blockhash=blockhash,
                                                 last_valid_block_height=height + MAX_RECENT_BLOCKHASHES)

        def is_blockhash_valid(req):
            """Valid: the hash's block reached the commitment (a block of an abandoned fork
            never does), within the last MAX_RECENT_BLOCKHASHES block heights of the newest."""
            c = self._commitment(req)
            slot, _, height = self._block(req)
            b = idx.blockhashes.get(req.blockhash)
            valid = b is not None and b[0] <= slot and b[2] + MAX_RECENT_BLOCKHASHES >= height \
                and idx.committed(b[0], c)
            return pb.IsBlockhashValidResponse(slot=slot, valid=valid)

        def get_version(req):
            info = {"version": {"package": "pocketwatcher-replay", "version": __version__},
                    "extra": {"capture": idx.path.name, "records": len(idx.records),
                              "first_slot": idx.first_slot, "last_slot": idx.last_slot}}
            return pb.GetVersionResponse(version=json.dumps(info))

        def replay_info(req):
            return pb.SubscribeReplayInfoResponse(first_available=idx.first_slot or 0)

        return {
            "Ping": (ping, pb.PingRequest, pb.PongResponse),
            "GetSlot": (get_slot, pb.GetSlotRequest, pb.GetSlotResponse),
            "GetBlockHeight": (get_block_height, pb.GetBlockHeightRequest, pb.GetBlockHeightResponse),
            "GetLatestBlockhash": (get_latest_blockhash, pb.GetLatestBlockhashRequest,
                                   pb.GetLatestBlockhashResponse),
            "IsBlockhashValid": (is_blockhash_valid, pb.IsBlockhashValidRequest, pb.IsBlockhashValidResponse),
            "GetVersion": (get_version, pb.GetVersionRequest, pb.GetVersionResponse),
            "SubscribeReplayInfo": (replay_info, pb.SubscribeReplayInfoRequest, pb.SubscribeReplayInfoResponse),
        }

    def _handlers(self):
        """One grpclib service object: ``__mapping__`` names every method of geyser.Geyser."""
        replay = self

        def unary(fn):
            async def call(stream: Stream) -> None:
                replay._auth(stream)
                req = await stream.recv_message()
                await stream.send_message(fn(req))
            return call

        mapping = {f"/{SERVICE}/Subscribe": Handler(self._subscribe, Cardinality.STREAM_STREAM,
                                                    pb.SubscribeRequest, pb.SubscribeUpdate)}
        for name, (fn, req_t, resp_t) in self._unary().items():
            mapping[f"/{SERVICE}/{name}"] = Handler(unary(fn), Cardinality.UNARY_UNARY, req_t, resp_t)

        class Geyser:
            def __mapping__(self):
                return mapping

        geyser = Geyser()
        # grpc.health.v1, as Yellowstone registers it: geyser.Geyser (and the overall "") SERVING
        return [geyser, Health({geyser: []})]


def serve_forever(capture: str | Path, *, host: str = "127.0.0.1", port: int = 10000,
                  speed: float | None = None, x_token: str | None = None, ping_interval: float = 10.0,
                  end_of_stream: str = "idle", grace: float = 2.0,
                  on_ready: Callable[[ReplayServer], None] | None = None) -> int:
    """Run until SIGINT/SIGTERM (SIGBREAK on Windows), then stop cleanly; returns 0.

    Signals are caught with ``signal.signal`` (works on every platform) and only set an
    event; the main thread polls it, so shutdown never runs inside a signal handler.
    """
    server = ReplayServer(capture, host=host, port=port, speed=speed, x_token=x_token,
                          ping_interval=ping_interval, end_of_stream=end_of_stream)
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            if hasattr(signal, name):
                sig = getattr(signal, name)
                previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        server.start()
        if on_ready is not None:
            on_ready(server)
        else:
            idx = server.index
            pace = "max" if speed is None else f"{speed:g}x"
            print(f"replay: {idx.path.name}: {idx.tx_count} transactions, slots {idx.first_slot}.."
                  f"{idx.last_slot}; serving {server.endpoint} at speed {pace}"
                  f"{' (x-token required)' if x_token else ''}; Ctrl-C stops", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(grace)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
