"""A seed fully determines a run: same seed, same bytes; another seed, another market."""

from __future__ import annotations

import pytest

from pocketwatcher.sim import SimConfig, simulate
from pocketwatcher.sim.truth import read

TABLES = ("mints", "actors", "trades", "failed", "funding")


def _run(tmp_path_factory, seed: int):
    out = tmp_path_factory.mktemp(f"seed{seed}")
    summary = simulate(1.0, seed, out, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return [_run(tmp_path_factory, s) for s in (11, 11, 12)]


def test_same_seed_same_capture_bytes_and_truth(runs):
    (a, sa), (b, sb), _ = runs
    assert (a / "capture.pwcap").read_bytes() == (b / "capture.pwcap").read_bytes()
    for name in TABLES:
        assert read(a, name).equals(read(b, name)), name
    assert (a / "truth" / "summary.json").read_text() == (b / "truth" / "summary.json").read_text()
    assert {k: v for k, v in sa.items() if k not in ("elapsed_s", "tx_per_s")} == {
        k: v for k, v in sb.items() if k not in ("elapsed_s", "tx_per_s")}


def test_another_seed_gives_another_market(runs):
    (a, _), _, (c, _) = runs
    assert (a / "capture.pwcap").read_bytes() != (c / "capture.pwcap").read_bytes()
    ta, tc = read(a, "trades"), read(c, "trades")
    assert not set(ta.column("signature").to_pylist()) & set(tc.column("signature").to_pylist())
    assert set(read(a, "mints").column("mint").to_pylist()) != set(read(c, "mints").column("mint").to_pylist())


def test_config_is_checked_by_name():
    with pytest.raises(ValueError, match="launches_per_mintue"):
        SimConfig(launches_per_mintue=3)
    with pytest.raises(ValueError, match="sum to 1"):
        SimConfig(shares={"dud": 0.5, "rug": 0.1})
    with pytest.raises(ValueError, match="unknown archetype"):
        SimConfig(shares={"dud": 0.5, "moon": 0.5})
    with pytest.raises(ValueError, match="minutes"):
        simulate(0, 1, "/nonexistent", progress=False)


def test_independent_of_the_process_hash_seed(tmp_path):
    import os
    import subprocess
    import sys

    code = "import sys; from pocketwatcher.sim import simulate; simulate(0.5, 3, sys.argv[1], progress=False)"
    for h in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": h}
        subprocess.run([sys.executable, "-c", code, str(tmp_path / h)], check=True, env=env)
    assert (tmp_path / "1" / "capture.pwcap").read_bytes() == (tmp_path / "2" / "capture.pwcap").read_bytes()


def test_the_shipped_sample_is_what_its_documented_command_makes(tmp_path):
    """data/sample.pwcap is `pocketwatcher simulate --minutes 6 --seed 3 --level 3` (README):
    the same records and metadata. A change to the simulator's output fails here; regenerate
    the sample with that command (the file's compressed bytes may differ between zstd builds,
    so the records are compared, not the file)."""
    from conftest import SAMPLE

    from pocketwatcher.geyser.capture import CaptureReader

    simulate(6.0, 3, tmp_path, progress=False, level=3)
    made, shipped = CaptureReader(tmp_path / "capture.pwcap"), CaptureReader(SAMPLE)
    assert made.meta == shipped.meta
    n = 0
    for n, (a, b) in enumerate(zip(made, shipped, strict=True), 1):
        assert a == b, f"record {n} differs: regenerate data/sample.pwcap (see the README)"
    assert n > 6_000
