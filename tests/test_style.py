"""The code style is checked, not discussed: ``ruff format`` leaves every file as it is and
``ruff check`` finds nothing, with the rule set in pyproject.toml ([tool.ruff])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "check"])
def test_ruff_finds_nothing_to_change(command):
    argv = [sys.executable, "-m", "ruff", *command, "--no-cache", "."]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ruff {' '.join(command)}:\n{done.stdout}{done.stderr}"
