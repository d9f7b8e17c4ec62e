"""Worker processes over partitions of the mints, and the progress bar that follows them.

The backtest and the sweep's feature table both run one job per partition
(``hash(mint) % parts``). ``run_parts`` runs them (in this process when there is one,
else in spawned processes) while a rich progress bar on stderr follows the rows the
workers have handled: each worker writes its count into its slot of a shared array
(``report``), the main process reads the sum 4 times a second. The bar shows when
stderr is a terminal or when asked, and costs the workers one store per batch.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait

from .data import connect

_DONE = None  # in a worker: the shared counters of rows handled, one slot per partition


def _init_worker(done) -> None:
    global _DONE
    _DONE = done


def report(part: int, rows: int) -> None:
    """A worker has handled ``rows`` rows of its partition so far."""
    if _DONE is not None:
        _DONE[part] = rows


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def duckdb_threads(workers: int) -> int:
    """DuckDB threads per worker: the cores shared out."""
    return max(1, (os.cpu_count() or 1) // workers)


class Bar:
    """A rich progress bar on stderr (rows, rate, elapsed, ETA) when it is a terminal or
    when asked; otherwise nothing. It redraws 4 times a second."""

    def __init__(self, progress: bool | None) -> None:
        self.enabled = sys.stderr.isatty() if progress is None else bool(progress)
        self.p = None

    def start(self, total: int, label: str, unit: str = "rows") -> None:
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from ..progress import RateColumn

        self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                          refresh_per_second=4)
        self.task = self.p.add_task(label, total=total)
        self.p.start()

    def set(self, completed: int) -> None:
        if self.p is not None:
            self.p.update(self.task, completed=completed)

    def phase(self, label: str) -> None:
        if self.p is not None:
            self.p.update(self.task, description=label)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        if self.p is not None:
            self.p.stop()


class _InProcess:
    """The counter slot of a job run in this process: it moves the bar directly."""

    def __init__(self, bar: Bar) -> None:
        self.bar = bar

    def __setitem__(self, _part: int, rows: int) -> None:
        self.bar.set(rows)


def stream_rows(swaps_glob: str, events: str | None) -> int:
    """Swaps and creates: the rows the workers will read (Parquet row counts, no scan)."""
    con = connect()
    try:
        n = con.execute(f"SELECT count(*) FROM read_parquet('{_q(swaps_glob)}', union_by_name = true)").fetchone()[0]
        if events:
            n += con.execute(f"SELECT count(*) FROM read_parquet('{_q(events)}') WHERE kind = 'create'").fetchone()[0]
        return n
    finally:
        con.close()


def _q(s: str) -> str:
    return s.replace("'", "''")


def run_parts(fn: Callable, jobs: Sequence, bar: Bar, *, swaps_glob: str, events: str | None, label: str,
              then: str | None = None) -> list:
    """``fn(job)`` for every job (one per partition, the partition number at ``job[2]``),
    results in job order. The bar counts rows read; ``then`` names what the workers do
    after their last row (it replaces the label once all rows are in)."""
    total = 0
    if bar.enabled:
        total = stream_rows(swaps_glob, events)
        bar.start(total, label)
    if len(jobs) == 1:
        _init_worker(_InProcess(bar) if bar.enabled else None)
        try:
            return [fn(jobs[0])]
        finally:
            _init_worker(None)
    ctx = mp.get_context("spawn")
    done = ctx.Array("q", len(jobs), lock=False)
    with ProcessPoolExecutor(len(jobs), mp_context=ctx, initializer=_init_worker, initargs=(done,)) as ex:
        futs = [ex.submit(fn, j) for j in jobs]
        pending = set(futs)
        while pending:
            finished, pending = wait(pending, timeout=0.25, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in finished):
                break
            n = sum(done)
            bar.set(n)
            if then and total and n >= total:
                bar.phase(then)
        return [f.result() for f in futs]
