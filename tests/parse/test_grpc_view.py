"""TxView <-> Yellowstone SubscribeUpdate codec."""

from __future__ import annotations

import dataclasses
import random
import struct

import based58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solders.pubkey import Pubkey

from pocketwatcher.parse.grpc_view import encode_tx_error, update_from_view, view_from_update
from pocketwatcher.parse.txview import Ix, TokenBal, TxError, TxView
from pocketwatcher.proto import geyser_pb2

_rnd = random.Random(7)


def key() -> str:
    return str(Pubkey.from_bytes(_rnd.randbytes(32)))


def sig() -> str:
    return based58.b58encode(_rnd.randbytes(64)).decode()


def expected_after_trip(v: TxView) -> TxView:
    err = encode_tx_error(v.err) if (v.failed or v.err is not None) else None
    return dataclasses.replace(v, block_time=None, err=err, failed=v.failed or v.err is not None)


def legacy_view() -> TxView:
    keys = [key() for _ in range(9)]
    mint = key()
    s = sig()
    return TxView(
        signature=s,
        slot=250_000_123,
        block_time=1_700_000_000,
        index=42,
        keys=keys,
        num_signers=1,
        ixs=[
            Ix(7, [], b"\x02\x40\x0d\x03\x00", 0, None, 1),
            Ix(8, [0, 1, 2, 3, 4, 5], b"\x66\x06\x3d\x12\x01\xda\xeb\xea" + bytes(17), 1, None, 1),
            Ix(6, [4, 3, 0], b"\x03" + (1000).to_bytes(8, "little"), 1, 0, 2),
            Ix(5, [0, 2], b"\x02\x00\x00\x00", 1, 1, 2),
            Ix(8, [2], b"\xe4\x45\xa5\x2e\x51\xcb\x9a\x1d" + bytes(20), 1, 2, 2),
            Ix(6, [0], b"", 2, None, 1),
        ],
        logs=[f"Program {keys[8]} invoke [1]", "Program log: Instruction: Buy", f"Program {keys[8]} success"],
        pre_tokens={3: TokenBal(mint, keys[2], 10**15, 6, keys[6])},
        post_tokens={
            3: TokenBal(mint, keys[2], 10**15 - 1000, 6, keys[6]),
            4: TokenBal(mint, keys[0], 1000, 6, keys[6]),
        },
        pre_balances=[10**10, 0, 5 * 10**9, 2039280, 0, 1, 1, 1, 1],
        post_balances=[10**10 - 5000 - 10**8, 0, 5 * 10**9 + 10**8, 2039280, 2039280, 1, 1, 1, 1],
        fee=5000,
        failed=False,
        err=None,
        version="legacy",
        num_static_keys=9,
        num_readonly_signed=0,
        num_readonly_unsigned=4,
        recent_blockhash=key(),
        signatures=[s],
        compute_units=31_337,
    )


def v0_view() -> TxView:
    """v0 with 2 loaded writable + 2 loaded readonly keys; the CPI'd program comes from a table."""
    keys = [key() for _ in range(10)]
    s1, s2 = sig(), sig()
    return TxView(
        signature=s1,
        slot=300_000_000,
        block_time=None,
        index=0,
        keys=keys,
        num_signers=2,
        ixs=[
            Ix(5, [0, 6, 7, 8, 9], bytes(range(30)), 0, None, 1),
            Ix(9, [6, 7, 1], b"\x09", 0, 0, None),
            Ix(8, [7], b"\x01\x02", 0, 1, None),
            Ix(4, [], b"", 1, None, 1),
            Ix(9, [2, 3], b"x", 2, None, 1),
            Ix(8, [3], b"y", 2, 0, None),
        ],
        logs=None,
        pre_tokens={7: TokenBal(key(), None, 0, 0, None)},
        post_tokens={7: TokenBal(key(), keys[1], 123456789, 9, None)},
        pre_balances=list(range(10)),
        post_balances=list(range(10, 20)),
        fee=10_000,
        failed=False,
        version=0,
        lookups=[(key(), bytes([3, 1]), bytes([0])), (key(), b"", bytes([250]))],
        num_static_keys=6,
        num_loaded_writable=2,
        num_readonly_signed=1,
        num_readonly_unsigned=2,
        recent_blockhash=key(),
        signatures=[s1, s2],
        compute_units=None,
    )


