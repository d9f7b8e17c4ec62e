"""Subscribe filters over real gRPC: every transaction field, the tri-states, names, slots,
blocks_meta, commitment and the INVALID_ARGUMENT cases. One server, streams that end
with the capture (``end_of_stream="close"``)."""

from __future__ import annotations

import grpc
import pytest
from geyser_helpers import (
    JUP,
    PAYER_A,
    PAYER_C,
    POOL_X,
    PUMP,
    PUMPSWAP,
    RAY,
    Stream,
    b58,
    kinds,
    sig,
    standard_capture,
    standard_updates,
    tx_ids,
)

from pocketwatcher.geyser.filters import FilterLimits
from pocketwatcher.geyser.server import ReplayServer
from pocketwatcher.geyser.wire import filters_prefix
from pocketwatcher.proto import geyser_pb2 as pb


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return standard_capture(tmp_path_factory)


@pytest.fixture(scope="module")
def server(capture):
    with ReplayServer(capture, end_of_stream="close", ping_interval=60,
                      limits=FilterLimits(account_include_max=3)) as srv:
        yield srv


def run(server, request: pb.SubscribeRequest) -> list[pb.SubscribeUpdate]:
    stream = Stream(server.port).send(request)
    try:
        ups = stream.until_end()
        assert stream.error is None, stream.error
        return [u for u in ups if u.WhichOneof("update_oneof") not in ("ping", "pong")]
    finally:
        stream.close()


def txreq(name="t", **fields) -> pb.SubscribeRequest:
    req = pb.SubscribeRequest()
    f = req.transactions[name]
    for k, v in fields.items():
        if isinstance(v, list):
            getattr(f, k).extend(b58(x) if isinstance(x, bytes) else x for x in v)
        else:
            setattr(f, k, v)
    return req


@pytest.mark.parametrize(("fields", "expected"), [
    ({}, [1, 2, 3, 4, 5, 6]),
    ({"vote": True}, [2, 6]),
    ({"vote": False}, [1, 3, 4, 5]),
    ({"failed": True}, [3, 6]),
    ({"failed": False}, [1, 2, 4, 5]),
    ({"vote": False, "failed": False}, [1, 4, 5]),
    ({"account_include": [PUMP]}, [1, 3]),
    ({"account_include": [PUMP, JUP]}, [1, 3, 4]),  # values in one list OR
    ({"account_include": [PUMPSWAP]}, [4]),  # only reachable through the ALT (readonly)
    ({"account_include": [POOL_X]}, [4]),  # ALT writable
    ({"account_exclude": [PUMP]}, [2, 4, 5, 6]),
    ({"account_exclude": [PUMPSWAP]}, [1, 2, 3, 5, 6]),
    ({"account_required": [PAYER_A, RAY]}, [5]),
    ({"account_required": [PUMP, RAY]}, [3]),
    ({"account_include": [PUMP, RAY], "account_exclude": [PAYER_C]}, [1, 5]),  # fields AND
    ({"account_include": [RAY], "failed": False}, [5]),
    ({"signature": b58(sig(4))}, [4]),
    ({"signature": b58(sig(4)), "vote": True}, []),
])
def test_transaction_filter_fields(server, fields, expected):
    ups = run(server, txreq(**fields))
    assert tx_ids(ups) == expected
    assert all(list(u.filters) == ["t"] for u in ups)


def test_each_update_names_every_filter_it_matched(server):
    req = txreq("pump", account_include=[PUMP])
    req.transactions["ray"].account_include.append(b58(RAY))
    req.transactions["votes"].vote = True
    got = {u.transaction.transaction.signature[0]: list(u.filters) for u in run(server, req)}
    assert got == {1: ["pump"], 2: ["votes"], 3: ["pump", "ray"], 5: ["ray"], 6: ["votes"]}


def test_records_go_out_as_recorded_bytes_plus_filters(server):
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    call = channel.stream_stream("/geyser.Geyser/Subscribe",
                                 request_serializer=pb.SubscribeRequest.SerializeToString,
                                 response_deserializer=None)
    raw = [b for b in call(iter([txreq("swaps", account_include=[PUMP])])) if b.startswith(b"\x0a")]
    originals = [u.SerializeToString() for u in standard_updates() if u.HasField("transaction")]
    assert raw == [filters_prefix(("swaps",)) + originals[0], filters_prefix(("swaps",)) + originals[2]]
    channel.close()


