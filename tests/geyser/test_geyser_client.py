"""GeyserClient against the replay server (and a mute server): keepalive, errors a user
can hit, and what a reconnecting caller needs."""

from __future__ import annotations

import asyncio

import pytest
from geyser_helpers import (
    PUMP,
    b58,
    check_errors_explained_and_token_hidden,
    check_stall_is_retryable,
    standard_capture,
)

from pocketwatcher.geyser.client import GeyserClient, GeyserError, backoff, build_request, parse_endpoint
from pocketwatcher.geyser.server import ReplayServer
from pocketwatcher.proto import geyser_pb2 as pb


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return standard_capture(tmp_path_factory)


def collect(endpoint, request, *, token=None, n=None, keepalive=False, until=None, **kw):
    async def go():
        out = []
        async with GeyserClient(endpoint, token, **kw) as client:
            sub = client.subscribe(request, keepalive_updates=keepalive)
            try:
                async for u in sub:
                    out.append(u)
                    if (n is not None and len(out) >= n) or (until is not None and until(u)):
                        break
            finally:
                await sub.close()
            return out, sub.last_slot
    return asyncio.run(asyncio.wait_for(go(), 10))


def test_parse_endpoint():
    assert parse_endpoint("http://127.0.0.1:10000") == ("127.0.0.1:10000", False, "http://127.0.0.1:10000")
    assert parse_endpoint("https://grpc.example.com") == ("grpc.example.com:443", True,
                                                          "https://grpc.example.com:443")
    # keys in the path never show up in what we display
    assert parse_endpoint("https://h.example:2053/SECRETKEY?api=K")[2] == "https://h.example:2053"
    for bad in ("grpc.example.com:443", "ftp://x", "http://"):
        with pytest.raises(GeyserError, match="http://HOST:PORT"):
            parse_endpoint(bad)
    with pytest.raises(GeyserError, match="not a number"):
        parse_endpoint("http://h:abc")


def test_build_request_is_the_runner_subscription():
    req = build_request([b58(PUMP)], from_slot=123)
    f = req.transactions["pocketwatcher"]
    assert list(f.account_include) == [b58(PUMP)] and f.vote is False and f.failed is False
    assert f.HasField("vote") and f.HasField("failed")
    assert "pocketwatcher_blocks" in req.blocks_meta and req.commitment == pb.CONFIRMED
    assert req.from_slot == 123 and not req.slots
    with pytest.raises(GeyserError, match="commitment"):
        build_request([], commitment="fast")


def test_subscribe_tracks_last_slot_and_answers_server_pings(capture):
    with ReplayServer(capture, ping_interval=0.2) as srv:
        ups, last = collect(srv.endpoint, build_request([b58(PUMP)], commitment="processed"), n=4)
        # tx 1 only (tx 3 failed), then the block times
        assert [u.WhichOneof("update_oneof") for u in ups] == ["transaction"] + ["block_meta"] * 3
        assert ups[0].transaction.transaction.signature[0] == 1 and list(ups[1].filters) == ["pocketwatcher_blocks"]
        assert last == 102
        ups, _ = collect(srv.endpoint, pb.SubscribeRequest(), keepalive=True, until=lambda u: u.HasField("pong"))
        # server pings are answered (within a keepalive tick) with a client ping, which the server pongs
        assert ups[0].HasField("ping") and ups[-1].HasField("pong")


def test_client_sends_its_own_keepalive_pings(capture):
    with ReplayServer(capture, ping_interval=60) as srv:
        ups, _ = collect(srv.endpoint, pb.SubscribeRequest(), keepalive=True, n=3, ping_interval=0.2)
    assert [u.WhichOneof("update_oneof") for u in ups] == ["ping", "pong", "pong"]


def _updates(*args, **kw):
    return collect(*args, **kw)[0]


def test_errors_say_what_to_do_and_hide_the_token(capture):
    check_errors_explained_and_token_hidden(_updates, capture)


def test_a_stalled_stream_is_reported_as_retryable():
    check_stall_is_retryable(_updates)


def test_backoff_is_jittered_exponential_and_capped():
    delays = [next(d) for d in [backoff(0.5, 4.0)] for _ in range(12)]
    assert all(0 <= x <= 4.0 for x in delays)
    assert max(delays[:2]) <= 1.0


def test_update_replaces_the_filters_on_the_open_stream(capture):
    async def go(endpoint):
        async with GeyserClient(endpoint) as client:
            sub = client.subscribe(build_request([b58(PUMP)], commitment="processed", blocks_meta=False))
            first = await sub.__anext__()
            await sub.update(build_request([], commitment="processed", vote=True, failed=None, blocks_meta=False,
                                           from_slot=100))
            second = [await sub.__anext__() for _ in range(2)]
            await sub.close()
            return first, second

    with ReplayServer(capture) as srv:
        first, second = asyncio.run(asyncio.wait_for(go(srv.endpoint), 10))
    assert first.transaction.transaction.signature[0] == 1
    assert [u.transaction.transaction.signature[0] for u in second] == [2, 6]  # the votes, from slot 100

