"""`pocketwatcher report`: the report notebook rendered by papermill (and nbconvert), as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pyarrow.parquet as pq
from conftest import REPO

from pocketwatcher.backtest.run import run_backtest
from pocketwatcher.triggers.config import DEFAULT_TRIGGERS, load_triggers


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pocketwatcher", "report", *args], cwd=REPO,
                          env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300)


def test_report_simulates_and_renders_notebook_and_html(tmp_path):
    out = tmp_path / "r"
    res = run("--out", str(out), "--sim-minutes", "2", "--seed", "3", "--workers", "1")
    assert res.returncode == 0, res.stderr
    assert f"wrote {out / 'report.ipynb'}" in res.stdout and f"wrote {out / 'report.html'}" in res.stdout

    nb = nbformat.read(out / "report.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters == {
        "SWAPS": "", "TRIGGERS": str(DEFAULT_TRIGGERS), "OUT": str(out), "LATENCY_SLOTS": 2,
        "SIM_MINUTES": 2.0, "SEED": 3, "WORKERS": 1}
    html = (out / "report.html").read_text()
    assert html.count("data:image/png") >= 3 and "alerts per hour" in html.lower()
    # without --swaps the report simulated into OUT/simulated/: its alerts are that market's
    direct = run_backtest(out / "simulated" / "export", load_triggers(DEFAULT_TRIGGERS), workers=1)
    assert pq.read_table(out / "alerts.parquet").to_pylist() == direct.alerts
    assert len(direct.alerts) > 0


def test_report_names_a_missing_swaps_path_before_starting_a_kernel(tmp_path):
    res = run("--swaps", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r"))
    assert res.returncode == 2
    assert "nowhere" in res.stderr and "--swaps" in res.stderr
    assert not (tmp_path / "r").exists()
