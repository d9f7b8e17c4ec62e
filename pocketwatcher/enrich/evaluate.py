"""Measure wallet clustering and the CTO score against a simulation's ground truth.

Clustering: replay the capture in stream order through ``WalletClusterer`` and compare
its final clusters with the truth's actors (one actor = one cluster), over every wallet
the stream showed: adjusted Rand index, and precision/recall of "same actor" pairs.

CTO: for every simulated mint, the highest ``cto_score`` it reached; a mint is called a
takeover when that passes the threshold. Positives are the ``cto`` archetype; every
other archetype — bundled launches, sniper swarms, rugs, runners, the coordinated pumps
the score must not mistake for a community — is a negative.
"""

from __future__ import annotations

from math import comb
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .wallets import Enricher


def replay_enricher(capture: Path) -> tuple[Enricher, set[str]]:
    """The enricher as it stands after the whole capture, and the wallets it saw."""
    from ..geyser.capture import CaptureReader
    from ..geyser.clock import SlotClock
    from ..parse import parse_update_full
    from ..proto import geyser_pb2

    enricher = Enricher()
    clock = SlotClock(max_slots=10_000_000)
    seen: set[str] = set()
    msg = geyser_pb2.SubscribeUpdate()
    for raw in CaptureReader(capture):
        msg.ParseFromString(raw)
        kind = msg.WhichOneof("update_oneof")
        if kind == "block_meta":
            clock.observe(msg.block_meta.slot, msg.block_meta.block_time.timestamp)
            continue
        if kind != "transaction":
            continue
        res = parse_update_full(msg, transfers=True)
        if res.view is None:
            continue
        bt, _ = clock.time_of(res.view.slot)
        for t in res.transfers:
            enricher.on_transfer(t.source, t.destination, t.lamports, bt)
            seen.update((t.source, t.destination))
        for s in res.swaps:
            s.block_time = bt
            enricher.on_swap(s, s.fee_payer)
            seen.add(s.trader)
    return enricher, seen


def _pairs(counts) -> int:
    return sum(comb(int(n), 2) for n in counts)


def cluster_scores(pred: dict[str, str], truth: dict[str, str]) -> dict:
    """ARI and pairwise precision/recall of ``pred`` (wallet → cluster) vs ``truth`` (wallet → actor)."""
    wallets = sorted(set(pred) & set(truth))
    p_ids = {c: i for i, c in enumerate(sorted({pred[w] for w in wallets}))}
    t_ids = {c: i for i, c in enumerate(sorted({truth[w] for w in wallets}))}
    p = np.array([p_ids[pred[w]] for w in wallets])
    t = np.array([t_ids[truth[w]] for w in wallets])
    pairs_joint: dict[tuple[int, int], int] = {}
    for a, b in zip(p.tolist(), t.tolist(), strict=True):
        pairs_joint[(a, b)] = pairs_joint.get((a, b), 0) + 1
    tp = _pairs(pairs_joint.values())
    pred_pairs = _pairs(np.bincount(p))
    true_pairs = _pairs(np.bincount(t))
    total = comb(len(wallets), 2)
    expected = pred_pairs * true_pairs / total if total else 0.0
    max_index = (pred_pairs + true_pairs) / 2
    ari = (tp - expected) / (max_index - expected) if max_index != expected else 1.0
    return {
        "wallets": len(wallets), "actors": len(t_ids), "clusters": len(p_ids),
        "adjusted_rand_index": round(ari, 4),
        "pair_precision": round(tp / pred_pairs, 4) if pred_pairs else None,
        "pair_recall": round(tp / true_pairs, 4) if true_pairs else None,
        "true_pairs": true_pairs, "predicted_pairs": pred_pairs,
    }


def evaluate_clusters(sim_dir: Path) -> dict:
    sim_dir = Path(sim_dir)
    enricher, seen = replay_enricher(sim_dir / "capture.pwcap")
    actors = pq.read_table(sim_dir / "truth" / "actors.parquet").to_pylist()
    truth = {a["wallet"]: a["actor_id"] for a in actors if a["wallet"] in seen}
    pred = enricher.clusterer.clusters(truth)
    out = cluster_scores(pred, truth)
    out["links"] = dict(enricher.clusterer.links)
    multi = {a for a, n in _actor_sizes(truth).items() if n > 1}
    out["multi_wallet_actors"] = len(multi)
    return out


def _actor_sizes(truth: dict[str, str]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for a in truth.values():
        sizes[a] = sizes.get(a, 0) + 1
    return sizes


def evaluate_cto(sim_dir: Path, export_dir: Path, threshold: float = 0.5) -> dict:
    from ..backtest.sweep import feature_table

    ft = feature_table(export_dir, {"cto_score"})
    best: dict[str, float] = {}
    for m, s in zip(ft["mint"].to_pylist(), ft["cto_score"].to_pylist(), strict=True):
        if s is not None and s > best.get(m, -1.0):
            best[m] = s
    mints = pq.read_table(Path(sim_dir) / "truth" / "mints.parquet").to_pylist()
    tp = fp = fn = tn = 0
    by_arch: dict[str, list[float]] = {}
    for m in mints:
        score = best.get(m["mint"], 0.0)
        by_arch.setdefault(m["archetype"], []).append(score)
        pos, called = m["archetype"] == "cto", score >= threshold
        tp += pos and called
        fp += (not pos) and called
        fn += pos and not called
        tn += (not pos) and not called
    return {
        "threshold": threshold, "takeovers": tp + fn, "true_positive": tp, "false_positive": fp,
        "false_negative": fn, "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "max_score_by_archetype": {a: round(max(v), 3) for a, v in sorted(by_arch.items())},
        "called_by_archetype": {a: sum(1 for x in v if x >= threshold) for a, v in sorted(by_arch.items())},
    }