def failed_view(err: object = None) -> TxView:
    v = legacy_view()
    return dataclasses.replace(v, failed=True, err=err, logs=[], post_tokens=dict(v.pre_tokens))


@pytest.mark.parametrize("make", [legacy_view, v0_view, failed_view], ids=["legacy", "v0", "failed"])
def test_round_trip(make):
    v = make()
    assert view_from_update(update_from_view(v)) == expected_after_trip(v)


@pytest.mark.parametrize("make", [legacy_view, v0_view])
def test_accepts_bytes_message_and_inner_transaction(make):
    v = make()
    update = update_from_view(v)
    data = update.SerializeToString()
    want = expected_after_trip(v)
    assert view_from_update(data) == want
    assert view_from_update(bytearray(data)) == want
    assert view_from_update(memoryview(data)) == want
    assert view_from_update(update) == want
    assert view_from_update(update.transaction) == want


def test_encoding_shape_v0():
    v = v0_view()
    update = update_from_view(v, filters=("a", "b"))
    assert list(update.filters) == ["a", "b"]
    info = update.transaction.transaction
    msg, meta = info.transaction.message, info.meta
    assert update.transaction.slot == v.slot and info.index == v.index and not info.is_vote
    assert info.signature == based58.b58decode(v.signature.encode())
    assert msg.versioned
    assert len(msg.account_keys) == 6
    assert [str(Pubkey.from_bytes(k)) for k in meta.loaded_writable_addresses] == v.keys[6:8]
    assert [str(Pubkey.from_bytes(k)) for k in meta.loaded_readonly_addresses] == v.keys[8:]
    assert [ci.program_id_index for ci in msg.instructions] == [5, 4, 9]
    assert [g.index for g in meta.inner_instructions] == [0, 2]
    assert not any(ii.HasField("stack_height") for g in meta.inner_instructions for ii in g.instructions)
    assert meta.log_messages_none and not meta.log_messages
    assert not meta.HasField("err")
    assert not meta.HasField("compute_units_consumed")
    assert msg.address_table_lookups[1].readonly_indexes == bytes([250])
    tb = meta.post_token_balances[0]
    assert (tb.account_index, tb.owner, tb.program_id) == (7, v.keys[1], "")
    assert tb.ui_token_amount.amount == "123456789"
    assert tb.ui_token_amount.ui_amount_string == "0.123456789"
    assert tb.ui_token_amount.ui_amount == pytest.approx(0.123456789)


def test_encoding_shape_legacy():
    v = legacy_view()
    meta = update_from_view(v).transaction.transaction.meta
    assert not update_from_view(v).transaction.transaction.transaction.message.versioned
    (group,) = meta.inner_instructions
    assert group.index == 1 and [ii.stack_height for ii in group.instructions] == [2, 2, 2]
    assert meta.compute_units_consumed == 31_337
    amounts = {tb.account_index: tb.ui_token_amount for tb in meta.post_token_balances}
    assert amounts[3].ui_amount_string == "999999999.999"
    assert amounts[4].ui_amount_string == "0.001"


def test_view_fields_from_protobuf():
    v = view_from_update(update_from_view(v0_view()))
    assert [(ix.path, ix.height) for ix in v.ixs] == [
        ("0", 1),
        ("0.0", None),
        ("0.1", None),
        ("1", 1),
        ("2", 1),
        ("2.0", None),
    ]
    assert v.version == 0 and v.block_time is None and v.logs is None
    assert list(v.ixs[0].accounts) == [0, 6, 7, 8, 9]  # bytes: a sequence of u8 indexes
    assert v.pre_tokens[7].owner is None and v.pre_tokens[7].program is None
    legacy = legacy_view()
    lv = view_from_update(update_from_view(legacy))
    assert lv.version == "legacy" and lv.logs == legacy.logs and lv.logs is not legacy.logs


