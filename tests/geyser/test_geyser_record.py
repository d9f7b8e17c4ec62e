"""``record()`` against the replay server: a capture of a capture keeps the bytes."""

from __future__ import annotations

import time

import pytest
from geyser_helpers import PUMP, PUMPSWAP, b58, standard_capture, standard_updates, tx_update, write_capture

from pocketwatcher.geyser.capture import CaptureReader
from pocketwatcher.geyser.record import default_programs, record
from pocketwatcher.geyser.server import ReplayServer
from pocketwatcher.geyser.wire import strip_field
from pocketwatcher.parse.programs.registry import KNOWN_PROGRAMS, PUMPFUN
from pocketwatcher.proto import geyser_pb2 as pb


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return standard_capture(tmp_path_factory)


def expected_records() -> list[bytes]:
    """What the standard request over PUMP/PUMPSWAP selects, in capture order."""
    out = []
    for u in standard_updates():
        kind = u.WhichOneof("update_oneof")
        if kind == "transaction":
            info = u.transaction.transaction
            keys = {*info.transaction.message.account_keys, *info.meta.loaded_writable_addresses,
                    *info.meta.loaded_readonly_addresses}
            if info.is_vote or info.meta.HasField("err") or not keys & {PUMP, PUMPSWAP}:
                continue
        out.append(u.SerializeToString())  # every slot status: the recorder asks for interslot ones
    return out


def test_record_round_trips_the_capture(capture, tmp_path):
    out = tmp_path / "rec.pwcap"
    with ReplayServer(capture, end_of_stream="close") as srv:
        n = record(srv.endpoint, out, programs=[b58(PUMP), b58(PUMPSWAP)], progress=False)
    recorded = list(CaptureReader(out))
    assert n == len(recorded) == len(expected_records()) == 13
    # Byte-identical once the subscriber's `filters` are taken off again.
    assert [strip_field(r, 1) for r in recorded] == expected_records()
    first = pb.SubscribeUpdate.FromString(recorded[1])
    assert first.HasField("transaction") and list(first.filters) == ["pocketwatcher"]
    meta = CaptureReader(out).meta
    assert meta["source"] == "capture" and meta["endpoint"] == srv.endpoint
    assert meta["programs"] == sorted([b58(PUMP), b58(PUMPSWAP)])
    # ... and the recording replays like the original.
    with ReplayServer(out, end_of_stream="close") as again:
        n2 = record(again.endpoint, tmp_path / "rec2.pwcap", programs=[b58(PUMP)], progress=True)
    assert n2 == 12  # tx 4 reached PUMPSWAP only


def test_record_sets_created_at_when_the_server_left_it_empty(tmp_path):
    cap = write_capture(tmp_path / "bare.pwcap", [tx_update(1, 5, None, [PUMP]), tx_update(2, 5, None, [PUMP])])
    out = tmp_path / "rec.pwcap"
    before = time.time()
    with ReplayServer(cap, end_of_stream="close") as srv:
        assert record(srv.endpoint, out, programs=[b58(PUMP)], progress=False) == 2
    for raw in CaptureReader(out):
        u = pb.SubscribeUpdate.FromString(raw)
        assert before - 1 <= u.created_at.ToNanoseconds() / 1e9 <= time.time() + 1
        assert u.transaction.transaction.signature  # the rest is intact


def test_record_stops_after_duration_or_max_updates_on_an_idle_stream(capture, tmp_path):
    with ReplayServer(capture, ping_interval=0.1) as srv:  # idle: never closes the stream
        t0 = time.monotonic()
        n = record(srv.endpoint, tmp_path / "d.pwcap", programs=[b58(PUMP)], duration=0.6, progress=False)
        assert 0.5 < time.monotonic() - t0 < 3 and n == 12
        assert len(list(CaptureReader(tmp_path / "d.pwcap"))) == 12
        assert record(srv.endpoint, tmp_path / "m.pwcap", programs=[b58(PUMP)], max_updates=3,
                      progress=False) == 3


def test_default_programs_are_everything_the_parser_knows():
    progs = default_programs()
    assert PUMPFUN in progs and set(progs) == set(KNOWN_PROGRAMS) and progs == sorted(progs)


def test_a_refused_recording_leaves_no_empty_capture(capture, tmp_path):
    from pocketwatcher.geyser.client import GeyserError

    out = tmp_path / "refused.pwcap"
    with ReplayServer(capture, x_token="right-token") as srv, pytest.raises(GeyserError) as e:
        record(srv.endpoint, out, x_token="wrong-token", progress=False, duration=5)
    assert "wrong-token" not in str(e.value) and "right-token" not in str(e.value)
    assert not out.exists()
