"""Shared test helpers: where the fixture transactions live.

Fixtures whose licence allows it are copied under tests/fixtures/; the rest (and the
expected swaps) are read from ../shared beside the checkout, which CI always has.
Set POCKETWATCHER_SHARED to point elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("POCKETWATCHER_SHARED", REPO.parent / "shared"))
SHARED_TX = SHARED / "fixtures" / "tx"
LOCAL_TX = REPO / "tests" / "fixtures" / "tx"


def fixture_files() -> list[Path]:
    """Every fixture file, each name once (the shared copy when both exist)."""
    files: dict[str, Path] = {p.name: p for p in sorted(LOCAL_TX.glob("*.json"))}
    if SHARED_TX.is_dir():
        files.update({p.name: p for p in sorted(SHARED_TX.glob("*.json"))})
    return [files[k] for k in sorted(files)]


def expected_swaps() -> dict:
    path = SHARED / "fixtures" / "expected_dev.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need ../shared beside the checkout "
                    "(or POCKETWATCHER_SHARED)")
    return json.loads(path.read_text())
