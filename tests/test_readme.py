"""The README's two set-up commands stay true: CI runs the test command unchanged."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _shell_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_ci_runs_the_readme_test_command_unchanged():
    blocks = _shell_blocks()
    assert len(blocks) >= 2
    test_cmd = blocks[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci, "the README's second shell block must appear verbatim in .ci/run"


def test_first_block_runs_the_demo():
    assert "pocketwatcher demo" in _shell_blocks()[0]
