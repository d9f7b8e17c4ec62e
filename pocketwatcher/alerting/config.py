"""Channels and routes: the ``[channels.*]``, ``[routes]`` and ``[dispatcher]`` tables of
``pocketwatcher.toml``, plus the channels a container sets from the environment alone.

```toml
[channels.alpha]                  # a channel's name is what triggers and routes say
kind = "discord"
webhook_url_env = "ALPHA_WEBHOOK" # or webhook_url_file = "/run/secrets/alpha_webhook"

[channels.tg]
kind = "telegram"
bot_token_env = "TG_TOKEN"        # or bot_token_file
chat_id = -1001234567890          # or chat_id_env
api_base = "https://api.telegram.org"

[channels.hook]
kind = "webhook"
url_env = "HOOK_URL"

[channels.log]
kind = "console"
path = "alerts.jsonl"             # no path: standard output
format = "jsonl"                  # or "text"

[routes]                          # added to a trigger's own `channels`
"*" = ["log"]
buyer_burst = ["alpha", "tg"]
```

Every channel also takes ``timeout_s`` (10), ``max_attempts`` (5: failures before dead),
``max_rate_limited`` (20: 429s before dead), ``backoff_base_s`` (1), ``backoff_max_s``
(60), ``concurrency`` (2 requests in flight) and ``rate`` (a list of ``{count, per_s}``
windows; left out: the kind's documented limits; ``[]``: no pacing).

Secrets never live in the file: only the name of an environment variable or of a file
holding them, so the file can be committed and shown. A named variable or file that is
missing is an error at load, naming the channel and the variable: better to refuse to
start than to drop alerts. From the environment alone: ``DISCORD_WEBHOOK_URL`` gives a
``discord`` channel, ``TELEGRAM_BOT_TOKEN`` + ``TELEGRAM_CHAT_ID`` (+ ``TELEGRAM_API_BASE``)
a ``telegram`` one, unless the file defines those names; a ``console`` channel always
exists. Unknown keys are errors that name the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .redact import Secret

TELEGRAM_API = "https://api.telegram.org"
ChannelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]


class AlertingConfigError(ValueError):
    """The alerting part of the config is wrong; the message names the file, key and fix."""


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    count: Annotated[int, Field(ge=1)]
    per_s: Annotated[float, Field(gt=0)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    max_attempts: Annotated[int, Field(ge=1)] = 5
    max_rate_limited: Annotated[int, Field(ge=1)] = 20
    backoff_base_s: Annotated[float, Field(ge=0)] = 1.0
    backoff_max_s: Annotated[float, Field(ge=0)] = 60.0
    concurrency: Annotated[int, Field(ge=1, le=64)] = 2
    rate: list[RateLimit] | None = None


class DiscordSettings(_Settings):
    kind: Literal["discord"]
    webhook_url_env: str | None = None
    webhook_url_file: Path | None = None
    api_base: str | None = None  # e.g. a proxy: "https://proxy.example/api" replaces "https://discord.com/api"
    username: str | None = None
    avatar_url: str | None = None


class TelegramSettings(_Settings):
    kind: Literal["telegram"]
    bot_token_env: str | None = None
    bot_token_file: Path | None = None
    chat_id: int | str | None = None
    chat_id_env: str | None = None
    api_base: str = TELEGRAM_API
    message_thread_id: int | None = None
    disable_notification: bool = False


class WebhookSettings(_Settings):
    kind: Literal["webhook"]
    url_env: str | None = None
    url_file: Path | None = None


class ConsoleSettings(_Settings):
    kind: Literal["console"]
    path: Path | None = None
    format: Literal["text", "jsonl"] = "text"


ChannelSection = Annotated[DiscordSettings | TelegramSettings | WebhookSettings | ConsoleSettings,
                           Field(discriminator="kind")]


class DispatcherSection(BaseModel):
    """How the dispatcher claims work: a claim lasts ``lease_s`` (renewed while sending), so a
    crashed dispatcher's deliveries are taken over that long after it died."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lease_s: Annotated[float, Field(gt=0)] = 60.0
    poll_s: Annotated[float, Field(gt=0)] = 1.0


