"""Market simulator throughput. Prints one JSON line.

    python bench/simulate.py [--minutes 10] [--launches 20] [--repeat 3] [--seed 1] [--shards N] [--inline]

Runs ``pocketwatcher.sim.simulate`` end to end (the market's shards, each in a process of
its own with 2+ cores; the merge, zstd capture and truth Parquet in this process) into a
temporary directory, ``--repeat`` times, and reports the best run (the least disturbed by
other work on the machine, as timeit does) and the median. Also reports
``generate_tx_per_s``: the shards and the merge alone (the ``SubscribeUpdate`` bytes are
produced but neither compressed nor written). ``--inline`` runs the shards in turn in this
process (same bytes): the single-core figure.

``cpu_tx_per_s`` is per second of this process's CPU time (the merger and compression;
the shards' processes are not counted). ``load_avg`` (1-minute load average before and
after the runs) says how busy the machine was.

Each run starts from a collected heap: a run's objects are a graph of reference cycles that
only the cycle collector frees (after ``simulate`` returns; in the CLI at exit). It is
collected between runs, untimed, so that the pass does not land inside the next timed run.

The default 10 simulated minutes (~12.6k transactions, ~1 s) carries ~0.3 s of costs that
do not grow with the run (starting the shard processes, compiling ~380 transaction shapes in
each, truth Parquet). ``--minutes 60`` (~115k transactions) is the steadier figure.

Target (issue 3): ≥ 20,000 transactions per second.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pocketwatcher.sim import SimConfig, simulate  # noqa: E402
from pocketwatcher.sim.stream import Simulation, usable_cpus  # noqa: E402


def generate_rate(cfg: SimConfig, minutes: float, seed: int, processes: bool | None) -> float:
    sim = Simulation(cfg, seed, minutes, processes=processes)
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in sim.run():
            pass
        return sim.transactions / (time.perf_counter() - t0)
    finally:
        gc.enable()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated minutes per run")
    ap.add_argument("--launches", type=float, default=20.0, help="launches per simulated minute")
    ap.add_argument("--repeat", type=int, default=3, help="runs; the best and the median are reported")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--shards", type=int, default=None, help="market shards (default: SimConfig's, 2)")
    ap.add_argument("--inline", action="store_true",
                    help="run the shards in this process, in turn (default: a process each with 2+ cores)")
    args = ap.parse_args()
    rates = []
    cpu_rates = []
    gen = []
    result: dict = {}
    cfg = SimConfig(launches_per_minute=args.launches,
                    **({"shards": args.shards} if args.shards is not None else {}))
    processes = False if args.inline else None
    load_before = os.getloadavg()[0]
    for _ in range(args.repeat):
        gc.collect()  # the previous run's market (see above), outside the timed region
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            c0 = time.process_time()
            r = simulate(args.minutes, args.seed, Path(tmp), progress=False, config=cfg, processes=processes)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0
        rates.append(r["transactions"] / wall)
        cpu_rates.append(r["transactions"] / cpu)
        gc.collect()
        gen.append(generate_rate(cfg, args.minutes, args.seed, processes))
        result = r
    print(json.dumps({
        "bench": "simulate",
        "minutes": args.minutes,
        "launches_per_minute": args.launches,
        "shards": cfg.shards,
        "processes": cfg.shards if (processes is None and usable_cpus() >= 2) else 0,
        "transactions": result["transactions"],
        "tx_per_s": round(max(rates)),
        "tx_per_s_median": round(statistics.median(rates)),
        "cpu_tx_per_s": round(max(cpu_rates)),
        "generate_tx_per_s": round(max(gen)),
        "updates": result["updates"],
        "mb": result["mb"],
        "mb_per_minute": round(result["mb"] / args.minutes, 3),
        "failed_share": result["failed_share"],
        "v0_share": result["v0_share"],
        "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }))


if __name__ == "__main__":
    main()
