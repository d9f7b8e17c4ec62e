"""Kill the dispatcher mid-run (SIGKILL: no cleanup at all), restart it: no alert is lost.

The dispatcher runs as a real process (``alerts_dispatch``, what ``pocketwatcher alerts
dispatch`` runs) against the fake chat server. A kill can only duplicate the requests
that were in flight (answered, not yet recorded): at most ``concurrency`` per channel.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from alerting_helpers import db_fixture, deliveries, fake_fixture, seed  # noqa: F401 (register fixtures)

from pocketwatcher.alerting import Dispatcher, load_alerting_config
from pocketwatcher.alerting.testing import Reply

pytestmark = pytest.mark.integration
CONCURRENCY = 2
CONFIG = f"""
[channels.alpha]
kind = "discord"
webhook_url_env = "ALPHA_HOOK"
rate = []
concurrency = {CONCURRENCY}
timeout_s = 2
backoff_base_s = 0.05
backoff_max_s = 0.2

[channels.hook]
kind = "webhook"
url_env = "HOOK_URL"
rate = []
concurrency = {CONCURRENCY}
timeout_s = 2

[dispatcher]
lease_s = 1.0
poll_s = 0.05
"""


def start(db: str, config, env: dict) -> subprocess.Popen:
    code = "import sys; from pocketwatcher.alerting.cli import alerts_dispatch; alerts_dispatch(sys.argv[1], sys.argv[2])"
    return subprocess.Popen([sys.executable, "-c", code, db, str(config)], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_requests(fake, n: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.requests) < n:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, f"only {len(fake.requests)} requests"
        time.sleep(0.01)


@pytest.fixture
def setup(db, fake, tmp_path):
    path = tmp_path / "pocketwatcher.toml"
    path.write_text(CONFIG)
    env = {"ALPHA_HOOK": fake.discord_url(), "HOOK_URL": fake.url + "/hook"}
    fake.policy = lambda req: Reply(delay=0.02)
    ids = asyncio.run(seed(db, 80, ["alpha", "hook"]))
    return path, env, ids


def test_killed_twice_then_restarted_loses_nothing(db, fake, setup):
    path, env, ids = setup
    claimed_at_kill = set()
    for upto in (40, 100):
        proc = start(db, path, env)
        try:
            wait_for_requests(fake, upto, proc)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        rows = deliveries(db)
        states = {r["state"] for r in rows.values()}
        assert "sent" in states and ({"pending", "sending"} & states), "the kill must land mid-run"
        claimed_at_kill |= {key for key, r in rows.items() if r["state"] == "sending"}

    cfg = load_alerting_config(path, env=env)
    assert asyncio.run(Dispatcher(db, cfg).run_until_idle(ids, timeout=30))
    rows = deliveries(db)
    assert len(rows) == 160 and {r["state"] for r in rows.values()} == {"sent"}
    accepted = Counter((r.alert_id, {"discord": "alpha", "webhook": "hook"}[r.service])
                       for r in fake.requests if r.ok)
    assert set(accepted) == set(rows)  # every delivery at least once
    duplicated = {key for key, n in accepted.items() if n > 1}
    assert duplicated <= claimed_at_kill  # only requests in flight when the process died
    assert sum(accepted.values()) - 160 <= 2 * 2 * CONCURRENCY  # two kills x two channels x in flight


def test_sigterm_drains_in_flight_work_and_exits_0(db, fake, setup):
    path, env, ids = setup
    proc = start(db, path, env)
    try:
        wait_for_requests(fake, 30, proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "sending" not in {r["state"] for r in deliveries(db).values()}  # nothing left claimed

    cfg = load_alerting_config(path, env=env)
    assert asyncio.run(Dispatcher(db, cfg).run_until_idle(ids, timeout=30))
    assert fake.delivered() == {i: 2 for i in ids}  # a clean stop duplicates nothing
