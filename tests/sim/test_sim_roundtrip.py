"""Round trip: the parser recovers every simulated trade exactly, and nothing else.

One simulated run (3 minutes, default rate, warm start) is shared by the module; every
transaction update of its capture goes through ``pocketwatcher.parse.parse_update``.
"""

from __future__ import annotations

import struct
from collections import Counter

import pytest
from solders.pubkey import Pubkey

from pocketwatcher.geyser.capture import CaptureReader
from pocketwatcher.parse import parse_update_full
from pocketwatcher.parse.grpc_view import view_from_update
from pocketwatcher.proto import geyser_pb2
from pocketwatcher.sim import simulate
from pocketwatcher.sim.truth import read

MIGRATE = bytes([155, 234, 231, 146, 236, 158, 162, 30])
EVENT_CPI = bytes.fromhex("e445a52e51cb9a1d")
MIGRATION_EVENT = bytes.fromhex("bde95db95c94ea94")
PUMP = "6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P"
WSOL = "So11111111111111111111111111111111111111112"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    summary = simulate(3, 7, out, progress=False)
    updates = []
    for data in CaptureReader(out / "capture.pwcap"):
        u = geyser_pb2.SubscribeUpdate()
        u.ParseFromString(data)
        updates.append((data, u))
    txs = [(data, u, parse_update_full(data)) for data, u in updates if u.WhichOneof("update_oneof") == "transaction"]
    return {"dir": out, "summary": summary, "updates": updates, "txs": txs,
            "trades": read(out, "trades").to_pylist(), "failed": read(out, "failed").to_pylist(),
            "mints": read(out, "mints").to_pylist(), "actors": read(out, "actors").to_pylist(),
            "funding": read(out, "funding").to_pylist()}


KEY = ("signature", "ix", "program", "mint", "side", "trader", "token_amount", "quote_amount")


def test_parser_recovers_every_trade_exactly_and_nothing_else(run):
    want = Counter(tuple(t[k] for k in KEY) for t in run["trades"])
    got = Counter()
    for _, _, res in run["txs"]:
        assert res.reason in (None, "failed_transaction"), res.reason
        for s in res.swaps:
            got[tuple(getattr(s, k) for k in KEY)] += 1
    assert sum(want.values()) > 1000
    assert got == want
    programs = Counter(t["program"] for t in run["trades"])
    assert programs["pumpfun"] > 0 and programs["pumpswap"] > 0
    assert any("." in t["ix"] for t in run["trades"])  # trades routed through a bot's program


def test_failed_transactions_give_no_swaps(run):
    failed = {f["signature"]: f["error"] for f in run["failed"]}
    seen = {}
    for data, u, res in run["txs"]:
        meta = u.transaction.transaction.meta
        if meta.HasField("err"):
            assert res.reason == "failed_transaction" and not res.swaps
            tag, ix, kind, code = struct.unpack("<IBII", meta.err.err)
            assert (tag, kind) == (8, 25)  # InstructionError(ix, Custom(code))
            seen[view_from_update(data).signature] = code
            assert not any(line.startswith("Program data:") for line in meta.log_messages)
            assert not any(g.index == ix for g in meta.inner_instructions)
    assert seen == failed
    assert set(seen.values()) <= {6002, 6003, 6004, 6005}


def test_lamports_add_up_and_tokens_are_conserved(run):
    for _data, u, res in run["txs"]:
        meta = u.transaction.transaction.meta
        assert sum(meta.pre_balances) - sum(meta.post_balances) == meta.fee
        n = len(meta.pre_balances)
        assert n == len(meta.post_balances) == len(u.transaction.transaction.transaction.message.account_keys) + len(
            meta.loaded_writable_addresses) + len(meta.loaded_readonly_addresses)
        if meta.HasField("err"):
            assert [b.ui_token_amount.amount for b in meta.pre_token_balances] == [
                b.ui_token_amount.amount for b in meta.post_token_balances]
            continue
        delta = Counter()
        for b in meta.pre_token_balances:
            delta[b.mint] -= int(b.ui_token_amount.amount)
        for b in meta.post_token_balances:
            delta[b.mint] += int(b.ui_token_amount.amount)
        created = any(e.kind == "create" for e in res.events)
        for mint, d in delta.items():
            if mint != WSOL and not created:
                assert d == 0, (res.view.signature if res.view else "", mint, d)


def test_every_transaction_is_fully_readable(run):
    sigs = set()
    v0 = two = 0
    for data, u, _ in run["txs"]:
        view = view_from_update(data)  # the full view: every index resolves
        sigs.add(view.signature)
        tx = u.transaction.transaction.transaction
        msg = tx.message
        assert len(tx.signatures) == msg.header.num_required_signatures  # a create's mint signs too
        assert u.transaction.transaction.signature == tx.signatures[0]
        two += len(tx.signatures) == 2
        sigs.update(tx.signatures[1:])
        if msg.versioned:
            v0 += 1
            assert msg.address_table_lookups and len(view.keys) > view.num_static_keys
            top = {ix.program for ix in view.ixs if ix.inner is None}
            assert max(top) < view.num_static_keys  # top-level program ids stay static
        heights = [ix.height for ix in view.ixs]
        assert all(h is not None and h >= 1 for h in heights)
    assert two >= 10 and len(sigs) == len(run["txs"]) + two  # signatures are unique
    n = len(run["txs"])
    assert 0.3 < v0 / n < 0.5
    assert 0.2 <= run["summary"]["failed_share"] <= 0.4


