"""Archetypes show up at their configured shares and behave as their names say."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest

from pocketwatcher.sim import DEFAULT_SHARES, SimConfig, simulate
from pocketwatcher.sim.truth import read


def _sim(tmp_path_factory, name: str, minutes: float, **cfg):
    out = tmp_path_factory.mktemp(name)
    summary = simulate(minutes, 5, out, progress=False, config=SimConfig(warm_tokens=0, **cfg))
    tables = {t: read(out, t).to_pylist() for t in ("mints", "trades", "failed", "actors", "funding")}
    return summary, tables


def test_archetype_shares_follow_the_config(tmp_path_factory):
    summary, t = _sim(tmp_path_factory, "mix", 2.0, launches_per_minute=300)
    counts = Counter(m["archetype"] for m in t["mints"])
    n = sum(counts.values())
    assert n == summary["launches"] > 450
    for kind, share in DEFAULT_SHARES.items():
        sd = math.sqrt(n * share * (1 - share))
        assert abs(counts[kind] - n * share) <= 4 * sd + 2, (kind, counts[kind], n * share)
    per_token = Counter(tr["mint"] for tr in t["trades"])
    duds = [per_token[m["mint"]] for m in t["mints"] if m["archetype"] == "dud"]
    assert sorted(duds)[len(duds) // 2] <= 6  # most launches barely trade


def _by_mint(rows):
    out = defaultdict(list)
    for r in rows:
        out[r["mint"]].append(r)
    return out


def test_bundles_land_in_the_creation_slot_from_one_actor(tmp_path_factory):
    _, t = _sim(tmp_path_factory, "bundled", 1.5, launches_per_minute=20, shares={"bundled": 1.0})
    trades = _by_mint(t["trades"])
    funded = {f["to"]: f["slot"] for f in t["funding"]}
    for m in t["mints"]:
        first = [x for x in trades[m["mint"]] if x["slot"] == m["launch_slot"]]
        bundle = [x for x in first if x["actor_id"] == m["bundler_actor"]]
        assert len(bundle) >= 4
        idx = sorted(x["tx_index"] for x in first if x["actor_id"] in (m["bundler_actor"], m["dev_actor"]))
        assert idx == list(range(idx[0], idx[0] + len(idx)))  # create + bundle: consecutive
        for x in bundle:
            assert funded[x["trader"]] <= m["launch_slot"]  # fresh wallets funded just before


def test_sniper_swarms_buy_in_the_first_slots(tmp_path_factory):
    _, t = _sim(tmp_path_factory, "swarm", 1.5, launches_per_minute=10, shares={"sniper_swarm": 1.0})
    attempts = _by_mint([x for x in t["trades"] + t["failed"] if x["actor_id"].startswith("sniper")])
    early = [sum(1 for x in attempts[m["mint"]] if x["slot"] <= m["launch_slot"] + 5) for m in t["mints"]]
    assert sorted(early)[len(early) // 2] >= 5
    failed = [x for x in t["failed"] if x["actor_id"].startswith("sniper")]
    assert len(failed) / max(1, sum(len(v) for v in attempts.values())) > 0.3


def test_rugs_dump_and_takeovers_revive(tmp_path_factory):
    _, t = _sim(tmp_path_factory, "cto", 11.0, launches_per_minute=4, shares={"cto": 0.7, "rug": 0.3})
    trades = _by_mint(t["trades"])
    slot_s = SimConfig().slot_seconds
    revived = 0
    for m in t["mints"]:
        rows = sorted(trades[m["mint"]], key=lambda x: (x["slot"], x["tx_index"]))
        dev = [x for x in rows if x["actor_id"] == m["dev_actor"]]
        sells = [x for x in dev if x["side"] == "sell"]
        if sells:  # the dev sells out in one go
            assert sum(x["token_amount"] for x in dev if x["side"] == "buy") == sells[0]["token_amount"]
        if m["archetype"] != "cto" or m["launch_slot"] > 460_000_000 + 80 / slot_s:  # the first 80 s
            continue
        assert sells
        after = [x for x in rows if x["slot"] >= sells[0]["slot"]]
        gaps = [(b["slot"] - a["slot"], b["slot"]) for a, b in zip(after, after[1:], strict=False)]
        gap, revival = max(gaps)
        assert gap * slot_s > 100  # minutes of quiet...
        seen = {x["trader"] for x in rows if x["slot"] < revival}
        buyers = {x["trader"] for x in rows if revival <= x["slot"] < revival + 200 / slot_s and x["side"] == "buy"}
        assert len(buyers - seen) >= 15  # ...then many new wallets
        revived += 1
    assert revived >= 1


@pytest.mark.parametrize("kind", ["runner"])
def test_runners_complete_and_migrate(tmp_path_factory, kind):
    summary, t = _sim(tmp_path_factory, "runner", 5.0, launches_per_minute=1.0, shares={kind: 1.0})
    done = [m for m in t["mints"] if m["migrated_slot"] is not None]
    assert done and summary["migrations"] == len(done)
    trades = _by_mint(t["trades"])
    for m in done:
        assert m["complete_slot"] <= m["migrated_slot"]
        programs = [x["program"] for x in sorted(trades[m["mint"]], key=lambda x: x["slot"])]
        assert programs[0] == "pumpfun" and programs[-1] == "pumpswap"
