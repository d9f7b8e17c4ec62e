"""The committed Yellowstone stubs are fresh and wire-compatible with PROTOCOL_FACTS.md section 1."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from pocketwatcher.proto import generate, geyser_pb2, geyser_pb2_grpc, solana_storage_pb2

needs_protoc = pytest.mark.skipif(
    importlib.util.find_spec("grpc_tools") is None,
    reason="grpcio-tools not installed (pip install -e .[test])",
)


@needs_protoc
def test_committed_stubs_match_fresh_generation():
    assert generate.stale_files() == [], "run: python -m pocketwatcher.proto.generate"
    assert generate.main(["--check"]) == 0


@needs_protoc
def test_check_reports_a_hand_edited_stub(tmp_path):
    for name in generate.OUTPUTS:
        shutil.copy(generate.PROTO_DIR / name, tmp_path / name)
    (tmp_path / "geyser_pb2.py").write_text("# edited\n", encoding="utf-8")
    (tmp_path / "solana_storage_pb2.pyi").unlink()
    assert generate.stale_files(tmp_path) == ["geyser_pb2.py", "solana_storage_pb2.pyi"]


@needs_protoc
def test_generation_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    assert generate.generate(a) == generate.generate(b)


def test_stubs_use_package_relative_imports():
    for name in generate.OUTPUTS:
        text = (generate.PROTO_DIR / name).read_text(encoding="utf-8")
        assert "\nimport solana_storage_pb2" not in text
        assert "\nfrom solana_storage_pb2 import" not in text
        assert "\nimport geyser_pb2" not in text


# (message descriptor, field, number) from PROTOCOL_FACTS.md sections 1.3-1.5
G, S = geyser_pb2, solana_storage_pb2
FIELD_NUMBERS = [
    (G.SubscribeRequest, "accounts", 1),
    (G.SubscribeRequest, "slots", 2),
    (G.SubscribeRequest, "transactions", 3),
    (G.SubscribeRequest, "blocks", 4),
    (G.SubscribeRequest, "blocks_meta", 5),
    (G.SubscribeRequest, "commitment", 6),
    (G.SubscribeRequest, "accounts_data_slice", 7),
    (G.SubscribeRequest, "entry", 8),
    (G.SubscribeRequest, "ping", 9),
    (G.SubscribeRequest, "transactions_status", 10),
    (G.SubscribeRequest, "from_slot", 11),
    (G.SubscribeRequestFilterTransactions, "vote", 1),
    (G.SubscribeRequestFilterTransactions, "failed", 2),
    (G.SubscribeRequestFilterTransactions, "account_include", 3),
    (G.SubscribeRequestFilterTransactions, "account_exclude", 4),
    (G.SubscribeRequestFilterTransactions, "signature", 5),
    (G.SubscribeRequestFilterTransactions, "account_required", 6),
    (G.SubscribeRequestFilterTransactions, "token_accounts", 30),
    (G.SubscribeRequestFilterAccounts, "account", 2),
    (G.SubscribeRequestFilterAccounts, "nonempty_txn_signature", 5),
    (G.SubscribeRequestFilterSlots, "interslot_updates", 2),
    (G.SubscribeRequestFilterBlocks, "include_entries", 4),
    (G.SubscribeUpdate, "filters", 1),
    (G.SubscribeUpdate, "account", 2),
    (G.SubscribeUpdate, "slot", 3),
    (G.SubscribeUpdate, "transaction", 4),
    (G.SubscribeUpdate, "block", 5),
    (G.SubscribeUpdate, "ping", 6),
    (G.SubscribeUpdate, "block_meta", 7),
    (G.SubscribeUpdate, "entry", 8),
    (G.SubscribeUpdate, "pong", 9),
    (G.SubscribeUpdate, "transaction_status", 10),
    (G.SubscribeUpdate, "created_at", 11),
    (G.SubscribeUpdateTransaction, "transaction", 1),
    (G.SubscribeUpdateTransaction, "slot", 2),
    (G.SubscribeUpdateTransactionInfo, "signature", 1),
    (G.SubscribeUpdateTransactionInfo, "is_vote", 2),
    (G.SubscribeUpdateTransactionInfo, "meta", 4),
    (G.SubscribeUpdateTransactionInfo, "index", 5),
    (G.SubscribeUpdateTransactionStatus, "err", 5),
    (G.SubscribeUpdateSlot, "dead_error", 4),
    (G.SubscribeUpdateAccountInfo, "txn_signature", 8),
    (G.SubscribeUpdateBlockMeta, "block_time", 4),
    (G.SubscribeUpdateBlockMeta, "block_height", 5),
    (G.SubscribeUpdateBlockMeta, "entries_count", 9),
    (G.SubscribeUpdateBlock, "transactions", 6),
    (G.SubscribeUpdateBlock, "parent_slot", 7),
    (G.SubscribeUpdateBlock, "entries", 13),
    (G.SubscribeUpdateEntry, "starting_transaction_index", 6),
    (G.SubscribeReplayInfoResponse, "first_available", 1),
    (G.IsBlockhashValidRequest, "commitment", 2),
    (G.GetLatestBlockhashResponse, "last_valid_block_height", 3),
    (S.ConfirmedBlock, "num_partitions", 8),
    (S.Transaction, "signatures", 1),
    (S.Message, "account_keys", 2),
    (S.Message, "recent_blockhash", 3),
    (S.Message, "versioned", 5),
    (S.Message, "address_table_lookups", 6),
    (S.Message, "config", 7),
    (S.MessageAddressTableLookup, "readonly_indexes", 3),
    (S.TransactionStatusMeta, "err", 1),
    (S.TransactionStatusMeta, "inner_instructions", 5),
    (S.TransactionStatusMeta, "log_messages", 6),
    (S.TransactionStatusMeta, "pre_token_balances", 7),
    (S.TransactionStatusMeta, "inner_instructions_none", 10),
    (S.TransactionStatusMeta, "log_messages_none", 11),
    (S.TransactionStatusMeta, "loaded_writable_addresses", 12),
    (S.TransactionStatusMeta, "loaded_readonly_addresses", 13),
    (S.TransactionStatusMeta, "return_data_none", 15),
    (S.TransactionStatusMeta, "compute_units_consumed", 16),
    (S.TransactionStatusMeta, "cost_units", 17),
    (S.InnerInstruction, "stack_height", 4),
    (S.TokenBalance, "account_index", 1),
    (S.TokenBalance, "program_id", 5),
    (S.UiTokenAmount, "amount", 3),
    (S.UiTokenAmount, "ui_amount_string", 4),
    (S.Reward, "commission_bps", 6),
]


@pytest.mark.parametrize(
    ("message", "field", "number"), FIELD_NUMBERS, ids=lambda x: getattr(x, "__name__", str(x))
)
def test_field_numbers_match_protocol_facts(message, field, number):
    assert message.DESCRIPTOR.fields_by_name[field].number == number


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (G.SubscribeRequest, "commitment"),
        (G.SubscribeRequest, "ping"),
        (G.SubscribeRequest, "from_slot"),
        (G.SubscribeRequestFilterTransactions, "vote"),
        (G.SubscribeRequestFilterTransactions, "failed"),
        (G.SubscribeUpdateSlot, "parent"),
        (S.TransactionStatusMeta, "compute_units_consumed"),
        (S.InnerInstruction, "stack_height"),
    ],
)
def test_optional_fields_track_presence(message, field):
    assert message.DESCRIPTOR.fields_by_name[field].has_presence


def test_packages_and_enums():
    assert G.DESCRIPTOR.package == "geyser"
    assert S.DESCRIPTOR.package == "solana.storage.ConfirmedBlock"
    assert S.Message.DESCRIPTOR.full_name == "solana.storage.ConfirmedBlock.Message"
    assert (G.PROCESSED, G.CONFIRMED, G.FINALIZED) == (0, 1, 2)
    assert G.SlotStatus.Value("SLOT_DEAD") == 6
    assert G.SlotStatus.Value("SLOT_FIRST_SHRED_RECEIVED") == 3
    assert S.RewardType.Value("DeactivatedStake") == 5
    # import public: storage messages are reachable through geyser_pb2
    assert G.Message is S.Message


def test_service_methods():
    service = G.DESCRIPTOR.services_by_name["Geyser"]
    assert service.full_name == "geyser.Geyser"
    methods = service.methods_by_name
    assert set(methods) >= {
        "Subscribe",
        "SubscribeReplayInfo",
        "Ping",
        "GetLatestBlockhash",
        "GetBlockHeight",
        "GetSlot",
        "IsBlockhashValid",
        "GetVersion",
    }
    sub = methods["Subscribe"]
    assert sub.client_streaming and sub.server_streaming
    assert sub.input_type.name == "SubscribeRequest" and sub.output_type.name == "SubscribeUpdate"
    assert not methods["Ping"].client_streaming and not methods["Ping"].server_streaming
    for name in ("GeyserStub", "GeyserServicer", "add_GeyserServicer_to_server"):
        assert hasattr(geyser_pb2_grpc, name)


def test_subscribe_request_round_trip():
    req = G.SubscribeRequest(
        transactions={
            "pump": G.SubscribeRequestFilterTransactions(
                vote=False,
                failed=False,
                account_include=["6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"],
                account_exclude=[],
            )
        },
        slots={"slots": G.SubscribeRequestFilterSlots(filter_by_commitment=True)},
        blocks_meta={"meta": G.SubscribeRequestFilterBlocksMeta()},
        accounts={
            "curves": G.SubscribeRequestFilterAccounts(
                owner=["6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"],
                filters=[
                    G.SubscribeRequestFilterAccountsFilter(datasize=150),
                    G.SubscribeRequestFilterAccountsFilter(
                        memcmp=G.SubscribeRequestFilterAccountsFilterMemcmp(
                            offset=0, bytes=b"\x17\xb7\xf8\x37"
                        )
                    ),
                ],
            )
        },
        commitment=G.CONFIRMED,
        accounts_data_slice=[G.SubscribeRequestAccountsDataSlice(offset=8, length=40)],
        from_slot=300_000_000,
    )
    back = G.SubscribeRequest.FromString(req.SerializeToString())
    assert back == req
    pump = back.transactions["pump"]
    assert pump.HasField("vote") and not pump.vote
    assert not pump.HasField("signature")
    assert back.HasField("commitment") and back.commitment == G.CONFIRMED
    assert back.accounts["curves"].filters[1].WhichOneof("filter") == "memcmp"
    assert not back.HasField("ping")


def test_wire_bytes_by_hand():
    # field 11 varint 5; field 9 length-delimited {field 1 varint 1}
    assert G.SubscribeRequest(from_slot=5).SerializeToString() == b"\x58\x05"
    assert G.SubscribeRequest(ping=G.SubscribeRequestPing(id=1)).SerializeToString() == b"\x4a\x02\x08\x01"
    # an explicit zero on an optional field is still sent
    assert G.SubscribeRequest(commitment=G.PROCESSED).SerializeToString() == b"\x30\x00"
    # SubscribeUpdate{pong{id=7}} and SubscribeUpdate{ping{}}
    assert G.SubscribeUpdate.FromString(b"\x4a\x02\x08\x07").pong.id == 7
    assert G.SubscribeUpdate.FromString(b"\x32\x00").WhichOneof("update_oneof") == "ping"
