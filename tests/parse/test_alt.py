"""AltResolver against a real local JSON-RPC server; decode_lookup_table on hand-built bytes."""

from __future__ import annotations

import base64
import json
import logging
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import based58
import pytest

from pocketwatcher.parse.alt import (
    ALT_PROGRAM_ID,
    U64_MAX,
    AltError,
    AltResolver,
    decode_lookup_table,
    redact_url,
)

SECRET = "SECRET"
TTL = 3600.0


def key(n: int) -> bytes:
    return bytes([n]) * 32


def b58(raw: bytes) -> str:
    return based58.b58encode(raw).decode()


def encode_table(
    addresses: list[bytes],
    *,
    tag: int = 1,
    deactivation_slot: int = U64_MAX,
    last_extended_slot: int = 0,
    start_index: int = 0,
    authority: bytes | None = None,
) -> bytes:
    meta = struct.pack("<IQQB", tag, deactivation_slot, last_extended_slot, start_index)
    meta += b"\x01" + authority if authority is not None else b"\x00"
    return meta.ljust(56, b"\x00") + b"".join(addresses)


TABLE_A = b58(key(0xA0))
TABLE_B = b58(key(0xB0))
A_KEYS = [key(1), key(2), key(3)]
B_KEYS = [key(11), key(12), key(13)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RpcState:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tables: dict[str, tuple[bytes, str]] = {}
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.mode = "ok"
        self.release = threading.Event()

    def put(self, address: str, keys: list[bytes], owner: str = ALT_PROGRAM_ID, **kw) -> None:
        self.tables[address] = (encode_table(keys, **kw), owner)

    @property
    def params(self) -> list:
        return [r["params"] for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        state: RpcState = self.server.state  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        state.requests.append(body)
        state.paths.append(self.path)
        if state.mode == "500":
            return self._send(500, {"oops": True})
        if state.mode == "rpc_error":
            # providers sometimes echo the request back; the resolver must scrub it
            error = {"code": -32005, "message": f"quota exceeded for {self.path}"}
            return self._send(200, {"jsonrpc": "2.0", "id": body["id"], "error": error})
        if state.mode == "hang":
            state.release.wait(5)
        assert body["method"] == "getMultipleAccounts"
        value = []
        for address in body["params"][0]:
            if address not in state.tables:
                value.append(None)
                continue
            raw, owner = state.tables[address]
            value.append(
                {
                    "data": [base64.b64encode(raw).decode(), "base64"],
                    "owner": owner,
                    "lamports": 1_000_000,
                    "executable": False,
                    "rentEpoch": U64_MAX,
                    "space": len(raw),
                }
            )
        result = {"context": {"slot": 1, "apiVersion": "2.2.0"}, "value": value}
        self._send(200, {"jsonrpc": "2.0", "id": body["id"], "result": result})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # client gave up (timeout test)
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.state = RpcState()  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield httpd
    httpd.state.release.set()  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def rpc(server) -> RpcState:
    state: RpcState = server.state
    state.release.set()
    state.reset()
    state.put(TABLE_A, A_KEYS)
    state.put(TABLE_B, B_KEYS)
    yield state
    state.release.set()


@pytest.fixture
def url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/?api-key={SECRET}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(url, clock):
    made: list[AltResolver] = []

    def factory(**kw) -> AltResolver:
        kw.setdefault("clock", clock)
        resolver = AltResolver(kw.pop("url", url), **kw)
        made.append(resolver)
        return resolver

    yield factory
    for r in made:
        r.close()


# --- decode ------------------------------------------------------------------


def test_decode_active_table():
    raw = encode_table(A_KEYS, last_extended_slot=99, start_index=2, authority=key(7))
    table = decode_lookup_table(raw, TABLE_A)
    assert table.addresses == [b58(k) for k in A_KEYS]
    assert table.deactivation_slot == U64_MAX and table.active
    assert table.last_extended_slot == 99
    assert table.last_extended_slot_start_index == 2
    assert table.authority == b58(key(7))


def test_decode_deactivated_frozen_table():
    table = decode_lookup_table(encode_table(A_KEYS, deactivation_slot=312_345_678))
    assert table.deactivation_slot == 312_345_678
    assert not table.active
    assert table.authority is None


def test_decode_empty_table():
    assert decode_lookup_table(encode_table([])).addresses == []


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (encode_table([])[:40], "shorter than"),
        (encode_table(A_KEYS, tag=0), "state tag is 0"),
        (encode_table(A_KEYS) + b"\x01\x02", "not a multiple of 32"),
        (encode_table(A_KEYS)[:56] + bytes(32 * 257), "more than the maximum"),
    ],
)
def test_decode_rejects_bad_data(raw, fragment):
    with pytest.raises(AltError, match=fragment) as exc:
        decode_lookup_table(raw, TABLE_A)
    assert TABLE_A in str(exc.value)


# --- resolve -----------------------------------------------------------------


def test_resolve_orders_all_writable_then_all_readonly(rpc, make):
    r = make()
    writable, readonly = r.resolve(
        [(TABLE_A, bytes([2, 0]), bytes([1])), (TABLE_B, [1], b"\x00\x02")]
    )
    assert writable == [b58(A_KEYS[2]), b58(A_KEYS[0]), b58(B_KEYS[1])]
    assert readonly == [b58(A_KEYS[1]), b58(B_KEYS[0]), b58(B_KEYS[2])]
    assert len(rpc.requests) == 1
    assert rpc.requests[0]["method"] == "getMultipleAccounts"
    assert rpc.params == [[[TABLE_A, TABLE_B], {"encoding": "base64", "commitment": "confirmed"}]]
    assert r.stats() == {"hits": 0, "misses": 2, "fetches": 1, "cached_tables": 2}


