"""A simulated market, exported once per test session (it takes a few seconds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sim_export(tmp_path_factory):
    from pocketwatcher.sim import simulate
    from pocketwatcher.store.parquet import export_capture

    d = tmp_path_factory.mktemp("sim")
    summary = simulate(12.0, 11, d, progress=False)
    export_capture(d / "capture.pwcap", d / "export", progress=False)
    return d, summary
