"""Slot → time from BlockMeta: exact when known, estimated (and flagged) otherwise, never 0."""

from pocketwatcher.geyser.clock import SlotClock


def test_exact_interpolated_and_extrapolated():
    c = SlotClock()
    assert c.time_of(100) == (None, True)  # nothing known: no guess, and never 0
    c.observe(100, 1_700_000_000)
    c.observe(110, 1_700_000_004)
    assert c.time_of(100) == (1_700_000_000, False)
    assert c.time_of(105) == (1_700_000_002, True)
    # measured 0.4 s/slot from the stream, not assumed
    assert c.time_of(120) == (1_700_000_008, True)
    assert c.time_of(90) == (1_699_999_996, True)


def test_measured_pace_is_used():
    c = SlotClock()
    for i in range(0, 1000, 10):
        c.observe(1000 + i, 1_700_000_000 + int(i * 0.25))  # a 250 ms chain
    assert abs(c.seconds_per_slot() - 0.25) < 0.01
    t, est = c.time_of(1000 + 990 + 400)
    assert est and abs(t - (1_700_000_000 + int(990 * 0.25) + 100)) <= 1


def test_zero_time_ignored_and_memory_bounded():
    c = SlotClock(max_slots=100)
    c.observe(5, 0)
    assert len(c) == 0
    for s in range(1000):
        c.observe(s, 1_700_000_000 + s)
    assert len(c) == 100
    assert c.time_of(999) == (1_700_000_999, False)
    assert c.time_of(0)[1] is True  # forgotten, estimated again