@pytest.mark.parametrize(
    ("err", "want"),
    [
        ({"InstructionError": [2, {"Custom": 6001}]}, struct.pack("<IBII", 8, 2, 25, 6001)),
        ({"InstructionError": [0, "InvalidAccountData"]}, b"\x00\x00\x00\x00"),
        ("AccountInUse", b"\x00\x00\x00\x00"),
        (None, b"\x00\x00\x00\x00"),
        (
            b"\x08\x00\x00\x00\x01\x19\x00\x00\x00\x01\x00\x00\x00",
            b"\x08\x00\x00\x00\x01\x19\x00\x00\x00\x01\x00\x00\x00",
        ),
        (b"", b""),
    ],
)
def test_failed_transaction_error_bytes(err, want):
    v = failed_view(err)
    update = update_from_view(v)
    meta = update.transaction.transaction.meta
    assert meta.HasField("err") and meta.err.err == want
    back = view_from_update(update.SerializeToString())
    assert back.failed and back.err == want
    assert back == expected_after_trip(v)


def test_success_has_no_err_field():
    meta = update_from_view(legacy_view()).transaction.transaction.meta
    assert not meta.HasField("err")
    assert view_from_update(update_from_view(legacy_view())).err is None


def test_signature_falls_back_to_first_transaction_signature():
    v = v0_view()
    update = update_from_view(v)
    update.transaction.transaction.signature = b""
    assert view_from_update(update).signature == v.signatures[0]
    update.transaction.transaction.signature = based58.b58decode(v.signatures[1].encode())
    assert view_from_update(update).signature == v.signatures[1]


# ---- errors -------------------------------------------------------------------------------


def reason(update) -> str:
    """The TxError reason, whether raised while building the view or while reading its
    token balances (those are converted lazily: the hot path reads only what it needs)."""
    with pytest.raises(TxError) as ei:
        view = view_from_update(update)
        dict(view.pre_tokens), dict(view.post_tokens)
    return ei.value.reason


@pytest.mark.parametrize("data", [b"\xff\xff\xff\xff", b"garbage!", b"\x22\x05abc"])
def test_garbage_bytes(data):
    assert reason(data) == "bad_protobuf"


def test_not_a_transaction():
    assert reason(geyser_pb2.SubscribeUpdate(ping=geyser_pb2.SubscribeUpdatePing())) == "not_a_transaction"
    assert reason(geyser_pb2.SubscribeUpdate(ping=geyser_pb2.SubscribeUpdatePing()).SerializeToString()) == (
        "not_a_transaction"
    )
    assert (
        reason(geyser_pb2.SubscribeUpdate(slot=geyser_pb2.SubscribeUpdateSlot(slot=1))) == "not_a_transaction"
    )
    assert reason(b"") == "not_a_transaction"
    assert reason(geyser_pb2.SubscribeUpdateTransaction(slot=5)) == "not_a_transaction"
    assert reason({"transaction": {}}) == "not_a_transaction"


def _update(v: TxView) -> geyser_pb2.SubscribeUpdate:
    return update_from_view(v)


def test_program_index_out_of_range():
    update = _update(legacy_view())
    update.transaction.transaction.transaction.message.instructions[1].program_id_index = 9
    assert reason(update) == "bad_index"
    assert reason(update.SerializeToString()) == "bad_index"


def test_account_index_out_of_range():
    update = _update(v0_view())
    update.transaction.transaction.transaction.message.instructions[0].accounts = bytes([0, 10])
    assert reason(update) == "bad_index"


def test_inner_indices_out_of_range():
    update = _update(v0_view())
    update.transaction.transaction.meta.inner_instructions[0].instructions[1].program_id_index = 200
    assert reason(update) == "bad_index"
    update = _update(v0_view())
    update.transaction.transaction.meta.inner_instructions[1].instructions[0].accounts = b"\x0a"
    assert reason(update) == "bad_index"
    update = _update(v0_view())
    update.transaction.transaction.meta.inner_instructions[1].index = 3  # only 3 top-level instructions
    assert reason(update) == "bad_index"


def test_token_balance_index_out_of_range():
    update = _update(legacy_view())
    update.transaction.transaction.meta.pre_token_balances[0].account_index = 9
    assert reason(update) == "bad_index"
    update = _update(legacy_view())
    update.transaction.transaction.meta.post_token_balances[1].account_index = 100
    assert reason(update) == "bad_index"


