"""``simulate()``: run the market, write ``DIR/capture.pwcap`` and ``DIR/truth/``, return the figures."""

from __future__ import annotations

import gc
import time
from collections import Counter
from pathlib import Path

from ..geyser.capture import CaptureWriter
from .config import DEFAULT_LAUNCHES_PER_MINUTE, SimConfig
from .market import Market

CAPTURE_NAME = "capture.pwcap"


def simulate(minutes: float, seed: int, out_dir: Path, *,
             launches_per_minute: float = DEFAULT_LAUNCHES_PER_MINUTE, progress: bool = True,
             config: SimConfig | None = None, level: int = 1) -> dict:
    """Simulate ``minutes`` of pump.fun / PumpSwap activity for ``seed`` into ``out_dir``.

    Deterministic: the same (minutes, seed, config, level) writes identical bytes.
    ``config`` overrides every setting; otherwise the defaults with ``launches_per_minute``.
    ``level`` is the zstd level of the capture: 1 by default (a third cheaper to compress
    than 3, files ~20 % larger); use 3 for a file that is shipped. Returns the summary
    figures (also in ``truth/summary.json``, without the wall-clock ones).
    """
    if minutes <= 0:
        raise ValueError(f"minutes must be positive, got {minutes}")
    cfg = config or SimConfig(launches_per_minute=launches_per_minute)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = Market(cfg, seed, minutes)
    meta = {"source": "pocketwatcher.sim", "seed": seed, "minutes": minutes, "config": cfg.model_dump(),
            "start_slot": cfg.start_slot, "start_unix": cfg.start_unix}
    path = out_dir / CAPTURE_NAME
    t0 = time.perf_counter()
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of short-lived bytes, no garbage cycles worth a collection pass
    try:
        with CaptureWriter(path, meta, level=level, background=True) as cap:  # zstd on the other core
            bar = _Progress(m, minutes) if progress else None
            batch: list[bytes] = []
            for out in m.run():
                batch += out
                if len(batch) >= _BATCH:
                    cap.write_many(batch)
                    batch = []
                if bar is not None and m.slots % 50 == 0:
                    bar.update()
            cap.write_many(batch)
            if bar is not None:
                bar.close()
            updates = cap.count
        elapsed = time.perf_counter() - t0
        summary = _summary(m, minutes, seed, updates, path.stat().st_size)
        m.truth.write(out_dir, summary)  # still without gc: a pass over the market's objects costs ~0.1 s
        result = {**summary, "elapsed_s": round(elapsed, 3),
                  "tx_per_s": round(m.enc.transactions / elapsed, 1) if elapsed else None}
    finally:
        # Nothing may allocate between here and the return: every object of the run is still in
        # the youngest generation, so the first allocation with gc on starts a pass over all of
        # them (~0.07 s for 10 simulated minutes) while the market is still alive — a pass that
        # frees nothing. After the return the market is garbage and the caller's first pass frees it.
        if gc_was_on:
            gc.enable()
    return result


def _summary(m: Market, minutes: float, seed: int, updates: int, size: int) -> dict:
    enc, truth = m.enc, m.truth
    programs = Counter(row[-1] for row in truth.trade_rows)
    tokens = truth.tokens
    launched = [t for t in tokens if not t.pre_existing]
    return {
        "minutes": minutes, "seed": seed,
        "slots": m.slots, "skipped_slots": m.skipped,
        "transactions": enc.transactions, "failed": enc.failed,
        "failed_share": round(enc.failed / enc.transactions, 4) if enc.transactions else 0.0,
        "v0_share": round(enc.versioned / enc.transactions, 4) if enc.transactions else 0.0,
        "trades": len(truth.trade_rows), "trades_pumpfun": programs["pumpfun"],
        "trades_pumpswap": programs["pumpswap"],
        "launches": len(launched), "pre_existing_tokens": len(tokens) - len(launched),
        "archetypes": dict(sorted(Counter(t.archetype for t in launched).items())),
        "completed": sum(1 for t in tokens if (t.complete_slot or 0) >= m.cfg.start_slot),
        "migrations": sum(1 for t in tokens if (t.migrated_slot or 0) >= m.cfg.start_slot),
        "funding_transfers": len(truth.funding["slot"]),
        "wallets": len(truth.wallet_rows),
        "actors": dict(sorted(Counter(a.kind for a in {id(a): a for a, _, _ in truth.wallet_rows}.values()).items())),
        "updates": updates, "capture_bytes": size, "mb": round(size / 1e6, 3),
        "shapes": enc.shapes,
    }


_BATCH = 1024  # updates per compressor call


class _Progress:
    """A rich progress bar over simulated time, with the generation rate and ETA."""

    def __init__(self, m: Market, minutes: float) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

        self.m = m
        self.t0 = time.perf_counter()
        self.p = Progress(TextColumn("[bold]simulating"), BarColumn(), TaskProgressColumn(),
                          TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False)
        self.task = self.p.add_task("sim", total=minutes * 60.0, rate="")
        self.p.start()

    def update(self) -> None:
        dt = time.perf_counter() - self.t0
        n = self.m.enc.transactions
        rate = f"{n:,} tx, {n / dt:,.0f} tx/s" if dt > 0 else ""
        self.p.update(self.task, completed=min(self.m.now, self.m.end), rate=rate)

    def close(self) -> None:
        self.update()
        self.p.update(self.task, completed=self.m.end)
        self.p.stop()