def test_blocks_meta_and_slots(server):
    req = pb.SubscribeRequest()
    req.blocks_meta["bm"].SetInParent()
    req.slots["s"].SetInParent()
    ups = run(server, req)
    metas = [u for u in ups if u.HasField("block_meta")]
    assert [m.block_meta.slot for m in metas] == [100, 101, 102]
    assert all(list(m.filters) == ["bm"] for m in metas)
    slots = [(u.slot.slot, u.slot.status) for u in ups if u.HasField("slot")]
    # interslot statuses (first shred received) only with interslot_updates
    assert slots == [(100, 0), (100, 1), (101, 0), (101, 1), (100, 2), (102, 0), (103, 0)]
    assert not any(u.HasField("transaction") for u in ups)

    req.slots["s"].interslot_updates = True
    assert (102, pb.SLOT_FIRST_SHRED_RECEIVED) in [(u.slot.slot, u.slot.status) for u in run(server, req)]


def test_slots_filter_by_commitment(server):
    req = pb.SubscribeRequest(commitment=pb.CONFIRMED)
    req.slots["s"].filter_by_commitment = True
    assert [(u.slot.slot, u.slot.status) for u in run(server, req)] == [(100, 1), (101, 1)]


@pytest.mark.parametrize(("commitment", "expected"), [
    (pb.PROCESSED, [1, 2, 3, 4, 5, 6]),
    (pb.CONFIRMED, [1, 2, 3, 4]),  # slots 102 and 103 never confirm in the capture
    (pb.FINALIZED, [1, 2, 3]),
])
def test_commitment_releases_transactions_when_their_slot_gets_there(server, commitment, expected):
    req = txreq()
    req.commitment = commitment
    req.slots["s"].SetInParent()
    ups = run(server, req)
    assert tx_ids(ups) == expected
    if commitment != pb.PROCESSED:  # a slot's content, then the status that commits it (Yellowstone)
        status = pb.SLOT_CONFIRMED if commitment == pb.CONFIRMED else pb.SLOT_FINALIZED
        seen: set[int] = set()
        for u in ups:
            if u.HasField("transaction"):
                assert u.transaction.slot not in seen, "a transaction after its slot's commitment"
            elif u.slot.status == status:
                seen.add(u.slot.slot)
        assert seen


def test_transactions_status_sends_the_status_of_matching_transactions(server):
    """Yellowstone's transactions_status: the same filter fields as transactions, and a
    SubscribeUpdateTransactionStatus (slot, signature, is_vote, index, err) per match."""
    req = pb.SubscribeRequest()
    req.transactions_status["st"].failed = True
    ups = run(server, req)
    assert set(kinds(ups)) == {"transaction_status"}
    want = [u.transaction for u in standard_updates() if u.HasField("transaction")
            and u.transaction.transaction.meta.HasField("err")]
    got = [u.transaction_status for u in ups]
    assert [(s.slot, s.signature, s.is_vote, s.index, s.err.err) for s in got] == [
        (t.slot, t.transaction.signature, t.transaction.is_vote, t.transaction.index, t.transaction.meta.err.err)
        for t in want] and len(got) == 2
    assert all(list(u.filters) == ["st"] and u.HasField("created_at") for u in ups)


def test_transactions_and_their_status_both_go_out_in_that_order(server):
    req = txreq("t", account_include=[PUMP])
    req.transactions_status["s1"].account_include.append(b58(PUMP))
    req.transactions_status["s2"].vote = False
    ups = run(server, req)
    pairs = [(k, u.transaction.transaction.signature[0] if k == "transaction" else u.transaction_status.signature[0],
              tuple(u.filters)) for k, u in zip(kinds(ups), ups, strict=True)]
    assert pairs[:4] == [("transaction", 1, ("t",)), ("transaction_status", 1, ("s1", "s2")),
                         ("transaction", 3, ("t",)), ("transaction_status", 3, ("s1", "s2"))]
    assert [p for p in pairs[4:] if p[0] == "transaction"] == []  # 4 and 5 touch no PUMP key
    assert {p[1] for p in pairs[4:]} == {4, 5}  # ...but are not votes


