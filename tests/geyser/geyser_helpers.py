"""Shared pieces for the Geyser tests: a hand-made capture and a thread-driven Subscribe stream.

A plain module, not a conftest.py: another conftest would shadow ``tests/conftest.py``
for the suites that ``from conftest import ...``.

The capture is built here from SubscribeUpdate messages (not from the simulator) so
every filter case has a transaction that tells it apart:

    sig  slot  vote  failed  static keys            loaded (ALT) keys
    1    100   no    no      PAYER_A, PUMP          -
    2    100   yes   no      VOTER, VOTE_PROG       -
    3    100   no    yes     PAYER_C, PUMP, RAY     -
    4    101   no    no      PAYER_D, JUP           writable POOL_X, readonly PUMPSWAP
    5    102   no    no      PAYER_A, RAY           -
    6    103   yes   yes     VOTER, VOTE_PROG       -

plus slot updates (processed/confirmed/finalized and one first-shred-received) and a
block_meta per slot 100-102.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import based58
import grpc
import pytest

from pocketwatcher.geyser.capture import CaptureWriter
from pocketwatcher.proto import geyser_pb2 as pb
from pocketwatcher.proto import geyser_pb2_grpc


def key(n: int) -> bytes:
    return bytes([n]) * 32


PAYER_A, PAYER_C, PAYER_D, VOTER = key(1), key(3), key(4), key(9)
PUMP, RAY, JUP, VOTE_PROG, POOL_X, PUMPSWAP = key(20), key(21), key(22), key(23), key(24), key(25)


def b58(raw: bytes) -> str:
    return based58.b58encode(raw).decode()


def sig(n: int) -> bytes:
    return bytes([n]) * 64


def tx_update(n, slot, t, static, *, vote=False, failed=False, writable=(), readonly=()):
    u = pb.SubscribeUpdate()
    u.transaction.slot = slot
    info = u.transaction.transaction
    info.signature = sig(n)
    info.is_vote = vote
    info.index = n
    info.transaction.signatures.append(sig(n))
    info.transaction.message.account_keys.extend(static)
    info.transaction.message.versioned = bool(writable or readonly)
    info.meta.fee = 5000
    info.meta.loaded_writable_addresses.extend(writable)
    info.meta.loaded_readonly_addresses.extend(readonly)
    if failed:
        info.meta.err.err = b"\x08\x00\x00\x00"
    if t is not None:
        u.created_at.FromNanoseconds(int(t * 1e9))
    return u


def slot_update(slot, status, t):
    u = pb.SubscribeUpdate()
    u.slot.slot, u.slot.parent, u.slot.status = slot, slot - 1, status
    u.created_at.FromNanoseconds(int(t * 1e9))
    return u


def meta_update(slot, t):
    u = pb.SubscribeUpdate()
    bm = u.block_meta
    bm.slot, bm.blockhash, bm.parent_slot = slot, f"hash{slot}", slot - 1
    bm.block_time.timestamp = 1_700_000_000 + slot
    bm.block_height.block_height = 90_000 + slot
    u.created_at.FromNanoseconds(int(t * 1e9))
    return u


def standard_updates(t0: float = 1_700_000_000.0, gap: float = 0.01) -> list[pb.SubscribeUpdate]:
    ups = [
        slot_update(100, pb.SLOT_PROCESSED, 0),
        tx_update(1, 100, 0, [PAYER_A, PUMP]),
        tx_update(2, 100, 0, [VOTER, VOTE_PROG], vote=True),
        tx_update(3, 100, 0, [PAYER_C, PUMP, RAY], failed=True),
        meta_update(100, 0),
        slot_update(100, pb.SLOT_CONFIRMED, 0),
        slot_update(101, pb.SLOT_PROCESSED, 0),
        tx_update(4, 101, 0, [PAYER_D, JUP], writable=[POOL_X], readonly=[PUMPSWAP]),
        meta_update(101, 0),
        slot_update(101, pb.SLOT_CONFIRMED, 0),
        slot_update(100, pb.SLOT_FINALIZED, 0),
        slot_update(102, pb.SLOT_PROCESSED, 0),
        tx_update(5, 102, 0, [PAYER_A, RAY]),
        meta_update(102, 0),
        slot_update(102, pb.SLOT_FIRST_SHRED_RECEIVED, 0),
        slot_update(103, pb.SLOT_PROCESSED, 0),
        tx_update(6, 103, 0, [VOTER, VOTE_PROG], vote=True, failed=True),
    ]
    for i, u in enumerate(ups):
        u.created_at.FromNanoseconds(int((t0 + i * gap) * 1e9))
    return ups


def write_capture(path, updates, meta=None):
    with CaptureWriter(path, meta or {"source": "tests/geyser"}) as w:
        for u in updates:
            w.write(u)
    return path


def standard_capture(tmp_path_factory):
    """The capture described above, written once per test module that asks for it."""
    return write_capture(tmp_path_factory.mktemp("cap") / "standard.pwcap", standard_updates())


class Stream:
    """A Subscribe call driven from a test thread: ``send`` requests, ``next`` updates."""

    def __init__(self, port: int, metadata=(), channel: grpc.Channel | None = None):
        self.channel = channel or grpc.insecure_channel(f"127.0.0.1:{port}")
        self._requests: queue.Queue = queue.Queue()
        self._updates: queue.Queue = queue.Queue()
        stub = geyser_pb2_grpc.GeyserStub(self.channel)
        self.call = stub.Subscribe(iter(self._requests.get, None), metadata=metadata)
        self.error: grpc.RpcError | None = None
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        try:
            for u in self.call:
                self._updates.put(u)
        except grpc.RpcError as e:
            self.error = e
        self._updates.put(None)

    def send(self, request: pb.SubscribeRequest) -> Stream:
        self._requests.put(request)
        return self

    def next(self, timeout: float = 3.0) -> pb.SubscribeUpdate | None:
        """The next update (None once the stream ended); fails the test on timeout."""
        try:
            return self._updates.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no update within {timeout}s")

    def data(self, count: int, timeout: float = 3.0) -> list[pb.SubscribeUpdate]:
        """The next ``count`` updates that are not ping/pong."""
        out = []
        while len(out) < count:
            u = self.next(timeout)
            assert u is not None, f"stream ended after {len(out)} of {count} data updates: {self.error}"
            if u.WhichOneof("update_oneof") not in ("ping", "pong"):
                out.append(u)
        return out

    def until_end(self, timeout: float = 5.0) -> list[pb.SubscribeUpdate]:
        """Every update until the server ends the stream."""
        out = []
        while (u := self.next(timeout)) is not None:
            out.append(u)
        return out

    def close(self):
        self.call.cancel()
        self._requests.put(None)
        self.channel.close()


def kinds(updates):
    return [u.WhichOneof("update_oneof") for u in updates]


def tx_ids(updates):
    return [u.transaction.transaction.signature[0] for u in updates if u.HasField("transaction")]


@contextmanager
def mute_server() -> Iterator[int]:
    """A Geyser server that accepts a ``Subscribe`` and then says nothing at all (no pings,
    no pongs): a stalled provider. Yields its port."""
    def mute(requests, context):
        context.send_initial_metadata(())
        for _ in requests:
            pass
        return iter(())

    server = grpc.server(futures.ThreadPoolExecutor(4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("geyser.Geyser", {
        "Subscribe": grpc.stream_stream_rpc_method_handler(mute)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(0)


# ---- what every stream reader must do (grpcio ``GeyserClient``, the parse process's h2read) ----

def check_errors_explained_and_token_hidden(collect, capture) -> None:
    """``collect(endpoint, request, token=None, n=None, **kw) -> list`` of a stream reader:
    refusals are explained, say what to do and never show the token; an unreachable
    endpoint is retryable and hints at http:// versus https://."""
    from pocketwatcher.geyser.client import GeyserError, build_request
    from pocketwatcher.geyser.server import ReplayServer

    with ReplayServer(capture, x_token="tok-123", end_of_stream="close") as srv:
        with pytest.raises(GeyserError, match="wants an x-token: pass --x-token") as e:
            collect(srv.endpoint, pb.SubscribeRequest())
        assert e.value.code == grpc.StatusCode.UNAUTHENTICATED and not e.value.retryable
        with pytest.raises(GeyserError, match="x-token was refused") as e:
            collect(srv.endpoint, pb.SubscribeRequest(), token="wrong-secret")
        assert "wrong-secret" not in str(e.value) and "tok-123" not in str(e.value)
        with pytest.raises(GeyserError, match="refused the subscription: failed to create filter") as e:
            collect(srv.endpoint, build_request(["nope"], commitment="processed"), token="tok-123")
        assert not e.value.retryable
        assert collect(srv.endpoint, build_request([b58(PUMP)], commitment="processed"), token="tok-123", n=1)
        port = srv.port
    with pytest.raises(GeyserError, match=rf"cannot reach http://127.0.0.1:{port}.*https://") as e:
        collect(f"http://127.0.0.1:{port}", pb.SubscribeRequest())
    assert e.value.retryable


def check_stall_is_retryable(collect) -> None:
    """A server that accepts the stream and then says nothing at all (no pings, no pongs)."""
    from pocketwatcher.geyser.client import GeyserError

    with mute_server() as port, pytest.raises(GeyserError, match="sent nothing for 0.5 s") as e:
        collect(f"http://127.0.0.1:{port}", pb.SubscribeRequest(), idle_timeout=0.5, ping_interval=0.2)
    assert e.value.retryable
