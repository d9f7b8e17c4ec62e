"""Replay server stream behaviour over real gRPC: ping/pong, filter replacement, server
pings, end of capture, pacing, concurrent clients, x-token, and the unary RPCs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest
from geyser_helpers import PUMP, RAY, Stream, b58, kinds, standard_capture, tx_ids, tx_update, write_capture
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from pocketwatcher.geyser.server import ReplayServer, parse_speed
from pocketwatcher.proto import geyser_pb2 as pb
from pocketwatcher.proto import geyser_pb2_grpc


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return standard_capture(tmp_path_factory)


def txreq(name, *include, from_slot=None) -> pb.SubscribeRequest:
    req = pb.SubscribeRequest()
    req.transactions[name].account_include.extend(b58(k) for k in include)
    if from_slot is not None:
        req.from_slot = from_slot
    return req


@pytest.fixture(scope="module")
def paced_capture(tmp_path_factory):
    """Six transactions with 1 s recorded gaps, in slots 200-205."""
    ups = [tx_update(n, 199 + n, 1_700_000_000.0 + n, [PUMP]) for n in range(1, 7)]
    return write_capture(tmp_path_factory.mktemp("paced") / "paced.pwcap", ups)


@pytest.fixture
def idle_server(capture):
    with ReplayServer(capture, ping_interval=0.2) as srv:
        yield srv


def test_ping_request_is_answered_and_leaves_the_filter_alone(idle_server):
    stream = Stream(idle_server.port).send(txreq("pump", PUMP))
    assert tx_ids(stream.data(2)) == [1, 3]
    # A ping that also carries other filters and a from_slot: only the pong counts.
    ping = txreq("other", from_slot=100)
    ping.ping.id = 42
    stream.send(ping)
    pongs = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        u = stream.next()
        assert u.WhichOneof("update_oneof") in ("ping", "pong"), "a ping request must not replay data"
        if u.HasField("pong"):
            pongs.append(u.pong.id)
    assert pongs == [42]
    # A real request replaces the filters and, with from_slot, rewinds.
    stream.send(txreq("ray", RAY, from_slot=100))
    ups = stream.data(2)
    assert tx_ids(ups) == [3, 5] and all(list(u.filters) == ["ray"] for u in ups)
    stream.close()


def test_server_pings_keep_coming_after_the_capture_ends(idle_server):
    stream = Stream(idle_server.port).send(txreq("all"))
    assert len(stream.data(6)) == 6
    t0 = time.monotonic()
    pings = 0
    while pings < 3:
        u = stream.next(timeout=1.0)
        assert u is not None, "idle stream must stay open"
        pings += u.HasField("ping")
    assert time.monotonic() - t0 < 1.5
    assert stream.error is None
    stream.close()


def test_headers_go_out_before_any_request(idle_server):
    stream = Stream(idle_server.port)
    got = []
    t = threading.Thread(target=lambda: got.append(stream.call.initial_metadata()), daemon=True)
    t.start()
    t.join(2.0)
    assert got, "response headers must not wait for data"
    stream.close()


def test_end_of_stream_close_ends_with_ok(capture):
    with ReplayServer(capture, end_of_stream="close", ping_interval=60) as srv:
        stream = Stream(srv.port).send(txreq("all"))
        ups = stream.until_end()
        assert tx_ids(ups) == [1, 2, 3, 4, 5, 6] and stream.error is None
        assert stream.call.code() == grpc.StatusCode.OK
        stream.close()


def test_filter_replacement_mid_stream_and_speed_pacing(paced_capture):
    with ReplayServer(paced_capture, speed=10, end_of_stream="close", ping_interval=60) as srv:
        stream = Stream(srv.port).send(txreq("a", PUMP))
        first = stream.data(2)
        t_first = time.monotonic()
        stream.send(txreq("b", PUMP))
        rest = [u for u in stream.until_end() if u.HasField("transaction")]
        elapsed = time.monotonic() - t_first
    names = [list(u.filters) for u in first + rest]
    assert tx_ids(first + rest) == [1, 2, 3, 4, 5, 6]  # the position is kept
    assert names[:2] == [["a"], ["a"]] and names[-3:] == [["b"]] * 3
    assert names == sorted(names)  # never back to "a" once "b" was seen
    # 1 s recorded gaps at speed 10: the remaining four gaps take ~0.4 s.
    assert 0.25 < elapsed < 1.2, elapsed


def test_speed_max_does_not_wait(paced_capture):
    with ReplayServer(paced_capture, speed=None, end_of_stream="close", ping_interval=60) as srv:
        t0 = time.monotonic()
        stream = Stream(srv.port).send(txreq("a"))
        assert tx_ids(stream.until_end()) == [1, 2, 3, 4, 5, 6]
        assert time.monotonic() - t0 < 0.5
        stream.close()


def test_several_clients_each_get_their_own_replay(paced_capture):
    with ReplayServer(paced_capture, speed=20, end_of_stream="close", ping_interval=60) as srv:
        streams = [Stream(srv.port).send(txreq(f"c{i}")) for i in range(5)]
        t0 = time.monotonic()
        results = [s.until_end() for s in streams]
        elapsed = time.monotonic() - t0
        for i, ups in enumerate(results):
            assert tx_ids(ups) == [1, 2, 3, 4, 5, 6]
            assert {tuple(u.filters) for u in ups if u.HasField("transaction")} == {(f"c{i}",)}
        assert elapsed < 1.0, "streams must run side by side (one alone takes ~0.25 s)"
        for s in streams:
            s.close()


def test_unary_rpcs(capture):
    with ReplayServer(capture) as srv, grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        stub = geyser_pb2_grpc.GeyserStub(channel)
        assert stub.Ping(pb.PingRequest(count=3)).count == 3
        assert stub.GetSlot(pb.GetSlotRequest()).slot == 102  # the newest block_meta (103 has none)
        assert stub.GetSlot(pb.GetSlotRequest(commitment=pb.CONFIRMED)).slot == 101
        assert stub.GetSlot(pb.GetSlotRequest(commitment=pb.FINALIZED)).slot == 100
        assert stub.GetBlockHeight(pb.GetBlockHeightRequest()).block_height == 90_102
        latest = stub.GetLatestBlockhash(pb.GetLatestBlockhashRequest(commitment=pb.CONFIRMED))
        assert (latest.slot, latest.blockhash, latest.last_valid_block_height) == (101, "hash101", 90_401)
        assert stub.IsBlockhashValid(pb.IsBlockhashValidRequest(blockhash="hash100")).valid
        assert not stub.IsBlockhashValid(pb.IsBlockhashValidRequest(blockhash="nope")).valid
        fin = pb.IsBlockhashValidRequest(blockhash="hash102", commitment=pb.FINALIZED)
        assert stub.IsBlockhashValid(fin).slot == 100 and not stub.IsBlockhashValid(fin).valid  # 102 never finalized
        fin.blockhash = "hash100"
        assert stub.IsBlockhashValid(fin).valid
        assert stub.SubscribeReplayInfo(pb.SubscribeReplayInfoRequest()).first_available == 100
        version = json.loads(stub.GetVersion(pb.GetVersionRequest()).version)
        assert version["version"]["package"] == "pocketwatcher-replay"
        assert version["extra"]["last_slot"] == 103
        with pytest.raises(grpc.RpcError) as e:
            stub.GetSlot(pb.GetSlotRequest(commitment=9))
        assert e.value.code() == grpc.StatusCode.UNKNOWN
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=HealthCheckRequest.SerializeToString,
                                    response_deserializer=HealthCheckResponse.FromString)
        for service in ("geyser.Geyser", ""):  # as Yellowstone registers it
            assert check(HealthCheckRequest(service=service)).status == HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as e:
            check(HealthCheckRequest(service="nope.Nope"))
        assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_block_of_an_abandoned_fork_is_not_valid_at_confirmed(tmp_path):
    from geyser_helpers import meta_update, slot_update

    ups = [slot_update(200, pb.SLOT_PROCESSED, 0), meta_update(200, 0),
           slot_update(201, pb.SLOT_PROCESSED, 0), meta_update(201, 0),  # a fork that never confirms
           slot_update(202, pb.SLOT_PROCESSED, 0), meta_update(202, 0),
           slot_update(200, pb.SLOT_CONFIRMED, 0), slot_update(202, pb.SLOT_CONFIRMED, 0),
           slot_update(200, pb.SLOT_FINALIZED, 0)]
    cap = write_capture(tmp_path / "fork.pwcap", ups)
    with ReplayServer(cap) as srv, grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        stub = geyser_pb2_grpc.GeyserStub(channel)

        def valid(blockhash, commitment):
            return stub.IsBlockhashValid(pb.IsBlockhashValidRequest(blockhash=blockhash, commitment=commitment)).valid

        assert [valid(f"hash{s}", pb.PROCESSED) for s in (200, 201, 202)] == [True, True, True]
        assert [valid(f"hash{s}", pb.CONFIRMED) for s in (200, 201, 202)] == [True, False, True]
        assert [valid(f"hash{s}", pb.FINALIZED) for s in (200, 201, 202)] == [True, False, False]
        assert stub.GetSlot(pb.GetSlotRequest(commitment=pb.CONFIRMED)).slot == 202


def test_x_token(capture):
    token = "s3cret-t0ken"
    with ReplayServer(capture, x_token=token, end_of_stream="close") as srv, \
            grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        for metadata in ((), (("x-token", "wrong"),)):
            stream = Stream(srv.port, metadata=metadata).send(txreq("all"))
            assert stream.until_end() == []
            assert stream.error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert token not in stream.error.details()
            stream.close()
            with pytest.raises(grpc.RpcError) as e:
                geyser_pb2_grpc.GeyserStub(channel).GetVersion(pb.GetVersionRequest(), metadata=metadata)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stream = Stream(srv.port, metadata=(("x-token", token),)).send(txreq("all"))
        assert tx_ids(stream.until_end()) == [1, 2, 3, 4, 5, 6]
        stream.close()


def test_replay_from_a_slot_twice_on_one_stream_and_client_half_close(capture):
    """A client that sends one request and half-closes still gets the whole replay."""
    with ReplayServer(capture, end_of_stream="close", ping_interval=60) as srv, \
            grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
        ups = list(geyser_pb2_grpc.GeyserStub(channel).Subscribe(iter([txreq("all", from_slot=102)])))
        assert tx_ids(ups) == [5, 6]
        assert kinds(ups)[0] == "ping"


def test_constructor_and_speed_parsing_errors(capture, tmp_path):
    assert parse_speed("max") is None and parse_speed("10") == 10.0 and parse_speed(None) is None
    for bad in ("fast", "0", "-1"):
        with pytest.raises(ValueError, match="--speed"):
            parse_speed(bad)
    with pytest.raises(ValueError, match="end_of_stream"):
        ReplayServer(capture, end_of_stream="stop")
    (tmp_path / "junk.pwcap").write_bytes(b"not a capture at all")
    with pytest.raises(ValueError, match="junk.pwcap"):
        ReplayServer(tmp_path / "junk.pwcap")
    with ReplayServer(capture) as a, pytest.raises(OSError, match="cannot listen"):
        ReplayServer(capture, port=a.port).start()


def test_serve_forever_stops_cleanly_on_sigterm_and_sigint(capture):
    script = ("import sys\n"
              "from pocketwatcher.geyser.server import serve_forever\n"
              "sys.exit(serve_forever(sys.argv[1], port=0, x_token='hidden-token', grace=0.5,\n"
              "                       on_ready=lambda s: print(s.port, flush=True)))\n")
    for sig in (signal.SIGTERM, signal.SIGINT):
        proc = subprocess.Popen([sys.executable, "-c", script, str(capture)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline())
            stream = Stream(port, metadata=(("x-token", "hidden-token"),)).send(txreq("all"))
            assert len(stream.data(6)) == 6
            proc.send_signal(sig)
            assert proc.wait(timeout=10) == 0
            assert stream.next() is None  # the open stream was ended by the shutdown
            assert "hidden-token" not in proc.stderr.read()
            stream.close()
        finally:
            proc.kill()


def test_stop_ends_open_streams_with_unavailable_and_frees_the_port(capture):
    """A stopped replay server looks like a provider that went away: open streams end with
    a retryable status (not a hang), and a new server can take the same port at once."""
    srv = ReplayServer(capture, ping_interval=60)  # idle at the end: the stream would stay open
    srv.start()
    port = srv.port
    stream = Stream(port).send(txreq("all"))
    assert tx_ids(stream.data(6)) == [1, 2, 3, 4, 5, 6]
    srv.stop(0.5)
    assert stream.until_end(timeout=5) == []
    assert stream.error.code() == grpc.StatusCode.UNAVAILABLE
    stream.close()
    with ReplayServer(capture, port=port, end_of_stream="close") as again:
        s2 = Stream(again.port).send(txreq("all"))
        assert tx_ids(s2.until_end()) == [1, 2, 3, 4, 5, 6]
        s2.close()


def test_streams_past_max_streams_are_refused_with_resource_exhausted(capture):
    with ReplayServer(capture, max_streams=2, ping_interval=60) as srv:
        open_ = [Stream(srv.port).send(txreq("all")) for _ in range(2)]
        for s in open_:
            s.data(6)
        third = Stream(srv.port).send(txreq("all"))
        assert third.until_end() == []
        assert third.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        third.close()
        open_[0].close()
        deadline = time.monotonic() + 3
        while True:  # the freed slot is usable once the server saw the cancel
            fourth = Stream(srv.port).send(txreq("all"))
            first = fourth.next()
            if fourth.error is None or time.monotonic() > deadline:
                break
            fourth.close()
        assert first is not None and fourth.error is None
        assert tx_ids(fourth.data(6)) == [1, 2, 3, 4, 5, 6]
        for s in (fourth, open_[1]):
            s.close()


def test_a_garbled_request_ends_the_stream_with_invalid_argument(capture):
    with ReplayServer(capture, ping_interval=60) as srv, grpc.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        call = ch.stream_stream("/geyser.Geyser/Subscribe", request_serializer=None,
                                response_deserializer=pb.SubscribeUpdate.FromString)
        with pytest.raises(grpc.RpcError) as e:
            list(call(iter([b"\xff\xff\xff"])))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