def test_from_slot_starts_at_that_slot(server):
    req = txreq()
    req.blocks_meta["bm"].SetInParent()
    req.from_slot = 101
    ups = run(server, req)
    assert tx_ids(ups) == [4, 5, 6]
    assert [u.block_meta.slot for u in ups if u.HasField("block_meta")] == [101, 102]


def test_from_slot_replays_no_update_of_an_earlier_slot(server):
    """Yellowstone replays only messages of slots >= from_slot: a late status of an earlier
    slot (slot 100 finalizes while 101 streams) is not sent."""
    req = txreq()
    req.slots["s"].SetInParent()
    req.blocks_meta["bm"].SetInParent()
    req.from_slot = 101
    ups = run(server, req)
    slots = [u.slot.slot if k == "slot" else u.block_meta.slot if k == "block_meta" else u.transaction.slot
             for k, u in zip(kinds(ups), ups, strict=True)]
    assert slots and min(slots) == 101, slots
    whole = txreq()
    whole.slots["s"].SetInParent()
    assert any(u.slot.slot == 100 and u.slot.status == pb.SLOT_FINALIZED for u in run(server, whole)
               if u.HasField("slot") and u.slot.slot == 100)


def test_a_compressed_request_is_refused_with_unimplemented(server):
    """grpclib reads no compressed message: the stream ends with UNIMPLEMENTED and says how
    to fix it (before, it stayed open sending only pings)."""
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}", compression=grpc.Compression.Gzip)
    big = txreq(account_exclude=[JUP] * 200)  # grpcio leaves small messages uncompressed
    stream = Stream(server.port, channel=channel).send(big)
    stream.until_end()
    assert stream.error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "send SubscribeRequest uncompressed" in stream.error.details()
    stream.close()
    assert run(server, txreq())  # the server goes on serving


def test_from_slot_before_the_capture_is_refused_like_yellowstone(server):
    stream = Stream(server.port).send(pb.SubscribeRequest(from_slot=5))
    stream.until_end()
    assert stream.error.code() == grpc.StatusCode.INTERNAL
    assert "broadcast from 5 is not available, last available: 100" in stream.error.details()
    stream.close()


def test_a_request_without_filters_gets_no_data(server):
    stream = Stream(server.port).send(pb.SubscribeRequest())
    assert set(kinds(stream.until_end())) == {"ping"}
    stream.close()


def _bad(**fields):
    return txreq(**fields)


@pytest.mark.parametrize(("request_", "message"), [
    (_bad(account_include=["not-base58-0OIl"]), 'account_include[0] = "not-base58-0OIl": Invalid Base58'),
    (_bad(account_include=[b58(b"\x01" * 31)]), "wrong size (31 bytes, a pubkey is 32)"),
    (_bad(account_exclude=["x0"]), "account_exclude[0]"),
    (_bad(account_required=[b58(PUMP), "??"]), "account_required[1]"),
    (_bad(account_include=[PUMP, RAY, JUP, PAYER_A]), "Max amount of Pubkeys reached, only 3 allowed"),
    (_bad(signature="abc"), "signature"),
    (pb.SubscribeRequest(accounts={"a": pb.SubscribeRequestFilterAccounts()}), "accounts"),
    (pb.SubscribeRequest(entry={"e": pb.SubscribeRequestFilterEntry()}), "entry"),
    (pb.SubscribeRequest(commitment=7), "failed to create CommitmentLevel from 7"),
    (txreq("n" * 200), "oversized filter name (max allowed size 128), found 200"),
])
def test_bad_filters_are_invalid_argument(server, request_, message):
    stream = Stream(server.port).send(request_)
    stream.until_end()
    assert stream.error is not None and stream.error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stream.error.details().startswith("failed to create filter: ")
    assert message in stream.error.details()
    stream.close()
