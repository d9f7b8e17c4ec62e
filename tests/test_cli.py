"""The command line, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import LOCAL_TX, REPO


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "pocketwatcher", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_help_lists_subcommands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("parse", "demo"):
        assert cmd in out.stdout


def test_parse_jsonl_gives_one_object_per_swap():
    f = LOCAL_TX / "0xjeffro-tx-parser__pumpfun_buy_bundle.json"
    out = run("parse", "--jsonl", str(f))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 4
    for r in rows:
        assert r["program"] == "pumpfun" and r["side"] == "buy"
        assert isinstance(r["token_amount"], int) and isinstance(r["quote_amount"], int)
        for key in ("signature", "slot", "block_time", "ix", "pool", "trader", "mint", "token_decimals",
                    "quote_mint", "price", "virtual_sol_reserves", "virtual_token_reserves", "mcap_sol"):
            assert key in r


def test_parse_table_and_bad_file_keeps_going(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    f = LOCAL_TX / "0xjeffro-tx-parser__raydiumLiquidityPoolV4_swap_1.json"
    out = run("parse", str(bad), str(f))
    assert out.returncode == 0
    assert "bad.json" in out.stderr and "line 1" in out.stderr  # names the file and the place
    assert "raydium_amm_v4" in out.stdout


def test_sample_parse_command():
    out = run("parse", str(REPO / "data" / "sample_tx" / "0xjeffro-tx-parser__pumpfun_buy_bundle.json"))
    assert out.returncode == 0, out.stderr
    assert "pumpfun" in out.stdout


def test_demo_runs_the_full_pipeline_on_embedded_servers(tmp_path):
    """The README's first command: embedded Redis + PostgreSQL, replay server, runner, alerts."""
    import tempfile

    state = Path(tempfile.mkdtemp(prefix="pwdemo-", dir="/tmp"))  # short path: unix sockets
    out = run("demo", "--speed", "max", "--state-dir", str(state))
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [ln for ln in out.stdout.splitlines() if "pump" in ln and ("mcap" in ln or "=" in ln)]
    assert len(lines) >= 20, out.stdout[-3000:]
    assert "stopped cleanly" in out.stdout
    # nothing left running: the embedded servers were stopped
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(state) not in ps


def test_simulate_shards_inline_and_a_bad_shard_count(tmp_path):
    out = run("simulate", "--minutes", "0.5", "--seed", "3", "--shards", "1", "--inline", "--level", "3",
              "--out", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.splitlines()[-1])
    assert summary["shards"] == 1 and summary["transactions"] > 50
    assert (tmp_path / "a" / "capture.pwcap").stat().st_size > 0 and (tmp_path / "a" / "truth" / "trades.parquet").exists()
    bad = run("simulate", "--minutes", "0.5", "--shards", "9", "--out", str(tmp_path / "b"))
    assert bad.returncode == 2 and "shards" in bad.stderr and "4" in bad.stderr
    assert not (tmp_path / "b").exists()


def test_replay_capture_and_export_swaps_from_the_command_line(tmp_path):
    """`replay` serves the sample with an x-token; `capture` records from it (a wrong token
    is refused with exit 2, the token kept out of the message, no file left); `export-swaps`
    turns the recording into Parquet; Ctrl-C stops the replay cleanly."""
    import re
    import signal
    import time

    env = {**os.environ, "COLUMNS": "200"}
    log = (tmp_path / "replay.log").open("w+")  # a file, not a pipe: nothing blocks on a full pipe
    srv = subprocess.Popen([sys.executable, "-m", "pocketwatcher", "replay", str(REPO / "data" / "sample.pwcap"),
                            "--port", "0", "--x-token", "cli-test-token"], cwd=REPO, env=env,
                           stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"serving (http://127\.0\.0\.1:\d+)", (tmp_path / "replay.log").read_text())):
            assert srv.poll() is None and time.monotonic() < deadline, (tmp_path / "replay.log").read_text()
            time.sleep(0.1)
        endpoint = found.group(1)
        bad = run("capture", "--endpoint", endpoint, "--x-token", "wrong-token-xyz", "--out",
                  str(tmp_path / "bad.pwcap"), "--duration", "10")
        assert bad.returncode == 2 and "wrong-token-xyz" not in bad.stderr + bad.stdout
        assert "x-token" in bad.stderr.lower() or "auth" in bad.stderr.lower(), bad.stderr
        assert not (tmp_path / "bad.pwcap").exists()
        rec = run("capture", "--endpoint", endpoint, "--x-token", "cli-test-token", "--out",
                  str(tmp_path / "rec.pwcap"), "--max-updates", "1500")
        assert rec.returncode == 0, rec.stderr
        assert "1500 updates written" in rec.stdout
        exp = run("export-swaps", str(tmp_path / "rec.pwcap"), "--out", str(tmp_path / "out"))
        assert exp.returncode == 0, exp.stderr
        summary = json.loads(exp.stdout.splitlines()[-1])
        assert summary["updates"] == 1500 and summary["swaps"] > 100 and summary["truncated_capture"] is False
        assert list((tmp_path / "out" / "swaps").glob("*.parquet"))
        missing = run("export-swaps", str(tmp_path / "nope.pwcap"), "--out", str(tmp_path / "o2"))
        assert missing.returncode == 2 and "nope.pwcap" in missing.stderr
    finally:
        srv.send_signal(signal.SIGINT)
        try:
            code = srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            raise
        log.close()
    assert code == 0 and "cli-test-token" not in (tmp_path / "replay.log").read_text()
