"""papermill runs both notebooks headless, on the `python3` kernel (this venv's Python, through
ipykernel), over a small simulated market, and what they write agrees with the library."""

from __future__ import annotations

import re
import sys

import nbformat
import papermill
import pyarrow.parquet as pq
import pytest
from conftest import REPO

from pocketwatcher.backtest.run import run_backtest
from pocketwatcher.triggers.config import DEFAULT_TRIGGERS, load_triggers

NOTEBOOKS = REPO / "notebooks"


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    """Six simulated minutes: enough for alerts of most triggers and a known 5m horizon."""
    from pocketwatcher.sim import simulate
    from pocketwatcher.store.parquet import export_capture

    d = tmp_path_factory.mktemp("nb-sim")
    simulate(6.0, 5, d, progress=False)
    export_capture(d / "capture.pwcap", d / "export", progress=False)
    return d / "export"


def execute(name: str, tmp_path, **parameters):
    out = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters,
                               kernel_name="python3", cwd=str(tmp_path), progress_bar=False)
    return nbformat.read(out, as_version=4)


def outputs(nb, kind: str) -> list:
    """Every output of the executed notebook that carries ``kind`` ("image/png", "stdout", ...)."""
    found = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and o.name == kind:
                found.append(o.text)
            elif kind in o.get("data", {}):
                found.append(o.data[kind])
    return found


def test_backtest_report_writes_what_a_direct_backtest_gives(small_export, tmp_path):
    out = tmp_path / "report"
    nb = execute("backtest_report", tmp_path, SWAPS=str(small_export), OUT=str(out), LATENCY_SLOTS=3, WORKERS=1)

    direct = run_backtest(small_export, load_triggers(DEFAULT_TRIGGERS), latency_slots=3, workers=1)
    alerts = pq.read_table(out / "alerts.parquet").to_pylist()
    assert len(alerts) >= 10
    assert alerts == direct.alerts  # same rows, same order, same outcomes
    metrics = pq.read_table(out / "metrics.parquet").to_pylist()
    assert [m["trigger"] for m in metrics] == sorted({a["trigger"] for a in alerts})  # one row per trigger
    assert metrics == direct.metrics
    assert sum(m["alerts"] for m in metrics) == len(alerts)

    for fig in ("metrics", "returns", "alerts_per_hour"):
        png = (out / f"{fig}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, fig
    assert len(outputs(nb, "image/png")) == 3
    summary = "\n".join(outputs(nb, "text/markdown"))
    assert f"`{sys.executable}`" in summary, "the kernel should be the Python running papermill"
    assert f"{len(alerts):,} alerts" in "".join(outputs(nb, "stdout"))
    table = "".join(outputs(nb, "text/html"))
    for t in load_triggers(DEFAULT_TRIGGERS).enabled:  # the table lists every trigger, fired or not
        assert f"<th>{t.name}</th>" in table


def test_tune_triggers_simulates_sweeps_and_writes_the_threshold_back(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temp folders (simulated swaps, backtest)
    written = tmp_path / "tuned.toml"
    nb = execute("tune_triggers", tmp_path, SWAPS="", SIM_MINUTES=2.0, SEED=7, CHOSEN=16, WRITE_TO=str(written),
                 SWEEP_TRIGGER="buyer_burst", SWEEP_FEATURE="unique_buyers_60s")

    stdout = "".join(outputs(nb, "stdout"))
    assert "same ids as the backtest" in stdout  # the notebook's own parity assertion ran
    assert len(outputs(nb, "image/png")) == 2  # per-trigger metrics, then the sweep
    sweep_plot_cell = next(c for c in nb.cells if "axvline(chosen" in c.source)
    assert any("image/png" in o.get("data", {}) for o in sweep_plot_cell.outputs)

    before, after = load_triggers(DEFAULT_TRIGGERS), load_triggers(written)
    old, new = before.get("buyer_burst"), after.get("buyer_burst")
    assert new.version == old.version + 1
    assert new.when == re.sub(r"unique_buyers_60s >= \d+", "unique_buyers_60s >= 16", old.when)
    assert new.when != old.when
    others = [(t.name, t.version, t.when) for t in before if t.name != "buyer_burst"]
    assert [(t.name, t.version, t.when) for t in after if t.name != "buyer_burst"] == others
    changed = [(a, b) for a, b in zip(DEFAULT_TRIGGERS.read_text().splitlines(), written.read_text().splitlines(),
                                      strict=True) if a != b]
    assert len(changed) == 2, changed  # the version line and the when line; comments and layout kept
    m = re.search(r"(\d+) alerts over these swaps \(was (\d+) at 12\)", stdout)
    assert m and int(m.group(1)) <= int(m.group(2))  # a stricter threshold never fires more
    assert list(tmp_path.glob("pocketwatcher-sim-*/export/swaps/*.parquet"))
