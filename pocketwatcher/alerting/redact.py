"""Keep webhook URLs and bot tokens out of logs, errors, the database and the CLI.

A Discord webhook URL *is* its credential, and a Telegram bot token sits in the request
path, so anything that prints a URL (httpx's own request log, an exception message)
would leak them. Secrets are wrapped in ``Secret`` (whose repr and str are masked), every
error text is passed through ``redact`` before it is stored or shown, and a filter on
the ``httpx``/``httpcore`` loggers masks them in third-party log lines too.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
# Shapes that are secret whatever their value: Discord webhook paths and Telegram bot paths.
_SHAPES = (
    (re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_.\-]+"), r"\1" + MASK),
    (re.compile(r"/bot\d+:[A-Za-z0-9_\-]+"), "/bot" + MASK),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_\-]{30,}\b"), MASK),
)
_known: set[str] = set()
_lock = threading.Lock()


class Secret:
    """A secret string that does not show itself by accident; ``get()`` reveals it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def register(value: str) -> None:
    """Remember a secret (and its URL-meaningful parts) so ``redact`` masks it everywhere."""
    if not value or len(value) < 6:
        return
    with _lock:
        _known.add(value)
        m = re.search(r"/webhooks/\d+/([^/?#]+)", value)
        if m:
            _known.add(m.group(1))
    _install_log_filter()


def redact(text: object, extra: tuple[str, ...] | list[str] = ()) -> str:
    """``text`` with every known secret and secret-shaped substring masked."""
    out = str(text)
    with _lock:
        known = sorted(_known | set(extra), key=len, reverse=True)
    for s in known:
        if s and s in out:
            out = out.replace(s, MASK)
    for pattern, repl in _SHAPES:
        out = pattern.sub(repl, out)
    return out


class _RedactingFilter(logging.Filter):
    """Masks the message and any traceback (formatted here, so handlers reuse the clean text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_filter = _RedactingFilter()


def get_logger(name: str) -> logging.Logger:
    """A logger whose records are redacted (filters on a parent do not apply to children)."""
    logger = logging.getLogger(name)
    if _filter not in logger.filters:
        logger.addFilter(_filter)
    return logger


def _install_log_filter() -> None:
    for name in ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy"):
        get_logger(name)
