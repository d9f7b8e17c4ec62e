"""Slot → block time, from the stream's own BlockMeta updates.

Geyser transaction updates carry a slot but no time; ``block_meta`` updates carry the
slot's ``block_time`` (unix seconds). Everything downstream runs on event time, so every
swap needs one. When a slot's BlockMeta has not arrived (yet, or ever), the time is
estimated from the nearest known slots — interpolated between two, or extrapolated at
the seconds-per-slot measured from the known ones (never a hard-coded 400 ms when the
stream says otherwise) — and flagged as estimated. With no BlockMeta at all there is
nothing to estimate from, and the answer is ``None``, never 0.
"""

from __future__ import annotations

import bisect

DEFAULT_SECONDS_PER_SLOT = 0.4


class SlotClock:
    def __init__(self, max_slots: int = 200_000) -> None:
        self._times: dict[int, int] = {}
        self._sorted: list[int] = []  # known slots, ascending
        self._max = max_slots

    def __len__(self) -> int:
        return len(self._times)

    def observe(self, slot: int, block_time: int) -> None:
        if not block_time or block_time < 0:
            return  # a BlockMeta without a time tells nothing
        if slot in self._times:
            self._times[slot] = block_time
            return
        self._times[slot] = block_time
        if not self._sorted or slot > self._sorted[-1]:
            self._sorted.append(slot)
        else:
            bisect.insort(self._sorted, slot)
        if len(self._sorted) > self._max:  # keep memory bounded: forget the oldest slots
            drop = self._sorted[: len(self._sorted) - self._max]
            del self._sorted[: len(drop)]
            for s in drop:
                self._times.pop(s, None)

    def seconds_per_slot(self) -> float:
        s = self._sorted
        if len(s) < 2:
            return DEFAULT_SECONDS_PER_SLOT
        lo = s[max(0, len(s) - 1000)]
        hi = s[-1]
        if hi == lo:
            return DEFAULT_SECONDS_PER_SLOT
        rate = (self._times[hi] - self._times[lo]) / (hi - lo)
        return rate if 0.05 <= rate <= 2.0 else DEFAULT_SECONDS_PER_SLOT

    def time_of(self, slot: int) -> tuple[int | None, bool]:
        """(block_time, estimated) for a slot."""
        t = self._times.get(slot)
        if t is not None:
            return t, False
        s = self._sorted
        if not s:
            return None, True
        i = bisect.bisect_left(s, slot)
        if 0 < i < len(s):
            a, b = s[i - 1], s[i]
            ta, tb = self._times[a], self._times[b]
            return round(ta + (tb - ta) * (slot - a) / (b - a)), True
        ref = s[-1] if i >= len(s) else s[0]
        return round(self._times[ref] + (slot - ref) * self.seconds_per_slot()), True