def test_loaded_keys_count_for_indices():
    # index 9 is valid only because of the two loaded readonly addresses
    update = _update(v0_view())
    del update.transaction.transaction.meta.loaded_readonly_addresses[:]
    assert reason(update) == "bad_index"


def test_bad_key_length_and_token_amount():
    update = _update(legacy_view())
    update.transaction.transaction.transaction.message.account_keys[3] = b"\x01" * 31
    assert reason(update) == "bad_key"
    update = _update(legacy_view())
    update.transaction.transaction.meta.pre_token_balances[0].ui_token_amount.amount = "1.5"
    assert reason(update) == "bad_token_balance"


def test_update_from_view_rejects_inconsistent_views():
    v = dataclasses.replace(v0_view(), num_static_keys=0)
    with pytest.raises(TxError) as ei:
        update_from_view(v)
    assert ei.value.reason == "bad_view"
    with pytest.raises(TxError) as ei:
        update_from_view(dataclasses.replace(legacy_view(), keys=["not a key"] * 9))
    assert ei.value.reason == "bad_key"


# ---- property: random views survive the trip ----------------------------------------------

_KEYS = [key() for _ in range(64)]


@st.composite
def views(draw) -> TxView:
    n = draw(st.integers(1, 40))
    keys = draw(st.lists(st.sampled_from(_KEYS), min_size=n, max_size=n))
    n_static = draw(st.integers(1, n))
    n_w = draw(st.integers(0, n - n_static))
    versioned = n_static < n or draw(st.booleans())
    idx = st.integers(0, n - 1)
    ixs = []
    for outer in range(draw(st.integers(0, 5))):
        ixs.append(
            Ix(draw(idx), draw(st.lists(idx, max_size=8)), draw(st.binary(max_size=40)), outer, None, 1)
        )
        for j in range(draw(st.integers(0, 4))):
            h = draw(st.one_of(st.none(), st.integers(2, 5)))
            ixs.append(
                Ix(draw(idx), draw(st.lists(idx, max_size=8)), draw(st.binary(max_size=40)), outer, j, h)
            )
    u64 = st.integers(0, 2**64 - 1)
    tokens = st.dictionaries(
        idx,
        st.builds(
            TokenBal,
            st.sampled_from(_KEYS),
            st.one_of(st.none(), st.sampled_from(_KEYS)),
            u64,
            st.integers(0, 12),
            st.one_of(st.none(), st.sampled_from(_KEYS)),
        ),
        max_size=4,
    )
    sigs = draw(st.lists(st.binary(min_size=64, max_size=64), min_size=1, max_size=3))
    sigs = [based58.b58encode(s).decode() for s in sigs]
    failed = draw(st.booleans())
    return TxView(
        signature=sigs[0],
        slot=draw(u64),
        block_time=draw(st.one_of(st.none(), st.integers(0, 2**40))),
        index=draw(u64),
        keys=keys,
        num_signers=draw(st.integers(0, n_static)),
        ixs=ixs,
        logs=draw(st.one_of(st.none(), st.lists(st.text(max_size=30), max_size=5))),
        pre_tokens=draw(tokens),
        post_tokens=draw(tokens),
        pre_balances=draw(st.lists(u64, min_size=n, max_size=n)),
        post_balances=draw(st.lists(u64, min_size=n, max_size=n)),
        fee=draw(u64),
        failed=failed,
        err=draw(st.sampled_from([None, {"InstructionError": [1, {"Custom": 6000}]}, b"\x01\x00\x00\x00"]))
        if failed
        else None,
        version=0 if versioned else "legacy",
        lookups=[(_KEYS[0], bytes(range(n_w)), bytes(range(n - n_static - n_w)))] if versioned else [],
        num_static_keys=n_static,
        num_loaded_writable=n_w,
        num_readonly_signed=draw(st.integers(0, 3)),
        num_readonly_unsigned=draw(st.integers(0, 3)),
        recent_blockhash=draw(st.sampled_from(_KEYS)),
        signatures=sigs,
        compute_units=draw(st.one_of(st.none(), u64)),
    )


@settings(max_examples=200, deadline=None)
@given(views())
def test_round_trip_property(v):
    assert view_from_update(update_from_view(v).SerializeToString()) == expected_after_trip(v)