class AlertingSection(BaseModel):
    """The tables this package owns in ``pocketwatcher.toml`` (the runner's model embeds them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channels: dict[ChannelName, ChannelSection] = {}
    routes: dict[str, list[ChannelName]] = {}
    dispatcher: DispatcherSection = DispatcherSection()


@dataclass(frozen=True)
class ResolvedChannel:
    """A channel with its secrets read: ``secret`` is the webhook URL or bot token."""

    name: str
    settings: DiscordSettings | TelegramSettings | WebhookSettings | ConsoleSettings
    secret: Secret | None = None
    chat_id: int | str | None = None

    @property
    def kind(self) -> str:
        return self.settings.kind


@dataclass(frozen=True)
class AlertingConfig:
    channels: dict[str, ResolvedChannel]
    routes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dispatcher: DispatcherSection = DispatcherSection()
    switched_off: tuple[str, ...] = ()  # channels present in the file with enabled = false

    def channels_for(self, trigger: str, trigger_channels: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Channel names an alert of ``trigger`` is delivered to: the trigger's own, then
        ``routes[trigger]``, then ``routes["*"]``, each once (routes add, never remove)."""
        names = [*trigger_channels, *self.routes.get(trigger, ()), *self.routes.get("*", ())]
        return list(dict.fromkeys(names))


def _read_secret(name: str, what: str, env_key: str | None, file_key: Path | None,
                 env: Mapping[str, str], env_field: str, file_field: str) -> Secret:
    if (env_key is None) == (file_key is None):
        raise AlertingConfigError(f"channels.{name}: set exactly one of {env_field} (the name of an "
                                  f"environment variable holding the {what}) or {file_field}")
    if env_key is not None:
        value = env.get(env_key, "").strip()
        if not value:
            raise AlertingConfigError(f"channels.{name}.{env_field}: environment variable {env_key} is "
                                      f"not set; export the {what} in it")
        return Secret(value)
    try:
        value = Path(file_key).read_text().strip()
    except OSError as e:
        raise AlertingConfigError(f"channels.{name}.{file_field}: cannot read {file_key} "
                                  f"({e.strerror}); it should hold the {what}") from None
    if not value:
        raise AlertingConfigError(f"channels.{name}.{file_field}: {file_key} is empty; it should hold the {what}")
    return Secret(value)


def _resolve(name: str, s, env: Mapping[str, str]) -> ResolvedChannel:
    if isinstance(s, DiscordSettings):
        secret = _read_secret(name, "webhook URL", s.webhook_url_env, s.webhook_url_file, env,
                              "webhook_url_env", "webhook_url_file")
        if not re.search(r"/webhooks/\d+/[^/?#]+", secret.get()):
            raise AlertingConfigError(f"channels.{name}: the webhook URL does not look like a Discord "
                                      "webhook (…/api/webhooks/<id>/<token>); copy it from the channel settings")
        return ResolvedChannel(name, s, secret)
    if isinstance(s, TelegramSettings):
        secret = _read_secret(name, "bot token", s.bot_token_env, s.bot_token_file, env,
                              "bot_token_env", "bot_token_file")
        chat = s.chat_id
        if s.chat_id_env is not None:
            chat = env.get(s.chat_id_env, "").strip() or None
            if chat is None:
                raise AlertingConfigError(f"channels.{name}.chat_id_env: environment variable "
                                          f"{s.chat_id_env} is not set; export the chat id in it")
        if chat is None:
            raise AlertingConfigError(f"channels.{name}: set chat_id (or chat_id_env): the chat, group "
                                      "or @channel the bot posts to")
        return ResolvedChannel(name, s, secret, chat_id=_chat_id(chat))
    if isinstance(s, WebhookSettings):
        return ResolvedChannel(name, s, _read_secret(name, "webhook URL", s.url_env, s.url_file, env,
                                                     "url_env", "url_file"))
    return ResolvedChannel(name, s)


