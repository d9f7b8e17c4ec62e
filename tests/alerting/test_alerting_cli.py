"""``pocketwatcher alerts list | retry-dead | send-test``: from DATABASE_URL and the environment alone."""

from __future__ import annotations

import json

import pytest
from alerting_helpers import DISCORD_TOKEN, TELEGRAM_TOKEN, fake_fixture  # noqa: F401 (registers `fake`)
from typer.testing import CliRunner

from pocketwatcher.alerting.cli import alerts_app, alerts_list, alerts_retry_dead, alerts_send_test
from pocketwatcher.alerting.testing import Reply

pytestmark = pytest.mark.integration


@pytest.fixture
def env(pg_url, fake, monkeypatch, tmp_path):
    """A container-style environment: a fresh (unmigrated) database and env-only channels."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("POCKETWATCHER_CONFIG", raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_url)
    monkeypatch.setenv("DISCORD_WEBHOOK_URL", fake.discord_url(token=DISCORD_TOKEN))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TELEGRAM_TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "-100777")
    monkeypatch.setenv("TELEGRAM_API_BASE", fake.url)
    return pg_url


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_send_test_delivers_and_prints_a_json_summary_last(env, fake, capsys):
    fake.script("discord", Reply(502))
    summary = alerts_send_test(count=2)
    out = capsys.readouterr().out
    assert last_json(out) == summary
    assert summary["alerts"] == 2 and summary["seconds"] > 0
    assert summary["channels"] == {"console": {"sent": 2, "dead": 0, "attempts": 2},
                                   "discord": {"sent": 2, "dead": 0, "attempts": 3},
                                   "telegram": {"sent": 2, "dead": 0, "attempts": 2}}
    assert out.count("send_test Pocketwatcher test #") == 2  # the console channel's lines
    assert fake.delivered() == {a: 2 for a in fake.delivered()} and len(fake.delivered()) == 2
    assert DISCORD_TOKEN not in out and TELEGRAM_TOKEN not in out


def test_send_test_through_the_command_line_one_channel(env, fake):
    result = CliRunner().invoke(alerts_app, ["send-test", "--count", "3", "--channel", "discord"])
    assert result.exit_code == 0, result.output
    summary = last_json(result.output)
    assert summary["channels"] == {"discord": {"sent": 3, "dead": 0, "attempts": 3}}
    assert len(fake.of("discord")) == 3 and not fake.of("telegram")


def test_a_dead_channel_is_reported_without_its_url_and_exits_1(env, fake):
    fake.policy = lambda req: Reply(404, {"message": "Unknown Webhook", "code": 10015})
    result = CliRunner().invoke(alerts_app, ["send-test", "--count", "3", "--channel", "discord"])
    assert result.exit_code == 1
    summary = last_json(result.output)
    assert summary["channels"]["discord"]["dead"] == 3 and summary["channels"]["discord"]["attempts"] <= 2
    assert any("channel 'discord' disabled" in r for r in summary["channels"]["discord"]["dead_reasons"])
    assert summary["notices"] and DISCORD_TOKEN not in result.output


def test_list_and_retry_dead(env, fake, capsys):
    fake.script("discord", Reply(400, {"message": "Invalid Form Body", "code": 50035}))
    alerts_send_test(count=2, channel="discord")
    capsys.readouterr()
    rows = alerts_list(limit=10)
    out = capsys.readouterr().out
    assert len(rows) == 2 and all(r["id"][:12] in out for r in rows)
    states = sorted(d["state"] for r in rows for d in r["deliveries"])
    assert states == ["dead", "sent"] and "discord: dead" in out
    assert alerts_retry_dead(channel="discord") == 1
    assert alerts_retry_dead(channel="discord") == 0
    result = CliRunner().invoke(alerts_app, ["retry-dead"])
    assert result.exit_code == 0 and "0 dead deliveries requeued" in result.output
    result = CliRunner().invoke(alerts_app, ["list", "--json", "-n", "1"])
    assert result.exit_code == 0 and json.loads(result.output.splitlines()[0])["deliveries"]


def test_errors_say_what_to_do(env, monkeypatch):
    with pytest.raises(SystemExit, match="channel 'nope' is not configured; configured: console, discord, telegram"):
        alerts_send_test(count=1, channel="nope")
    monkeypatch.delenv("DATABASE_URL")
    with pytest.raises(SystemExit, match="DATABASE_URL is not set"):
        alerts_list()
