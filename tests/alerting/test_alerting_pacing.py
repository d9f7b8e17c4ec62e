"""Pacing to documented limits, on a fake clock (the real-time behaviour is in the dispatch tests)."""

from __future__ import annotations

from pocketwatcher.alerting.pacing import (
    DISCORD_WEBHOOK,
    MARGIN_S,
    TELEGRAM_GROUP,
    Pacer,
    Window,
)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def schedule(windows, n: int) -> list[float]:
    """Send times of ``n`` back-to-back requests through one key."""
    clock = Clock()
    p = Pacer(clock)
    keys = [("k", windows)]
    times = []
    for _ in range(n):
        clock.t += p.delay(keys)
        times.append(clock.t)
        p.keys["k"].sent.append(clock.t)
    return times


def max_in_window(times: list[float], per_s: float) -> int:
    return max(sum(1 for u in times if t <= u < t + per_s) for t in times)


def test_discord_webhook_5_per_2s_and_30_per_minute():
    times = schedule(DISCORD_WEBHOOK, 70)
    assert max_in_window(times, 2.0) <= 5
    assert max_in_window(times, 60.0) <= 30
    assert times[4] == 0.0 and 2.0 < times[5] <= 2.0 + 2 * MARGIN_S  # a burst of 5, then wait for the window


def test_telegram_group_1_per_second_and_20_per_minute():
    times = schedule(TELEGRAM_GROUP, 45)
    assert max_in_window(times, 1.0) <= 1 and max_in_window(times, 60.0) <= 20
    assert times[20] >= 60.0


def test_a_block_delays_its_key_only():
    clock = Clock()
    p = Pacer(clock)
    p.block("route", 1.5)
    assert p.delay([("route", ())]) == 1.5
    assert p.delay([("other", (Window(1, 1.0),))]) == 0.0
    assert p.delay([("other", ()), ("route", ())]) == 1.5  # a request touching both waits for both
    clock.t = 1.5
    assert p.delay([("route", ())]) == 0.0