def _chat_id(value: int | str) -> int | str:
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _env_channels(env: Mapping[str, str]) -> dict[str, ResolvedChannel]:
    out: dict[str, ResolvedChannel] = {}
    url = env.get("DISCORD_WEBHOOK_URL", "").strip()
    if url:
        out["discord"] = _resolve("discord", DiscordSettings(kind="discord", webhook_url_env="DISCORD_WEBHOOK_URL"),
                                  env)
    token, chat = env.get("TELEGRAM_BOT_TOKEN", "").strip(), env.get("TELEGRAM_CHAT_ID", "").strip()
    if bool(token) != bool(chat):
        missing = "TELEGRAM_CHAT_ID" if token else "TELEGRAM_BOT_TOKEN"
        raise AlertingConfigError(f"environment: {missing} is not set; a Telegram channel from the "
                                  "environment needs both TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID")
    if token:
        base = env.get("TELEGRAM_API_BASE", "").strip() or TELEGRAM_API
        s = TelegramSettings(kind="telegram", bot_token_env="TELEGRAM_BOT_TOKEN",
                            chat_id_env="TELEGRAM_CHAT_ID", api_base=base)
        out["telegram"] = _resolve("telegram", s, env)
    return out


def _problem(e: ValidationError) -> str:
    """``channels.alpha.timeout_s: Input should be greater than 0`` (the union's tag left out)."""
    lines = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"]]
        if len(loc) > 2 and loc[0] == "channels" and loc[2] in ("discord", "telegram", "webhook", "console"):
            del loc[2]
        lines.append(f"{'.'.join(loc)}: {err['msg']}")
    return "; ".join(lines)


def parse_alerting(data: Mapping, env: Mapping[str, str] | None = None, source: str = "<config>") -> AlertingConfig:
    """Validate the alerting tables of an already-parsed config (other top-level tables are ignored)."""
    env = os.environ if env is None else env
    mine = {k: data[k] for k in ("channels", "routes", "dispatcher") if k in data}
    try:
        section = AlertingSection.model_validate(mine)
    except ValidationError as e:
        raise AlertingConfigError(f"{source}: {_problem(e)}") from None
    channels = _env_channels(env)
    off = []
    try:
        for name, s in section.channels.items():
            if s.enabled:
                channels[name] = _resolve(name, s, env)
            else:
                channels.pop(name, None)
                off.append(name)
    except AlertingConfigError as e:
        raise AlertingConfigError(f"{source}: {e}") from None
    if "console" not in off:
        channels.setdefault("console", ResolvedChannel("console", ConsoleSettings(kind="console")))
    return AlertingConfig(channels, {k: tuple(v) for k, v in section.routes.items()}, section.dispatcher,
                          tuple(off))


def load_alerting_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> AlertingConfig:
    """Channels, routes and dispatcher settings from ``path`` (None: the environment alone)."""
    env = os.environ if env is None else env
    if path is None:
        return parse_alerting({}, env, "environment")
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise AlertingConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    except tomllib.TOMLDecodeError as e:
        raise AlertingConfigError(f"{path}: TOML syntax: {e}") from None
    return parse_alerting(data, env, str(path))


def default_config_path(env: Mapping[str, str] | None = None) -> Path | None:
    """``$POCKETWATCHER_CONFIG``, else ``./pocketwatcher.toml`` when it exists, else None."""
    env = os.environ if env is None else env
    if env.get("POCKETWATCHER_CONFIG"):
        return Path(env["POCKETWATCHER_CONFIG"])
    local = Path("pocketwatcher.toml")
    return local if local.exists() else None
