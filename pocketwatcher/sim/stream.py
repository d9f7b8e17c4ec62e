"""A run of the simulator: its shards side by side, merged into one Geyser stream.

``SimConfig.shards`` markets (:class:`~pocketwatcher.sim.market.Market`) follow one
:class:`~pocketwatcher.sim.market.Clock`. Each produces, per slot, its transactions'
``SubscribeUpdateTransactionInfo`` bodies and the market time each was sent at. The
:class:`Simulation` merges a slot's transactions by that time (ties: shard, then the
shard's own order), then places them in the block as a single market would:

- an increasing, gappy ``index`` (other programs' and vote transactions sit in the gaps),
  and a transaction bundled behind the previous one gets the next index;
- ``created_at``: when a processed-commitment subscriber receives it, a few ms after it
  was sent, never earlier than the previous update, never after the slot ends;
- then the slot's ``block_meta`` (with ``block_time``) and ``slot`` updates.

The merger adds the index, the slot and the update's wrapping around each body, and maps
every shard's transaction numbers in the truth tables to their index in block.

With two or more cores each shard runs in a process of its own (forked while the caller
has one thread, spawned otherwise) and sends its slots in batches through a pipe, which a
thread of the calling process reads ahead; the merging stays in the calling process. The bytes do not depend on that: ``processes=False``
runs the shards in turn in this process and gives the same stream.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import random
import threading
import traceback
from collections.abc import Iterator
from math import log

from .accounts import KeyFactory, b58
from .config import SimConfig
from .market import Clock, Market, block_hash, derive_seed
from .truth import merge
from .wire import _V, SLOT_PROCESSED, block_meta_update, created_at_field, ld, slot_update, varint

FILTERS = ("pocketwatcher",)
# A shard process sends its slots in batches of about this many transactions (~190 KB). Measured
# on 2 cores (30 simulated minutes): 256 beat 1,024 and 4,096, and widening the pipe from 64 KiB to
# 1 MiB made both slower; smaller batches cost more in wake-ups. What is in flight stays in cache.
BATCH_TXS = 256
QUEUE_BATCHES = 16  # batches received ahead per shard (~3 MB); idle CPU fell from ~12 % to 5-10 %
COUNTS = ("transactions", "failed", "versioned", "shapes")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Simulation:
    """One run: iterate :meth:`run` for the stream; then ``counts`` and ``tables`` hold the results."""

    def __init__(self, cfg: SimConfig, seed: int, minutes: float, *, processes: bool | None = None,
                 filters: tuple[str, ...] = FILTERS, start_method: str | None = None) -> None:
        if minutes <= 0:
            raise ValueError(f"minutes must be positive, got {minutes}")
        self.cfg = cfg
        self.seed = seed
        self.minutes = minutes
        self.end = minutes * 60.0
        self.processes = usable_cpus() >= 2 if processes is None else processes
        self.start_method = start_method  # multiprocessing's; None: fork when single-threaded, else spawn
        self.filters = b"".join(ld(b"\x0a", f.encode()) for f in filters)
        self.transactions = 0  # merged so far
        self.now = 0.0  # simulated seconds merged so far
        self.slots = 0
        self.skipped = 0
        self.counts: dict[str, int] = {}
        self.tables: dict[str, dict[str, list]] | None = None
        self._indexes: list[list[int]] = [[] for _ in range(cfg.shards)]
        self._results: list[dict | None] = [None] * cfg.shards
        self._sources: list[Iterator] | None = None
        self._procs: list = []

    # ---- the shards ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the shards (their processes start generating at once); ``run`` calls it if needed."""
        if self._sources is not None:
            return
        n = self.cfg.shards
        if not self.processes:
            self._sources = [self._local(k) for k in range(n)]
            return
        # fork is fast and needs no imports, but only a single-threaded process forks safely
        method = self.start_method or (
            "fork" if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods() else "spawn")
        ctx = multiprocessing.get_context(method)
        self._sources = []
        for k in range(n):
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_shard_main, args=(self.cfg, self.seed, self.minutes, k, send),
                            name=f"pocketwatcher-sim-shard-{k}", daemon=True)
            p.start()
            send.close()
            q: queue.Queue = queue.Queue(QUEUE_BATCHES)
            reader = threading.Thread(target=_receive, args=(recv, q), name=f"pocketwatcher-sim-recv-{k}",
                                      daemon=True)
            self._procs.append((p, recv, q, reader))
            self._sources.append(self._remote(k, p, q))
        for _, _, _, reader in self._procs:  # after the last fork: a child gets no half-held lock of theirs
            reader.start()

    def _local(self, k: int) -> Iterator:
        m = Market(self.cfg, self.seed, self.minutes, k)
        yield from m.run()
        self._results[k] = _result(m)

    def _remote(self, k: int, proc, q: queue.Queue) -> Iterator:
        """Shard ``k``'s slots, from what its reader thread received."""
        while True:
            msg = q.get()
            if msg is None:
                proc.join(5)
                raise RuntimeError(f"simulation shard {k} ended without its results "
                                   f"(exit code {proc.exitcode})") from None
            kind, payload = msg
            if kind == "slots":
                yield from payload
            elif kind == "done":
                self._results[k] = payload
                return
            else:
                raise RuntimeError(f"simulation shard {k} failed:\n{payload}")

    def close(self) -> None:
        """Stop shard processes that are still running (a run left before its end), and their readers."""
        for p, _, _, _ in self._procs:
            if p.is_alive():
                p.terminate()
        for p, conn, q, reader in self._procs:
            p.join()
            while reader.is_alive():  # it ends at the pipe's EOF, once its queue has room
                try:
                    while True:
                        q.get_nowait()
                except queue.Empty:
                    pass
                reader.join(0.01)
            conn.close()
        self._procs = []

    # ---- the merged stream ---------------------------------------------------------------------

    def run(self) -> Iterator[list[bytes]]:
        """Yield, per produced slot, its updates (serialized ``SubscribeUpdate`` bytes)."""
        self.start()
        try:
            yield from self._merge()
        finally:
            self.close()

    def _merge(self) -> Iterator[list[bytes]]:
        cfg = self.cfg
        sources = self._sources
        assert sources is not None
        n = len(sources)
        rng = random.Random(derive_seed("stream", self.seed))
        random_, randrange = rng.random, rng.randrange
        keys = KeyFactory(self.seed)
        filters = self.filters
        start_unix = cfg.start_unix
        indexes = self._indexes
        parent = cfg.start_slot - 1
        parent_hash = b58(block_hash(keys, parent))
        height = 420_000_000 + (cfg.start_slot - 460_000_000) * 9 // 10
        last_ca = 0.0
        clock = Clock(cfg, self.seed, self.end)
        for slot, t, t_end in clock:
            parts = []
            for k, src in enumerate(sources):
                part = next(src, None)
                if part is None:
                    raise RuntimeError(f"simulation shard {k} ended before slot {slot}")
                parts.append(part)
            if n == 1:
                order = [(0, i) for i in range(len(parts[0][2]))]
            else:
                order = [(k, i) for _, k, i in sorted(
                    (tm, k, i) for k, part in enumerate(parts) for i, tm in enumerate(part[0]))]
            bundled = [set(part[1]) for part in parts]
            slot_f = b"\x10" + varint(slot)
            tail_n = 1 + len(slot_f)
            index = randrange(40)
            out = []
            append = out.append
            for k, i in order:
                times, _, bodies = parts[k]
                r = random_()
                index += 1 if i in bundled[k] else 1 + int(-log(1.0 - r) * 6.67)  # others' txs in the gaps
                ca = times[i] + 0.004 + 0.02 * r
                if ca > t_end:
                    ca = t_end
                if ca < last_ca:
                    ca = last_ca
                last_ca = ca
                indexes[k].append(index)
                body = bodies[i]
                index_f = b"\x28" + (_V[index] if index < 16384 else varint(index))
                size = len(body) + len(index_f)
                info_n = _V[size] if size < 16384 else varint(size)
                size += tail_n + len(info_n)
                append(b"".join((filters, b"\x22", _V[size] if size < 16384 else varint(size), b"\x0a", info_n,
                                 body, index_f, slot_f, created_at_field(start_unix + ca))))
            ca = (last_ca if last_ca > t_end else t_end) + 0.01 + 0.02 * random_()
            bh58 = b58(block_hash(keys, slot))
            height += 1
            n_txs = index + randrange(1, 60)  # the block also holds votes and other programs' txs
            append(block_meta_update(filters, slot, bh58, int(start_unix + t), height, parent, parent_hash, n_txs,
                                     64 + n_txs // 3, start_unix + ca))
            append(slot_update(filters, slot, parent, SLOT_PROCESSED, start_unix + ca + 0.001))
            last_ca = ca + 0.001
            parent, parent_hash = slot, bh58
            self.transactions += len(order)
            self.now = t_end
            self.slots += 1
            self.skipped = clock.skipped
            yield out
        for k, src in enumerate(sources):
            for _ in src:
                raise RuntimeError(f"simulation shard {k} produced more slots than the clock")
        results = self._results
        self.counts = {c: sum(r[c] for r in results) for c in COUNTS}
        if self.counts["transactions"] != self.transactions:
            raise RuntimeError(f"the shards made {self.counts['transactions']} transactions, "
                               f"the stream holds {self.transactions}")
        self.tables = merge([r["tables"] for r in results], indexes)


def _receive(conn, q: queue.Queue) -> None:
    """A reader thread: a shard's messages into ``q``, so the shard can run ahead of the merger
    (it blocks only when ``QUEUE_BATCHES`` wait); None at the pipe's end without results."""
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            q.put(None)
            return
        q.put(msg)
        if msg[0] != "slots":
            return


def _result(m: Market) -> dict:
    enc = m.enc
    return {"transactions": enc.transactions, "failed": enc.failed, "versioned": enc.versioned,
            "shapes": enc.shapes, "tables": m.truth.tables()}


def _shard_main(cfg: SimConfig, seed: int, minutes: float, shard: int, conn) -> None:
    """A shard process: run the market, send its slots in batches, then its results."""
    gc.disable()  # millions of short-lived bytes, no garbage cycles worth a collection pass
    try:
        m = Market(cfg, seed, minutes, shard)
        batch: list = []
        ntx = 0
        for part in m.run():
            batch.append(part)
            ntx += len(part[2])
            if ntx >= BATCH_TXS:
                conn.send(("slots", batch))
                batch = []
                ntx = 0
        if batch:
            conn.send(("slots", batch))
        conn.send(("done", _result(m)))
    except (BrokenPipeError, ConnectionResetError):  # the merger stopped reading: nothing to report to
        pass
    except BaseException:  # noqa: BLE001 - reported to the merger, which raises it
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
    finally:
        conn.close()
