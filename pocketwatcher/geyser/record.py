"""``pocketwatcher capture``: record a Yellowstone stream into a ``.pwcap`` file.

Records keep the bytes the server sent (``filters`` included; replay replaces them),
so a capture replays exactly what was received. The subscription is the runner's
(transactions of the watched programs, vote=false, failed=false, blocks_meta) plus slot
updates, at processed commitment: slot statuses let the replay server reproduce
confirmed/finalized ordering, and nothing that later confirms is missing. An update
without ``created_at`` gets the receive time, so replay at speed 1 keeps the pace.

The file is flushed every second, so a capture killed mid-way keeps what it had; Ctrl-C
ends the recording normally and returns the count.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from .. import __version__
from .capture import CaptureWriter
from .client import GeyserClient, build_request
from .wire import CREATED_AT_FIELD, timestamp_field

FLUSH_EVERY_S = 1.0


def default_programs() -> list[str]:
    """Every program id the parser knows (pump.fun, the pools, the routers)."""
    from ..parse.programs.registry import KNOWN_PROGRAMS

    return sorted(KNOWN_PROGRAMS)


class _Progress:
    """A one-line rich status: count, transactions, rate, last slot, elapsed."""

    def __init__(self, display: str, out: Path, enabled: bool) -> None:
        self.display, self.out, self.enabled = display, out, enabled
        self.start = self.last_draw = time.monotonic()
        self.live = None
        if enabled:
            from rich.console import Console
            from rich.live import Live

            self.live = Live(self._text(0, 0, None), console=Console(stderr=True),
                             refresh_per_second=4, transient=False)

    def _text(self, n: int, tx: int, slot: int | None):
        from rich.text import Text

        elapsed = time.monotonic() - self.start
        rate = n / elapsed if elapsed > 0 else 0.0
        return Text.assemble(("● ", "red"), f"recording {self.display} → {self.out.name}  ",
                             (f"{n:,}", "bold"), f" updates ({tx:,} tx) · {rate:,.0f}/s · slot {slot or '-'}"
                             f" · {int(elapsed // 60):02d}:{int(elapsed % 60):02d}")

    def __enter__(self) -> _Progress:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def draw(self, n: int, tx: int, slot: int | None, force: bool = False) -> None:
        now = time.monotonic()
        if self.live and (force or now - self.last_draw >= 0.25):
            self.last_draw = now
            self.live.update(self._text(n, tx, slot))


async def arecord(endpoint: str, out: Path, *, x_token: str | None = None, programs: list[str] | None = None,
                  duration: float | None = None, max_updates: int | None = None, progress: bool = True,
                  commitment: str = "processed", counter: list[int] | None = None) -> int:
    """The asyncio form of ``record`` (for callers already inside an event loop)."""
    out = Path(out)
    progs = default_programs() if programs is None else list(programs)
    # every slot status, dead ones too: a processed capture can hold transactions of a
    # dropped fork, and export-swaps leaves out the transactions of slots marked dead
    request = build_request(progs, commitment=commitment, slots=True, interslot=True)
    client = GeyserClient(endpoint, x_token)
    meta = {"source": "capture", "endpoint": client.display, "commitment": commitment,
            "programs": progs, "created_at": time.time(), "pocketwatcher": __version__}
    counter = counter if counter is not None else [0]
    writer = CaptureWriter(out, meta)
    bar = _Progress(client.display, out, progress)
    tx = 0
    sub = client.subscribe_raw(request)
    try:
        with bar:
            async with asyncio.timeout(duration):
                last_flush = time.monotonic()
                async for update, data in sub:
                    if not update.HasField("created_at"):
                        data = data + timestamp_field(CREATED_AT_FIELD, time.time())
                    writer.write(data)
                    counter[0] += 1
                    tx += update.HasField("transaction")
                    now = time.monotonic()
                    if now - last_flush >= FLUSH_EVERY_S:
                        writer.flush()
                        last_flush = now
                    bar.draw(counter[0], tx, sub.last_slot)
                    if max_updates is not None and counter[0] >= max_updates:
                        break
    except TimeoutError:
        pass  # duration reached
    except Exception:
        if counter[0] == 0:  # refused or unreachable: leave no empty capture behind
            writer.close()
            out.unlink(missing_ok=True)
        raise
    finally:
        bar.draw(counter[0], tx, sub.last_slot, force=True)
        await sub.close()
        await client.close()
        writer.close()
    return counter[0]


def record(endpoint: str, out: Path, *, x_token: str | None = None, programs: list[str] | None = None,
           duration: float | None = None, max_updates: int | None = None, progress: bool = True) -> int:
    """Record updates from ``endpoint`` into ``out``; returns how many were written.

    Stops after ``duration`` seconds, ``max_updates`` updates, the server closing the
    stream, or Ctrl-C, whichever comes first. ``programs=None`` watches every program
    the parser knows. Raises ``GeyserError`` (with what to fix) on connection or auth
    failures; the file then holds whatever arrived before (no file when nothing did).
    """
    counter = [0]
    try:
        return asyncio.run(arecord(endpoint, out, x_token=x_token, programs=programs, duration=duration,
                                   max_updates=max_updates, progress=progress, counter=counter))
    except KeyboardInterrupt:
        return counter[0]
