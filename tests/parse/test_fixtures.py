"""The parser on real mainnet transactions: expected swaps exactly, nothing extra, both paths agree."""

from __future__ import annotations

import dataclasses

import pytest
from conftest import expected_swaps, fixture_files

from pocketwatcher.parse import parse_transaction_full, parse_update, parse_update_full
from pocketwatcher.parse.grpc_view import update_from_view
from pocketwatcher.parse.loaders import load_file
from pocketwatcher.parse.rpc_view import view_from_rpc

# Fixtures that are broken on purpose upstream (their reason must still be a clean one).
DELIBERATELY_BROKEN = {"0xjeffro-tx-parser__broken_data_1.json": "bad_index"}


def _all_results():
    out = {}
    for path in fixture_files():
        for item in load_file(path):
            res = parse_update_full(item) if not isinstance(item, dict) else parse_transaction_full(item)
            sig = res.view.signature if res.view else f"{path.name}#{len(out)}"
            out.setdefault(sig, []).append((path.name, item, res))
    return out


RESULTS = _all_results()
EXPECTED = {k: v for k, v in expected_swaps().items() if not k.startswith("_")}


def test_fixture_set_is_complete():
    assert len(fixture_files()) >= 71
    assert len(RESULTS) >= 110, "fixture transactions went missing"


@pytest.mark.parametrize("sig", sorted(RESULTS))
def test_every_fixture_parses_cleanly(sig):
    for name, _item, res in RESULTS[sig]:
        want = DELIBERATELY_BROKEN.get(name)
        if want:
            assert res.reason == want
        else:
            assert res.reason in (None, "failed_transaction"), f"{name}: {res.reason}"


@pytest.mark.parametrize("sig", sorted(EXPECTED))
def test_expected_swaps_exactly(sig):
    assert sig in RESULTS, f"expected transaction {sig} is not in the fixture files"
    expected = [e for e in EXPECTED[sig]]
    for name, _item, res in RESULTS[sig]:
        got = {(s.program, s.mint, s.side): s for s in res.swaps}
        want = {(e["program"], e["mint"], e["side"]): e for e in expected}
        uncertain = {k for k, e in want.items() if e.get("confidence") == "uncertain"}
        assert set(got) - uncertain == set(want) - uncertain, f"{name}: swaps differ"
        for key, e in want.items():
            if key in uncertain:
                continue
            s = got[key]
            assert (s.trader, s.quote_mint, s.token_amount, s.quote_amount) == (
                e["trader"], e["quote_mint"], e["token_amount"], e["quote_amount"]), f"{name} {key}"
            assert s.ix == e["ix"], f"{name} {key}: instruction path"


def _without_time(swaps):
    """Swaps minus what only one source knows: block_time (RPC) and position in block (Geyser)."""
    # (a few RPC fixtures were saved without their slot; protobuf then says 0)
    return [dataclasses.replace(s, block_time=None, tx_index=None, slot=s.slot or None) for s in swaps]


@pytest.mark.parametrize("sig", sorted(RESULTS))
def test_json_and_protobuf_paths_agree(sig):
    for name, item, res in RESULTS[sig]:
        if not isinstance(item, dict) or res.view is None:
            continue  # already a protobuf message, or not a readable transaction
        view = view_from_rpc(item)
        wire = update_from_view(view).SerializeToString()
        via_pb = parse_update(wire)
        assert _without_time(via_pb) == _without_time(res.swaps), name


def test_same_transaction_in_two_files_gives_same_swaps():
    twice = {sig: rows for sig, rows in RESULTS.items() if len(rows) > 1}
    assert len(twice) >= 2
    for sig, rows in twice.items():
        first = _without_time(rows[0][2].swaps)
        for name, _item, res in rows[1:]:
            assert _without_time(res.swaps) == first, f"{sig[:10]} in {name}"


def test_amounts_are_integers_and_sides_valid():
    for rows in RESULTS.values():
        for _name, _item, res in rows:
            for s in res.swaps:
                assert isinstance(s.token_amount, int) and s.token_amount > 0
                assert isinstance(s.quote_amount, int) and s.quote_amount >= 0
                assert s.side in ("buy", "sell")
                assert s.program not in ("jupiter", "okx", "photon", "dflow")
