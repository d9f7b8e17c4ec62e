"""Parser throughput on the fixture set, single core. Prints one JSON line.

    python bench/parse.py [--seconds 3]

- json path: ``parse_transaction`` over the decoded JSON-RPC dicts held in memory;
- protobuf path: ``parse_update`` over serialized ``SubscribeUpdate`` bytes (each
  fixture converted once), i.e. what the runner receives from Geyser.

Targets (issue 2): ≥ 10,000 tx/s json, ≥ 20,000 tx/s protobuf.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import fixture_files  # noqa: E402

from pocketwatcher.parse import STATS, parse_transaction, parse_update  # noqa: E402
from pocketwatcher.parse.grpc_view import update_from_view  # noqa: E402
from pocketwatcher.parse.loaders import load_file  # noqa: E402
from pocketwatcher.parse.rpc_view import view_from_rpc  # noqa: E402
from pocketwatcher.parse.txview import TxError  # noqa: E402


def _rate(fn, items, seconds: float, rounds: int = 5) -> tuple[float, float]:
    """Best and median rate over ``rounds`` timed passes (best = least disturbed, as timeit)."""
    rates = []
    for _ in range(rounds):
        n = 0
        t0 = time.perf_counter()
        deadline = t0 + seconds / rounds
        while True:
            for it in items:
                fn(it)
            n += len(items)
            if time.perf_counter() >= deadline:
                break
        rates.append(n / (time.perf_counter() - t0))
    rates.sort()
    return rates[-1], rates[len(rates) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="time per path (split in 5 rounds)")
    args = ap.parse_args()
    rpc: list[dict] = []
    wire: list[bytes] = []
    for path in fixture_files():
        for item in load_file(path):
            if isinstance(item, dict):
                rpc.append(item)
                try:
                    wire.append(update_from_view(view_from_rpc(item)).SerializeToString())
                except TxError:
                    pass
            else:
                wire.append(item.SerializeToString())
    for fn, items in ((parse_transaction, rpc), (parse_update, wire)):  # warm caches
        for it in items:
            fn(it)
    STATS.reset()
    json_rate, json_median = _rate(parse_transaction, rpc, args.seconds)
    pb_rate, pb_median = _rate(parse_update, wire, args.seconds)
    print(json.dumps({
        "bench": "parse",
        "fixture_transactions_json": len(rpc),
        "fixture_transactions_protobuf": len(wire),
        "json_tx_per_s": round(json_rate),
        "json_tx_per_s_median": round(json_median),
        "protobuf_tx_per_s": round(pb_rate),
        "protobuf_tx_per_s_median": round(pb_median),
        "json_target": 10000,
        "protobuf_target": 20000,
        "mean_protobuf_bytes": round(sum(map(len, wire)) / len(wire)),
    }))


if __name__ == "__main__":
    main()
