"""Console / file: one line per alert, human text or JSON Lines, for the demo and pipes.

It goes through the outbox like the others so the demo shows the same states, and a
file written here is an at-least-once log of alerts another tool can tail.
"""

from __future__ import annotations

import json
import sys

from ..config import ResolvedChannel
from ..pacing import Pacer
from ..render import AlertView, console_line, json_safe
from .base import Channel, Outcome


class ConsoleChannel(Channel):
    kind = "console"

    def __init__(self, resolved: ResolvedChannel, pacer: Pacer) -> None:
        super().__init__(resolved, pacer)
        self.path = self.settings.path
        self.jsonl = self.settings.format == "jsonl"
        self._file = None

    async def send(self, alert: AlertView) -> Outcome:
        line = (json.dumps(json_safe(alert.to_json()), ensure_ascii=False) if self.jsonl
                else console_line(alert))
        try:
            if self.path is None:
                out = sys.stdout
            else:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                out = self._file
            out.write(line + "\n")
            out.flush()
        except OSError as e:
            return Outcome("retry", None, f"cannot write to {self.path or 'standard output'}: {e.strerror}")
        return Outcome("sent")

    async def aclose(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
