"""``python -m runner``: the same as ``pocketwatcher run``."""

from pocketwatcher.cli import app

app(["run", *__import__("sys").argv[1:]])
