"""Alert channels: one module per kind, all behind ``Channel`` (``base.py``).

Adding a kind: write its module with a ``Channel`` subclass, add its settings model to
``config.py`` and its class to ``KINDS`` below.
"""

from __future__ import annotations

from ..config import ResolvedChannel
from ..pacing import Pacer
from .base import Channel, HttpChannel, Outcome
from .console import ConsoleChannel
from .discord import DiscordChannel
from .telegram import TelegramChannel
from .webhook import WebhookChannel

KINDS: dict[str, type[Channel]] = {c.kind: c for c in (DiscordChannel, TelegramChannel, WebhookChannel,
                                                        ConsoleChannel)}


def make_channel(resolved: ResolvedChannel, pacer: Pacer) -> Channel:
    return KINDS[resolved.kind](resolved, pacer)


__all__ = ["KINDS", "Channel", "ConsoleChannel", "DiscordChannel", "HttpChannel", "Outcome", "TelegramChannel",
           "WebhookChannel", "make_channel"]
