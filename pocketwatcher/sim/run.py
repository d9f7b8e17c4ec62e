"""``simulate()``: run the market, write ``DIR/capture.pwcap`` and ``DIR/truth/``, return the figures."""

from __future__ import annotations

import gc
import time
from collections import Counter
from pathlib import Path

from ..geyser.capture import CaptureWriter
from . import truth
from .config import DEFAULT_LAUNCHES_PER_MINUTE, SimConfig
from .stream import Simulation

CAPTURE_NAME = "capture.pwcap"


def simulate(minutes: float, seed: int, out_dir: Path, *,
             launches_per_minute: float = DEFAULT_LAUNCHES_PER_MINUTE, progress: bool = True,
             config: SimConfig | None = None, level: int = 1, processes: bool | None = None) -> dict:
    """Simulate ``minutes`` of pump.fun / PumpSwap activity for ``seed`` into ``out_dir``.

    Deterministic: the same (minutes, seed, config, level) writes identical bytes, whether
    the shards run in processes of their own (``processes``; default: with 2+ cores) or not.
    ``config`` overrides every setting; otherwise the defaults with ``launches_per_minute``.
    ``level`` is the zstd level of the capture: 1 by default (a third cheaper to compress
    than 3, files ~20 % larger); use 3 for a file that is shipped. Returns the summary
    figures (also in ``truth/summary.json``, without the wall-clock ones).
    """
    cfg = config or SimConfig(launches_per_minute=launches_per_minute)
    sim = Simulation(cfg, seed, minutes, processes=processes)  # checks minutes before anything is made
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"source": "pocketwatcher.sim", "seed": seed, "minutes": minutes, "config": cfg.model_dump(),
            "start_slot": cfg.start_slot, "start_unix": cfg.start_unix}
    path = out_dir / CAPTURE_NAME
    t0 = time.perf_counter()
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of short-lived bytes, no garbage cycles worth a collection pass
    try:
        sim.start()  # before any thread of ours exists: shard processes can be forked
        try:
            with CaptureWriter(path, meta, level=level, background=True) as cap:  # zstd on a thread of its own
                bar = _Progress(sim) if progress else None
                batch: list[bytes] = []
                for out in sim.run():
                    batch += out
                    if len(batch) >= _BATCH:
                        cap.write_many(batch)
                        batch = []
                    if bar is not None and sim.slots % 50 == 0:
                        bar.update()
                cap.write_many(batch)
                if bar is not None:
                    bar.close()
                updates = cap.count
        finally:
            sim.close()
        elapsed = time.perf_counter() - t0
        summary = _summary(sim, minutes, seed, updates, path.stat().st_size)
        truth.write(out_dir, sim.tables, summary)
        result = {**summary, "elapsed_s": round(elapsed, 3),
                  "tx_per_s": round(sim.transactions / elapsed, 1) if elapsed else None}
    finally:
        # Nothing may allocate between here and the return: every object of the run is still in
        # the youngest generation, so the first allocation with gc on starts a pass over all of
        # them while the run's objects are still alive — a pass that frees nothing. After the
        # return they are garbage and the caller's first pass frees them.
        if gc_was_on:
            gc.enable()
    return result


def _summary(sim: Simulation, minutes: float, seed: int, updates: int, size: int) -> dict:
    c, t = sim.counts, sim.tables
    assert t is not None
    n = c["transactions"]
    mints = t["mints"]
    launched = [not p for p in mints["pre_existing"]]
    actors = dict(zip(t["actors"]["actor_id"], t["actors"]["kind"], strict=True))
    start = sim.cfg.start_slot
    return {
        "minutes": minutes, "seed": seed, "shards": sim.cfg.shards,
        "slots": sim.slots, "skipped_slots": sim.skipped,
        "transactions": n, "failed": c["failed"],
        "failed_share": round(c["failed"] / n, 4) if n else 0.0,
        "v0_share": round(c["versioned"] / n, 4) if n else 0.0,
        "trades": len(t["trades"]["program"]), "trades_pumpfun": t["trades"]["program"].count("pumpfun"),
        "trades_pumpswap": t["trades"]["program"].count("pumpswap"),
        "launches": sum(launched), "pre_existing_tokens": len(launched) - sum(launched),
        "archetypes": dict(sorted(Counter(a for a, new in zip(mints["archetype"], launched, strict=True)
                                          if new).items())),
        "completed": sum(1 for s in mints["complete_slot"] if (s or 0) >= start),
        "migrations": sum(1 for s in mints["migrated_slot"] if (s or 0) >= start),
        "funding_transfers": len(t["funding"]["slot"]),
        "wallets": len(t["actors"]["wallet"]),
        "actors": dict(sorted(Counter(actors.values()).items())),
        "updates": updates, "capture_bytes": size, "mb": round(size / 1e6, 3),
        "shapes": c["shapes"],
    }


_BATCH = 1024  # updates per compressor call


class _Progress:
    """A rich progress bar over simulated time, with the generation rate and ETA."""

    def __init__(self, sim: Simulation) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.sim = sim
        self.t0 = time.perf_counter()
        self.p = Progress(TextColumn("[bold]simulating"), BarColumn(), TaskProgressColumn(),
                          TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False)
        self.task = self.p.add_task("sim", total=sim.end, rate="")
        self.p.start()

    def update(self) -> None:
        dt = time.perf_counter() - self.t0
        n = self.sim.transactions
        rate = f"{n:,} tx, {n / dt:,.0f} tx/s" if dt > 0 else ""
        self.p.update(self.task, completed=min(self.sim.now, self.sim.end), rate=rate)

    def close(self) -> None:
        self.update()
        self.p.update(self.task, completed=self.sim.end)
        self.p.stop()
