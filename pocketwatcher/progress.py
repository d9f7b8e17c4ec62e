"""One progress display for long work: a bar, the count, the rate and the ETA."""

from __future__ import annotations

from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else f"? {self.unit}/s", style="progress.data.speed")


@contextmanager
def progress_bar(total: int | None, label: str, *, unit: str = "it", enabled: bool = True, every: int = 1000):
    """Yield ``advance(n=1)``; the display refreshes every ``every`` items to stay cheap."""
    if not enabled:
        yield lambda n=1: None
        return
    p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
                 TimeRemainingColumn())
    task = p.add_task(label, total=total)
    done = [0, 0]  # total, not yet shown

    def advance(n: int = 1) -> None:
        done[1] += n
        if done[1] >= every:
            done[0] += done[1]
            done[1] = 0
            p.update(task, completed=done[0])

    with p:
        yield advance
        done[0] += done[1]
        p.update(task, completed=done[0])
