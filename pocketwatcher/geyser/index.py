"""A capture loaded once and indexed for filtering, so a subscription never re-parses.

Each record keeps what the Yellowstone filters look at (kind, slot, signature, vote,
failed, the account-key set: static keys + ALT-loaded writable + readonly) and its
original bytes minus any ``filters`` entries the recording server put there. Keys are
interned: the same program or mint in a million transactions is one bytes object.

The whole capture is held in memory (the body bytes dominate: roughly the uncompressed
capture size). That suits test and bench captures and hours of filtered mainnet
traffic; a multi-gigabyte capture would want a streaming index instead.
"""

from __future__ import annotations

import bisect
import gc
from dataclasses import dataclass, field
from pathlib import Path

from ..proto import geyser_pb2
from .capture import CaptureReader
from .wire import FILTERS_FIELD, strip_field

TX, SLOT, BLOCK_META, OTHER = 0, 1, 2, 3
_KINDS = {"transaction": TX, "slot": SLOT, "block_meta": BLOCK_META}
# The commitments a subscription can ask for; slot statuses with the same numbers.
PROCESSED, CONFIRMED, FINALIZED = 0, 1, 2


class Record:
    """One capture record as the filters see it."""

    __slots__ = ("kind", "slot", "t", "body", "sig", "vote", "failed", "keys", "status", "status_body")

    def __init__(self, kind: int, slot: int, t: float, body: bytes) -> None:
        self.kind, self.slot, self.t, self.body = kind, slot, t, body
        self.sig: bytes = b""
        self.vote = self.failed = False
        self.keys: frozenset[bytes] = frozenset()
        self.status = -1
        self.status_body: bytes | None = None  # a transaction's status update, made when first asked for


@dataclass
class Order:
    """Records in emission order for one commitment, with the time each is released."""

    recs: list[Record]
    times: list[float]
    slots: list[int] = field(default_factory=list)

    def start_for(self, from_slot: int) -> int:
        """Position of the first record at or after ``from_slot`` (len when none)."""
        if not self.slots:
            self.slots = _running_max([r.slot for r in self.recs])
        return bisect.bisect_left(self.slots, from_slot)


def _running_max(values: list[int]) -> list[int]:
    out, top = [], 0
    for v in values:
        top = max(top, v)
        out.append(top)
    return out


class CaptureIndex:
    """Every record of a capture, parsed once, plus the few facts the unary RPCs answer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        reader = CaptureReader(self.path)
        self.meta = reader.meta
        self.records: list[Record] = []
        self.first_slot: int | None = None
        self.last_slot = 0
        self.status_slot: dict[int, int] = {}
        self.reached: dict[int, set[int]] = {}  # CONFIRMED / FINALIZED -> the slots that got at least there
        self.blocks: list[tuple[int, str, int]] = []  # (slot, blockhash, block_height)
        intern: dict[bytes, bytes] = {}
        t = 0.0
        # Records hold no reference cycles; pausing the cyclic GC while a million of them
        # are created saves it rescanning the growing heap (~30% of the load time).
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            for raw in reader:
                rec = self._index(raw, intern, t)
                if rec is None:
                    continue
                t = rec.t
                self.records.append(rec)
                if rec.slot:
                    self.first_slot = rec.slot if self.first_slot is None else min(self.first_slot, rec.slot)
                    self.last_slot = max(self.last_slot, rec.slot)
        finally:
            if gc_was_on:
                gc.enable()
        self.truncated = reader.truncated
        self.tx_count = sum(1 for r in self.records if r.kind == TX)
        self.blockhashes = {b[1]: b for b in self.blocks}
        self._orders: dict[int, Order] = {}

    def _index(self, raw: bytes, intern: dict[bytes, bytes], prev_t: float) -> Record | None:
        u = geyser_pb2.SubscribeUpdate.FromString(raw)
        which = u.WhichOneof("update_oneof")
        if which in (None, "ping", "pong"):
            return None
        t = prev_t
        if u.HasField("created_at"):
            t = u.created_at.seconds + u.created_at.nanos * 1e-9
        body = strip_field(raw, FILTERS_FIELD) if len(u.filters) else raw
        kind = _KINDS.get(which, OTHER)
        if kind == TX:
            utx = u.transaction
            info = utx.transaction
            tx, meta = info.transaction, info.meta
            rec = Record(TX, utx.slot, t, body)
            sigs = tx.signatures
            rec.sig = sigs[0] if sigs else info.signature
            rec.vote = info.is_vote
            rec.failed = meta.HasField("err")
            keys = [*tx.message.account_keys, *meta.loaded_writable_addresses, *meta.loaded_readonly_addresses]
            rec.keys = frozenset(map(intern.setdefault, keys, keys))
        elif kind == SLOT:
            rec = Record(SLOT, u.slot.slot, t, body)
            rec.status = u.slot.status
            if rec.status in (PROCESSED, CONFIRMED, FINALIZED):
                self.status_slot[rec.status] = max(self.status_slot.get(rec.status, 0), rec.slot)
                for c in (CONFIRMED, FINALIZED)[:rec.status]:  # finalized is confirmed too
                    self.reached.setdefault(c, set()).add(rec.slot)
        elif kind == BLOCK_META:
            bm = u.block_meta
            rec = Record(BLOCK_META, bm.slot, t, body)
            self.blocks.append((bm.slot, bm.blockhash, bm.block_height.block_height))
        else:
            rec = Record(OTHER, getattr(getattr(u, which), "slot", 0), t, body)
        return rec

    def order(self, commitment: int) -> Order:
        """Emission order for ``commitment``, like Yellowstone's per-commitment broadcast.

        Processed: as recorded. Confirmed/finalized: slot updates stay where they are;
        every other record of slot S is held back until the capture's slot update that
        marks S at that commitment, and released just before it (never, if S never gets
        there): as in Yellowstone's geyser loop, a client sees a slot's content before
        the status that commits it, so it can act on the status as "slot complete".
        A capture with no slot updates at that status (recorded without a slots filter)
        carries no commitment information, so it replays as recorded.
        """
        if commitment in self._orders:
            return self._orders[commitment]
        recs = self.records
        if commitment == PROCESSED or commitment not in self.status_slot:
            order = Order(recs, [r.t for r in recs])
        else:
            held: dict[int, list[Record]] = {}
            out: list[Record] = []
            times: list[float] = []
            for r in recs:
                if r.kind == SLOT:
                    if r.status == commitment:  # the slot's data first, then its status
                        for h in held.pop(r.slot, ()):
                            out.append(h)
                            times.append(r.t)
                    out.append(r)
                    times.append(r.t)
                else:
                    held.setdefault(r.slot, []).append(r)
            order = Order(out, times)
        self._orders[commitment] = order
        return order

    def committed(self, slot: int, commitment: int) -> bool:
        """Whether ``slot`` reached ``commitment`` (finalized counts as confirmed). A capture
        without statuses at that commitment carries no such information: every slot did."""
        if commitment == PROCESSED or commitment not in self.status_slot:
            return True
        return slot in self.reached[commitment]

    def latest_block(self, commitment: int) -> tuple[int, str, int] | None:
        """The newest block_meta at or below the newest slot seen at ``commitment``."""
        if not self.blocks:
            return None
        top = self.status_slot.get(commitment, self.last_slot)
        best = None
        for b in self.blocks:
            if b[0] <= top and (best is None or b[0] > best[0]):
                best = b
        return best  # None: no block at that commitment yet