def test_stream_pace_block_meta_and_created_at(run):
    kinds = Counter(u.WhichOneof("update_oneof") for _, u in run["updates"])
    assert kinds["block_meta"] == kinds["slot"] == run["summary"]["slots"]
    last = 0.0
    slot_of_tx = {}
    metas = []
    for _, u in run["updates"]:
        t = u.created_at.seconds + u.created_at.nanos / 1e9
        assert t >= last
        last = t
        kind = u.WhichOneof("update_oneof")
        if kind == "transaction":
            s = u.transaction.slot
            idx = u.transaction.transaction.index
            assert idx > slot_of_tx.get(s, -1)  # increasing index within a block
            slot_of_tx[s] = idx
        elif kind == "block_meta":
            metas.append((u.block_meta.slot, u.block_meta.block_time.timestamp, t))
            assert u.block_meta.slot in slot_of_tx or True
    slots = [m[0] for m in metas]
    assert slots == sorted(slots) and len(set(slots)) == len(slots)
    assert set(slot_of_tx) <= set(slots)
    skipped = slots[-1] - slots[0] + 1 - len(slots)
    assert 0 < skipped < 0.1 * len(slots)
    pace = (metas[-1][2] - metas[0][2]) / (slots[-1] - slots[0])
    assert 0.25 < pace < 0.29  # mainnet's 2026 pace (SimConfig.slot_seconds)
    times = [m[1] for m in metas]
    assert times == sorted(times) and times[-1] - times[0] == pytest.approx(180, abs=2)


def test_launches_completion_and_migration(run):
    mints = {m["mint"]: m for m in run["mints"]}
    creates = {}
    migrations = {}
    completes = set()
    for _data, _u, res in run["txs"]:
        for e in res.events:
            if e.kind == "create":
                creates[e.mint] = e
            elif e.kind == "complete":
                completes.add(e.mint)
        view = res.view
        if view is not None:
            for ix in view.ixs:  # the migration event, decoded with the IDL layout (160 bytes)
                d = ix.data
                if view.keys[ix.program] == PUMP and d[:16] == EVENT_CPI + MIGRATION_EVENT:
                    p = d[16:]
                    migrations[str(Pubkey.from_bytes(p[32:64]))] = str(Pubkey.from_bytes(p[128:160]))
    launched = {m for m, row in mints.items() if not row["pre_existing"]}
    assert set(creates) == launched and len(launched) > 30
    for mint, e in creates.items():
        assert e.creator == mints[mint]["creator"] and e.name == mints[mint]["name"]
        assert mint.endswith("pump")
    done = {m for m, row in mints.items() if row["migrated_slot"] is not None and row["migrated_slot"] >= 460_000_000}
    assert done and set(migrations) == done and completes >= done
    for mint in done:
        assert migrations[mint] == mints[mint]["pool"]
        after = [t for t in run["trades"] if t["mint"] == mint and t["slot"] > mints[mint]["migrated_slot"]]
        assert after and all(t["program"] == "pumpswap" for t in after)


def test_funding_comes_shortly_before_use(run):
    first_use = {}
    for t in run["trades"] + run["failed"]:
        w = t["trader"]
        first_use[w] = min(first_use.get(w, 1 << 62), t["slot"])
    roles = {(a["wallet"]): a for a in run["actors"]}
    assert run["funding"]
    first_funding = {}
    for f in run["funding"]:
        assert roles[f["from"]]["role"] == "funder"
        assert roles[f["from"]]["actor_id"] == roles[f["to"]]["actor_id"] == f["actor_id"]
        first_funding.setdefault(f["to"], f["slot"])
    fresh = [w for w, a in roles.items() if not a["prefunded"] and w in first_use]
    assert len(fresh) > 20
    for w in fresh:  # wallets born empty are funded before they trade (top-ups may come later)
        assert first_funding[w] <= first_use[w]
    kinds = {a["kind"] for a in run["actors"]}
    assert kinds == {"retail", "sniper", "bot", "smart_money", "bundler", "dev"}


def test_program_data_logs_alone_give_the_same_pump_trades(run):
    """Drop the event self-CPIs: the parser's `Program data:` fallback must find the same trades,
    which only works if every log line sits under the right `invoke`."""
    from pocketwatcher.parse import parse_view

    checked = 0
    for data, _u, res in run["txs"]:
        if not any(s.program == "pumpfun" for s in res.swaps):
            continue
        view = view_from_update(data, skip_inert=True)
        view.ixs = [ix for ix in view.ixs if bytes(ix.data[:8]) != EVENT_CPI]
        again = parse_view(view)
        assert [(s.ix, s.mint, s.side, s.token_amount, s.quote_amount) for s in again.swaps] == [
            (s.ix, s.mint, s.side, s.token_amount, s.quote_amount) for s in res.swaps]
        checked += 1
    assert checked > 500
