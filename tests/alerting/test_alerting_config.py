"""Channel config: the TOML tables, the environment-only channels, secrets and their redaction."""

from __future__ import annotations

import pytest

from pocketwatcher.alerting.channels.discord import webhook_url
from pocketwatcher.alerting.config import (
    AlertingConfigError,
    DiscordSettings,
    TelegramSettings,
    load_alerting_config,
)
from pocketwatcher.alerting.redact import redact

HOOK = "https://discord.com/api/webhooks/1234567890/SuperSecretWebhookToken_abcdefgh"
TOKEN = "7000000001:AAFsecretTelegramBotToken-ABCDEFGHIJK"

FILE = """
[runner]                      # other tables belong to the runner and are ignored here
partitions = 4

[channels.alpha]
kind = "discord"
webhook_url_env = "ALPHA_HOOK"
timeout_s = 3
rate = [{count = 2, per_s = 1.0}]

[channels.tg]
kind = "telegram"
bot_token_file = "{token_file}"
chat_id = -1001234
api_base = "http://127.0.0.1:9/tg"

[channels.hook]
kind = "webhook"
url_env = "HOOK_URL"

[channels.log]
kind = "console"
path = "alerts.jsonl"
format = "jsonl"

[channels.old]
kind = "discord"
enabled = false
webhook_url_env = "UNSET_VARIABLE"

[routes]
"*" = ["log"]
buyer_burst = ["alpha", "tg"]

[dispatcher]
lease_s = 30
"""


def write(tmp_path, text: str, **fmt):
    token_file = tmp_path / "tg_token"
    token_file.write_text(TOKEN + "\n")
    path = tmp_path / "pocketwatcher.toml"
    path.write_text(text.replace("{token_file}", str(token_file)))
    return path


def test_file_channels_routes_and_secrets(tmp_path):
    cfg = load_alerting_config(write(tmp_path, FILE), env={"ALPHA_HOOK": HOOK, "HOOK_URL": "http://h/x"})
    assert sorted(cfg.channels) == ["alpha", "console", "hook", "log", "tg"]
    alpha, tg = cfg.channels["alpha"], cfg.channels["tg"]
    assert alpha.secret.get() == HOOK and alpha.settings.timeout_s == 3
    assert tg.secret.get() == TOKEN and tg.chat_id == -1001234 and tg.settings.api_base == "http://127.0.0.1:9/tg"
    assert cfg.switched_off == ("old",)
    assert cfg.dispatcher.lease_s == 30
    assert cfg.channels_for("buyer_burst", ["console", "alpha"]) == ["console", "alpha", "tg", "log"]
    assert cfg.channels_for("volume_spike", []) == ["log"]
    shown = repr(cfg) + str(cfg)
    assert HOOK not in shown and TOKEN not in shown and "SuperSecret" not in shown


def test_environment_alone_gives_discord_telegram_and_console():
    env = {"DISCORD_WEBHOOK_URL": HOOK, "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "-1009",
           "TELEGRAM_API_BASE": "http://127.0.0.1:8081"}
    cfg = load_alerting_config(None, env=env)
    assert sorted(cfg.channels) == ["console", "discord", "telegram"]
    assert cfg.channels["telegram"].chat_id == -1009
    assert cfg.channels["telegram"].settings.api_base == "http://127.0.0.1:8081"
    assert sorted(load_alerting_config(None, env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "@news"})
                  .channels) == ["console", "telegram"]
    assert list(load_alerting_config(None, env={}).channels) == ["console"]
    assert load_alerting_config(None, env={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "@news"}).channels[
        "telegram"].settings.api_base == "https://api.telegram.org"


def test_defaults_are_10s_timeout_and_at_least_5_attempts():
    for s in (DiscordSettings(kind="discord"), TelegramSettings(kind="telegram")):
        assert s.timeout_s == 10 and s.max_attempts >= 5 and s.rate is None


@pytest.mark.parametrize(("text", "env", "expect"), [
    ('[channels.a]\nkind = "discord"\nwebhook_urll_env = "X"', {}, "channels.a.webhook_urll_env: Extra inputs"),
    ('[channels.a]\nkind = "slack"', {}, "channels.a"),
    ('[channels.a]\nkind = "discord"\ntimeout_s = 0', {}, "channels.a.timeout_s"),
    ('[channels.a]\nkind = "discord"\nwebhook_url_env = "NOPE"', {}, "environment variable NOPE is not set"),
    ('[channels.a]\nkind = "discord"', {}, "set exactly one of webhook_url_env"),
    ('[channels.a]\nkind = "telegram"\nbot_token_env = "T"', {"T": TOKEN}, "set chat_id"),
    ('[channels.a]\nkind = "webhook"\nurl_file = "/nonexistent/secret"', {}, "cannot read /nonexistent/secret"),
    ('[channels.a]\nkind = "discord"\nwebhook_url_env = "H"', {"H": "https://example.com/x"}, "Discord webhook"),
    ('[routes]\nx = "alpha"', {}, "routes.x"),
    ('[channels.a\nkind = 1', {}, "TOML syntax"),
])
def test_errors_name_the_key_and_the_fix(tmp_path, text, env, expect):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(AlertingConfigError) as e:
        load_alerting_config(path, env=env)
    assert expect in str(e.value) and str(path) in str(e.value)


def test_half_a_telegram_environment_is_an_error():
    with pytest.raises(AlertingConfigError, match="TELEGRAM_CHAT_ID is not set"):
        load_alerting_config(None, env={"TELEGRAM_BOT_TOKEN": TOKEN})


def test_secrets_are_redacted_in_any_text():
    load_alerting_config(None, env={"DISCORD_WEBHOOK_URL": HOOK, "TELEGRAM_BOT_TOKEN": TOKEN,
                                    "TELEGRAM_CHAT_ID": "1"})
    text = f"POST {HOOK}?wait=true failed; POST https://api.telegram.org/bot{TOKEN}/sendMessage"
    out = redact(text)
    assert "SuperSecretWebhookToken" not in out and TOKEN not in out and "AAFsecret" not in out
    # shapes are masked even for secrets never registered
    other = redact("https://discord.com/api/webhooks/42/unregisteredToken123 /bot123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg")
    assert "unregisteredToken123" not in other and "ABCDEFGHIJKLMNOPQRSTUVWXYZ" not in other


def test_discord_url_is_pinned_to_v10_with_wait():
    url, wid = webhook_url(HOOK)
    assert wid == "1234567890"
    assert str(url) == "https://discord.com/api/v10/webhooks/1234567890/SuperSecretWebhookToken_abcdefgh?wait=true"
    url, _ = webhook_url("https://discord.com/api/v9/webhooks/1/tok?thread_id=55")
    assert str(url) == "https://discord.com/api/v10/webhooks/1/tok?thread_id=55&wait=true"
    url, _ = webhook_url(HOOK, api_base="http://proxy.local/discord/api/v10")
    assert str(url).startswith("http://proxy.local/discord/api/v10/webhooks/1234567890/")


def test_tracebacks_in_logs_are_redacted_too(caplog):
    from pocketwatcher.alerting.redact import Secret, get_logger

    Secret("https://discord.com/api/webhooks/77/TracebackSecretToken999")
    log = get_logger("pocketwatcher.alerting.test")
    try:
        raise RuntimeError("POST https://discord.com/api/webhooks/77/TracebackSecretToken999 failed")
    except RuntimeError:
        log.exception("sending failed for %s", "https://discord.com/api/webhooks/77/TracebackSecretToken999")
    assert "RuntimeError" in caplog.text and "TracebackSecretToken999" not in caplog.text
