"""The sharded market and its merger: same bytes in processes or not, truth in stream order, failures named."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import Counter

import pytest

from pocketwatcher.geyser.capture import CaptureReader
from pocketwatcher.parse import parse_update_full
from pocketwatcher.proto import geyser_pb2
from pocketwatcher.sim import SimConfig, simulate
from pocketwatcher.sim import stream as stream_mod
from pocketwatcher.sim.market import Market
from pocketwatcher.sim.stream import Simulation
from pocketwatcher.sim.truth import TABLES, read, sig_b58

KEY = ("signature", "ix", "program", "mint", "side", "trader", "token_amount", "quote_amount", "slot", "tx_index")


def _stream(out):
    """(update, parse result) of every transaction, and the slots' block_meta in stream order."""
    txs, metas = [], []
    for data in CaptureReader(out / "capture.pwcap"):
        u = geyser_pb2.SubscribeUpdate()
        u.ParseFromString(data)
        kind = u.WhichOneof("update_oneof")
        if kind == "transaction":
            txs.append((u, parse_update_full(data)))
        elif kind == "block_meta":
            metas.append(u.block_meta)
    return txs, metas


def test_processes_or_not_the_same_bytes_and_truth(tmp_path):
    cfg = SimConfig(launches_per_minute=40)
    a = simulate(1.0, 21, tmp_path / "proc", config=cfg, progress=False, processes=True)
    b = simulate(1.0, 21, tmp_path / "inline", config=cfg, progress=False, processes=False)
    assert (tmp_path / "proc" / "capture.pwcap").read_bytes() == (tmp_path / "inline" / "capture.pwcap").read_bytes()
    for name in TABLES:
        assert read(tmp_path / "proc", name).equals(read(tmp_path / "inline", name)), name
    drop = ("elapsed_s", "tx_per_s")
    assert {k: v for k, v in a.items() if k not in drop} == {k: v for k, v in b.items() if k not in drop}
    assert not multiprocessing.active_children()


def test_spawned_shards_give_the_same_stream():
    """A caller with threads (a Jupyter kernel, a server) gets spawned shard processes, not forked."""
    runs = {}
    for method in ("spawn", None):
        sim = Simulation(SimConfig(), 4, 0.5, processes=method is not None, start_method=method)
        runs[method] = [u for slot in sim.run() for u in slot]
    assert len(runs[None]) > 100 and runs["spawn"] == runs[None]
    assert not multiprocessing.active_children()


@pytest.mark.parametrize("shards", [1, 3])
def test_any_shard_count_round_trips_with_positions(tmp_path, shards):
    """Every trade parses back exactly, at the slot and index in block the truth gives; indices
    increase within a block in stream order; shards never share an actor, a wallet or a mint."""
    out = tmp_path / f"s{shards}"
    summary = simulate(1.0, 5, out, config=SimConfig(launches_per_minute=40, shards=shards), progress=False)
    assert summary["shards"] == shards
    txs, metas = _stream(out)
    assert len(txs) == summary["transactions"] and len(metas) == summary["slots"]
    got = Counter()
    last: dict[int, int] = {}
    for u, res in txs:
        slot, index = u.transaction.slot, u.transaction.transaction.index
        assert index > last.get(slot, -1)
        last[slot] = index
        for s in res.swaps:
            got[(*(getattr(s, k) for k in KEY[:-2]), slot, index)] += 1
    trades = read(out, "trades").to_pylist()
    want = Counter(tuple(t[k] for k in KEY) for t in trades)
    assert sum(want.values()) > 300 and got == want
    assert [(t["slot"], t["tx_index"]) for t in trades] == sorted((t["slot"], t["tx_index"]) for t in trades)
    # failed attempts and funding transfers carry their stream position too
    pos = {sig_b58(u.transaction.transaction.signature): (u.transaction.slot, u.transaction.transaction.index)
           for u, _ in txs}
    for name in ("failed", "funding"):
        rows = read(out, name).to_pylist()
        assert rows and all(pos[r["signature"]] == (r["slot"], r["tx_index"]) for r in rows), name
    # each block's executed-transaction count covers the indices used in it
    assert all(m.executed_transaction_count > last.get(m.slot, -1) for m in metas)
    actors = read(out, "actors").to_pylist()
    assert len({a["wallet"] for a in actors}) == len(actors)
    mints = read(out, "mints").to_pylist()
    assert len({m["mint"] for m in mints}) == len(mints)
    assert [m["launch_slot"] for m in mints] == sorted(m["launch_slot"] for m in mints)


def test_each_shard_tips_its_own_jito_accounts():
    cfg = SimConfig(shards=2)
    tips = [{a.b58 for a in Market(cfg, 1, 1.0, k).trading.tips} for k in (0, 1)]
    assert len(tips[0]) == len(tips[1]) == 4 and not tips[0] & tips[1]


class _Boom(Market):
    def run(self):
        for n, part in enumerate(super().run()):
            if self.shard == 1 and n == 20:
                raise ValueError("boom in the market")
            yield part


class _Dies(Market):
    def run(self):
        for n, part in enumerate(super().run()):
            if self.shard == 1 and n == 20:
                os._exit(3)
            yield part


@pytest.mark.parametrize("market, message", [
    (_Boom, r"shard 1 failed:\n(.|\n)*ValueError: boom in the market"),
    (_Dies, r"shard 1 ended without its results \(exit code 3\)"),
])
def test_a_failing_shard_is_named_and_no_process_is_left(monkeypatch, market, message):
    monkeypatch.setattr(stream_mod, "Market", market)
    threads = threading.active_count()
    sim = Simulation(SimConfig(), 3, 1.0, processes=True, start_method="fork")  # fork: the child sees the patch
    with pytest.raises(RuntimeError, match=message):
        for _ in sim.run():
            pass
    assert not multiprocessing.active_children() and threading.active_count() == threads


def test_a_run_left_early_stops_its_shards():
    threads = threading.active_count()
    # long enough that neither shard can finish into its reader's queue before we stop
    sim = Simulation(SimConfig(), 3, 60.0, processes=True)
    gen = sim.run()
    for _ in range(10):
        next(gen)
    assert len(multiprocessing.active_children()) == 2
    gen.close()
    assert not multiprocessing.active_children()
    assert threading.active_count() == threads  # the pipes' reader threads are gone too


def test_shards_are_checked():
    with pytest.raises(ValueError, match="shards"):
        SimConfig(shards=0)
    with pytest.raises(ValueError, match="shards"):
        SimConfig(shards=9)
    with pytest.raises(ValueError, match="out of range"):
        Market(SimConfig(shards=2), 1, 1.0, 2)


def test_one_usable_cpu_runs_the_shards_in_process():
    import subprocess
    import sys

    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from pocketwatcher.sim import SimConfig; from pocketwatcher.sim.stream import Simulation; "
            "print(Simulation(SimConfig(), 1, 1.0).processes)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert Simulation(SimConfig(), 1, 1.0).processes == (len(os.sched_getaffinity(0)) >= 2)
