"""Regression: a launch planned after its own time is still funded before it happens.

A run whose first slot is skipped can draw a launch inside that slot: its plan (queued at
t = 0) only runs in the next produced slot, after the launch's time, and used to queue the
fresh dev's and bundle wallets' funding behind the launch. (Seed 5 did this before the
market was sharded; seed 2532 does now: its first launch is bundled, and the funding of
its wallets lands in the launch's own slot.) The dev's
``create_v2`` then spent SOL the wallet did not have yet ("lamports went negative") and
the bundle's buys were skipped as unfunded. Now the funding comes first, in the same slot.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pocketwatcher.geyser.capture import CaptureReader
from pocketwatcher.parse import parse_update_full
from pocketwatcher.proto import geyser_pb2
from pocketwatcher.sim import simulate
from pocketwatcher.sim.truth import read, sig_b58

KEY = ("signature", "ix", "program", "mint", "side", "trader", "token_amount", "quote_amount")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim_seed2532")
    summary = simulate(0.5, 2532, out, launches_per_minute=60, progress=False)  # used to raise ValueError
    txs = []
    for data in CaptureReader(out / "capture.pwcap"):
        u = geyser_pb2.SubscribeUpdate()
        u.ParseFromString(data)
        if u.WhichOneof("update_oneof") == "transaction":
            txs.append((u, parse_update_full(data)))
    tables = {name: read(out, name).to_pylist() for name in ("mints", "trades", "failed", "funding", "actors")}
    return {"summary": summary, "txs": txs, **tables}


def test_run_completes_and_round_trips(run):
    want = Counter(tuple(t[k] for k in KEY) for t in run["trades"])
    got = Counter()
    for u, res in run["txs"]:
        meta = u.transaction.transaction.meta
        assert sum(meta.pre_balances) - sum(meta.post_balances) == meta.fee
        assert res.reason in (None, "failed_transaction"), res.reason
        if meta.HasField("err"):
            assert not res.swaps
        for s in res.swaps:
            got[tuple(getattr(s, k) for k in KEY)] += 1
    assert len(want) > 100 and got == want
    assert len({res.view.signature for _, res in run["txs"]}) == len(run["txs"]) == run["summary"]["transactions"]


def test_first_launch_is_funded_then_created_then_bundled(run):
    pos = {sig_b58(u.transaction.transaction.signature): (u.transaction.slot, u.transaction.transaction.index)
           for u, _ in run["txs"]}
    first = min((m for m in run["mints"] if not m["pre_existing"]), key=lambda m: m["launch_slot"])
    assert first["archetype"] == "bundled" and first["launch_slot"] == 460_000_001  # slot 460_000_000 skipped
    trades = sorted((t for t in run["trades"] if t["mint"] == first["mint"]), key=lambda t: (t["slot"], t["tx_index"]))
    create = trades[0]
    assert create["trader"] == first["creator"] and create["slot"] == first["launch_slot"]
    bundle = [t for t in trades if t["slot"] == first["launch_slot"] and t["actor_id"] == first["bundler_actor"]]
    assert len(bundle) == 8  # the bundle's buys execute right behind the create
    assert [t["tx_index"] for t in bundle] == list(range(create["tx_index"] + 1, create["tx_index"] + 9))
    funded = {f["to"]: pos[f["signature"]] for f in reversed(run["funding"])}
    late = 0
    for t in [create, *bundle]:
        assert funded[t["trader"]] < (t["slot"], t["tx_index"])
        late += funded[t["trader"]][0] == t["slot"]
    assert late  # the case this guards: funding planned late, in the launch's own slot


def test_wallets_born_empty_are_funded_before_their_first_transaction(run):
    pos = {sig_b58(u.transaction.transaction.signature): (u.transaction.slot, u.transaction.transaction.index)
           for u, _ in run["txs"]}
    first_use = {}
    for t in run["trades"] + run["failed"]:
        p = pos[t["signature"]]
        first_use[t["trader"]] = min(first_use.get(t["trader"], p), p)
    funded = {f["to"]: pos[f["signature"]] for f in reversed(run["funding"])}
    fresh = [a["wallet"] for a in run["actors"] if not a["prefunded"] and a["wallet"] in first_use]
    assert len(fresh) > 20
    for w in fresh:
        assert funded[w] < first_use[w], w