def test_no_lookups_makes_no_request(rpc, make):
    assert make().resolve([]) == ([], [])
    assert rpc.requests == []


def test_cache_hit_within_ttl(rpc, make, clock):
    r = make()
    first = r.resolve([(TABLE_A, b"\x00", b"\x01")])
    clock.now += TTL - 1
    assert r.resolve([(TABLE_A, b"\x00", b"\x01")]) == first
    assert len(rpc.requests) == 1
    assert (r.hits, r.misses, r.fetches) == (1, 1, 1)


def test_expired_entry_is_refetched(rpc, make, clock):
    r = make()
    r.resolve([(TABLE_A, b"\x00", b""), (TABLE_B, b"\x00", b"")])
    clock.now += TTL
    r.resolve([(TABLE_A, b"\x01", b"")])
    assert len(rpc.requests) == 2
    assert rpc.params[1][0] == [TABLE_A]


def test_grown_table_is_refetched_once(rpc, make):
    r = make()
    r.resolve([(TABLE_A, b"\x00", b""), (TABLE_B, b"\x00", b"")])
    rpc.put(TABLE_A, A_KEYS + [key(4), key(5)])  # extended on chain after we cached it
    writable, readonly = r.resolve([(TABLE_A, b"\x04", b""), (TABLE_B, b"", b"\x02")])
    assert writable == [b58(key(5))]
    assert readonly == [b58(B_KEYS[2])]
    assert len(rpc.requests) == 2
    assert rpc.params[1][0] == [TABLE_A]  # B was still fresh and long enough
    r.resolve([(TABLE_A, b"\x04", b"")])
    assert len(rpc.requests) == 2


def test_index_out_of_range_after_refetch(rpc, make):
    r = make()
    r.resolve([(TABLE_A, b"\x00", b"")])
    with pytest.raises(AltError) as exc:
        r.resolve([(TABLE_A, b"\x01", b"\x09")])
    assert len(rpc.requests) == 2  # exactly one refetch, then give up
    msg = str(exc.value)
    assert TABLE_A in msg and "index 9" in msg and "3 addresses" in msg


def test_index_out_of_range_on_first_fetch_does_not_fetch_twice(rpc, make):
    with pytest.raises(AltError, match="index 3"):
        make().resolve([(TABLE_A, b"\x03", b"")])
    assert len(rpc.requests) == 1


def test_negative_index_is_rejected(rpc, make):
    with pytest.raises(AltError, match=f"{TABLE_A}: index -1"):
        make().resolve([(TABLE_A, [-1], [])])
    assert rpc.requests == []


def test_missing_table(rpc, make):
    missing = b58(key(0xEE))
    r = make()
    with pytest.raises(AltError, match="does not exist") as exc:
        r.resolve([(TABLE_A, b"\x00", b""), (missing, b"\x00", b"")])
    assert missing in str(exc.value)
    # the table that did exist was still cached
    r.resolve([(TABLE_A, b"\x01", b"")])
    assert len(rpc.requests) == 1


def test_wrong_owner(rpc, make):
    rpc.put(TABLE_A, A_KEYS, owner="11111111111111111111111111111111")
    with pytest.raises(AltError, match="owned by 11111111111111111111111111111111") as exc:
        make().resolve([(TABLE_A, b"\x00", b"")])
    assert TABLE_A in str(exc.value)


def test_http_500_names_table_and_hides_api_key(rpc, make, caplog):
    caplog.set_level(logging.DEBUG)
    rpc.mode = "500"
    with pytest.raises(AltError, match="HTTP 500") as exc:
        make().resolve([(TABLE_A, b"\x00", b"")])
    assert TABLE_A in str(exc.value)
    assert SECRET not in str(exc.value)
    assert exc.value.__cause__ is None
    assert rpc.paths == [f"/?api-key={SECRET}"]  # the key was really sent
    assert caplog.records, "httpx logs each request at INFO"
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_jsonrpc_error_hides_api_key(rpc, make):
    rpc.mode = "rpc_error"
    with pytest.raises(AltError, match="-32005") as exc:
        make().resolve([(TABLE_A, b"\x00", b"")])
    assert TABLE_A in str(exc.value)
    assert "quota exceeded" in str(exc.value)
    assert SECRET not in str(exc.value)


def test_timeout(rpc, make):
    rpc.mode = "hang"
    with pytest.raises(AltError, match="timed out") as exc:
        make(timeout_s=0.1).resolve([(TABLE_A, b"\x00", b"")])
    rpc.release.set()
    assert TABLE_A in str(exc.value) and SECRET not in str(exc.value)


def test_connection_refused(make):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = make(url=f"http://user:pw@127.0.0.1:{port}/?api-key={SECRET}")
    with pytest.raises(AltError, match="ConnectError") as exc:
        r.resolve([(TABLE_A, b"\x00", b"")])
    msg = str(exc.value)
    assert SECRET not in msg and "pw" not in msg
    assert f"http://127.0.0.1:{port}/" in msg


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://mainnet.helius-rpc.com/?api-key=abc123", "https://mainnet.helius-rpc.com/"),
        ("https://user:pass@rpc.example.com:8899/rpc?x=1#frag", "https://rpc.example.com:8899/rpc"),
        ("http://[::1]:8899", "http://[::1]:8899"),
        (
            "https://solana-mainnet.g.alchemy.com/v2/AbCdEfGhIjKlMnOpQrStUvWx",
            "https://solana-mainnet.g.alchemy.com/v2/***",
        ),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected
