"""export_capture: a capture of real transactions → Parquet swaps equal to the parser's output."""

from __future__ import annotations

import duckdb
from conftest import fixture_files

from pocketwatcher.geyser.capture import CaptureWriter
from pocketwatcher.parse import parse_update
from pocketwatcher.parse.grpc_view import update_from_view
from pocketwatcher.parse.loaders import load_file
from pocketwatcher.parse.rpc_view import view_from_rpc
from pocketwatcher.proto import geyser_pb2
from pocketwatcher.store.parquet import export_capture


def _fixture_updates():
    out = []
    for p in fixture_files():
        for item in load_file(p):
            if isinstance(item, dict):
                try:
                    view = view_from_rpc(item)
                except Exception:  # noqa: BLE001 - deliberately broken fixture
                    continue
                out.append(update_from_view(view))
            else:
                out.append(item)
    return out


def test_export_matches_parser(tmp_path):
    updates = _fixture_updates()
    cap = tmp_path / "fixtures.pwcap"
    with CaptureWriter(cap, {"source": "test"}) as w:
        for u in updates:
            if u.transaction.slot:
                bm = geyser_pb2.SubscribeUpdate(filters=["m"])
                bm.block_meta.slot = u.transaction.slot
                bm.block_meta.block_time.timestamp = 1_700_000_000 + u.transaction.slot % 1000
                w.write(bm)
            w.write(u)
    summary = export_capture(cap, tmp_path / "out", progress=False)
    all_swaps = [s for u in updates for s in parse_update(u)]
    assert summary["swaps"] == len(all_swaps) > 50
    want = list({(s.signature, s.ix): s for s in all_swaps}.values())  # a few fixtures repeat
    con = duckdb.connect()
    rows = con.execute(
        f"select signature, ix, program, mint, side, token_amount, quote_amount, trader, block_time, "
        f"block_time_estimated from read_parquet('{tmp_path}/out/swaps/*.parquet')").fetchall()
    got = {(r[0], r[1]): r for r in rows}
    assert len(got) == len(want)
    for s in want:
        r = got[(s.signature, s.ix)]
        assert (r[2], r[3], r[4], r[5], r[6], r[7]) == (
            s.program, s.mint, s.side, s.token_amount, s.quote_amount, s.trader)
        if s.slot:
            assert r[8] == 1_700_000_000 + s.slot % 1000 and r[9] is False
    # SOL funding transfers and lifecycle events are exported beside the swaps
    n_ev = con.execute(f"select count(*) from '{tmp_path}/out/events.parquet'").fetchone()[0]
    assert n_ev == summary["events"] > 0


def test_a_cut_capture_exports_what_it_holds_and_says_it_was_cut(tmp_path):
    from conftest import SAMPLE

    from pocketwatcher.geyser.capture import CaptureReader

    data = SAMPLE.read_bytes()
    cut = tmp_path / "cut.pwcap"
    cut.write_bytes(data[:len(data) // 2])  # a recorder killed halfway
    held = list(CaptureReader(cut))
    assert 0 < len(held) < sum(1 for _ in CaptureReader(SAMPLE))
    summary = export_capture(cut, tmp_path / "out", progress=False)
    assert summary["truncated_capture"] is True
    assert summary["swaps"] == sum(len(parse_update(r)) for r in CaptureReader(cut).updates()) > 0
    whole = export_capture(SAMPLE, tmp_path / "whole", progress=False)
    assert whole["truncated_capture"] is False and whole["swaps"] > summary["swaps"]


def test_transactions_of_a_dead_slot_are_left_out(tmp_path):
    """A processed capture holds a dropped fork's transactions; its SLOT_DEAD status (recorded
    with interslot updates) keeps their swaps out of the export."""
    updates = [u for u in _fixture_updates() if u.transaction.slot and parse_update(u)]
    dead_slot = updates[0].transaction.slot
    cap = tmp_path / "fork.pwcap"
    with CaptureWriter(cap) as w:
        for u in updates:
            w.write(u)
        dead = geyser_pb2.SubscribeUpdate(filters=["s"])
        dead.slot.slot, dead.slot.status = dead_slot, geyser_pb2.SLOT_DEAD
        w.write(dead)
    summary = export_capture(cap, tmp_path / "out", progress=False)
    on_dead = [u for u in updates if u.transaction.slot == dead_slot]
    assert summary["dead_slot_transactions"] == len(on_dead) >= 1
    assert summary["swaps"] == sum(len(parse_update(u)) for u in updates if u.transaction.slot != dead_slot)
    sigs = {r[0] for r in duckdb.connect().execute(
        f"select signature from read_parquet('{tmp_path}/out/swaps/*.parquet')").fetchall()}
    assert not sigs & {s.signature for u in on_dead for s in parse_update(u)}
