"""``pocketwatcher replay``: serve a capture as a Yellowstone (Geyser) gRPC endpoint.

Any Yellowstone client works against it unchanged: same service, filters, ping/pong,
``from_slot``, x-token and status codes. Each ``Subscribe`` replays the capture from its
start (or ``from_slot``) at the recorded pace times ``speed``, or as fast as the client
reads (``speed=None``). When the capture runs out the stream stays open and keeps
pinging, like a live provider with no new data (``end_of_stream="close"`` ends it).

Sync grpcio, a pool thread per stream. Measured on a 2-core box with a trivial
handler: sync ~14k msgs/s on one stream, ``grpc.aio`` ~10-12k (one awaited write per
message either way). Only sync lets us use gRPC's write buffer hint and read requests
without a second thread (``grpc_shims``), which takes a real replay to ~25k
transaction updates/s (``bench/replay.py``). Records go out as their original bytes
with only ``filters`` prepended (``wire``); the stream logic lives in ``session``.

Status codes follow Yellowstone: UNAUTHENTICATED for a missing/wrong x-token,
INVALID_ARGUMENT "failed to create filter: ..." for a bad request (the stream ends),
INTERNAL "broadcast from N is not available" for a ``from_slot`` before the capture.
"""

from __future__ import annotations

import hmac
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc

from .. import __version__
from ..proto import geyser_pb2 as pb
from .filters import FilterLimits
from .grpc_shims import install_buffer_hint
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


class ReplayServer:
    """A Yellowstone gRPC endpoint backed by a capture file; see the module docstring.

    The capture is indexed here, once (errors name the file). ``speed``: None = as fast
    as each client reads, 1 = recorded pace, 10 = ten times faster. ``port=0`` binds any
    free port (``.port`` after ``start()``). ``limits`` caps filters per request like a
    provider's config; ``max_streams`` caps concurrent calls (more get RESOURCE_EXHAUSTED
    rather than queueing). ``fast_path=False`` keeps to grpcio's public API (slower).
    """

    def __init__(self, capture: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 speed: float | None = None, x_token: str | None = None, ping_interval: float = 10.0,
                 end_of_stream: str = "idle", limits: FilterLimits = FilterLimits(),
                 max_streams: int = 64, fast_path: bool = True) -> None:
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
        self.fast_path = fast_path and install_buffer_hint()  # see grpc_shims
        self._token = x_token.encode() if x_token else None
        self._server: grpc.Server | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> int:
        """Bind and serve in background threads; returns the bound port (also ``.port``)."""
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self.max_streams + 4, thread_name_prefix="replay"),
            maximum_concurrent_rpcs=self.max_streams,
            options=[("grpc.so_reuseport", 0)],
        )
        server.add_generic_rpc_handlers((self._handlers(),))
        try:
            port = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as e:
            raise OSError(f"replay: cannot listen on {self.host}:{self.port} ({e}); "
                          "pick another --port or stop what is using it") from None
        if not port:
            raise OSError(f"replay: cannot listen on {self.host}:{self.port}; pick another --port")
        server.start()
        self._server, self.port = server, port
        idx = self.index
        log.info("replaying %s: %d records (%d transactions), slots %s..%s, on %s:%d%s",
                 idx.path, len(idx.records), idx.tx_count, idx.first_slot, idx.last_slot,
                 self.host, port, " (x-token required)" if self._token else "")
        return port

    def stop(self, grace: float | None = 1.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def __enter__(self) -> ReplayServer:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop(0)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- handlers ------------------------------------------------------------------------

    def _auth(self, context) -> None:
        if self._token is None:
            return
        got = next((v for k, v in context.invocation_metadata() if k == "x-token"), None)
        if got is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "No valid auth token: x-token metadata is missing")
        if not hmac.compare_digest(got.encode() if isinstance(got, str) else got, self._token):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "No valid auth token: x-token does not match")

    def _subscribe(self, requests, context) -> Iterator[bytes]:
        self._auth(context)
        context.send_initial_metadata(())  # clients (tonic, yellowstone-grpc-client) wait for headers
        return Session(self, requests, context).run()

    def _commitment(self, req, context) -> int:
        c = req.commitment if req.HasField("commitment") else 0
        if c not in (0, 1, 2):
            context.abort(grpc.StatusCode.UNKNOWN, f"failed to create CommitmentLevel from {c}")
        return c

    def _block(self, req, context) -> tuple[int, str, int]:
        block = self.index.latest_block(self._commitment(req, context))
        if block is None:
            context.abort(grpc.StatusCode.INTERNAL, "block is not available yet (the capture has no block_meta)")
        return block

    def _unary(self) -> dict[str, tuple[Callable, type, type]]:
        idx = self.index

        def ping(req, ctx):
            return pb.PongResponse(count=req.count)

        def get_slot(req, ctx):
            c = self._commitment(req, ctx)
            return pb.GetSlotResponse(slot=idx.status_slot.get(c, idx.last_slot))

        def get_block_height(req, ctx):
            return pb.GetBlockHeightResponse(block_height=self._block(req, ctx)[2])

        def get_latest_blockhash(req, ctx):
            slot, blockhash, height = self._block(req, ctx)
            return pb.GetLatestBlockhashResponse(slot=slot, blockhash=blockhash,
                                                 last_valid_block_height=height + MAX_RECENT_BLOCKHASHES)

        def is_blockhash_valid(req, ctx):
            c = self._commitment(req, ctx)
            return pb.IsBlockhashValidResponse(slot=idx.status_slot.get(c, idx.last_slot),
                                               valid=req.blockhash in idx.blockhashes)

        def get_version(req, ctx):
            info = {"version": {"package": "pocketwatcher-replay", "version": __version__},
                    "extra": {"capture": idx.path.name, "records": len(idx.records),
                              "first_slot": idx.first_slot, "last_slot": idx.last_slot}}
            return pb.GetVersionResponse(version=json.dumps(info))

        def replay_info(req, ctx):
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

    def _handlers(self) -> grpc.GenericRpcHandler:
        def guarded(fn):
            def call(req, ctx):
                self._auth(ctx)
                return fn(req, ctx)
            return call

        methods = {
            "Subscribe": grpc.stream_stream_rpc_method_handler(
                self._subscribe, request_deserializer=pb.SubscribeRequest.FromString,
                response_serializer=bytes),  # records are already serialized
        }
        for name, (fn, req_t, resp_t) in self._unary().items():
            methods[name] = grpc.unary_unary_rpc_method_handler(
                guarded(fn), request_deserializer=req_t.FromString,
                response_serializer=resp_t.SerializeToString)
        return grpc.method_handlers_generic_handler(SERVICE, methods)


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
