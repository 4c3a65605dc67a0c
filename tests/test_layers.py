"""The layers hold: ``lint-imports`` checks the contract in ``pyproject.toml`` (function-level imports
included), the contract covers every folder of the package, and the process vocabulary keeps its
stored codes."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (the test extra)")
def test_import_contract_is_kept():
    out = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert f"Contracts: {len(contracts())} kept, 0 broken." in report


def test_every_folder_of_the_package_has_its_layer():
    (layers,) = [c["layers"] for c in contracts() if c["type"] == "layers"]
    named = {m.strip().removeprefix("recotrig.") for layer in layers for m in layer.split("|")}
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench", "docs"}
    assert folders == named, f"folders outside the layers contract: {folders - named}; gone: {named - folders}"


def test_process_codes_are_fixed():
    """Stored ``CrossingInfo.process`` codes keep their meaning: the numbers are written out, not
    enumerated, and every simulated process has one."""
    from recotrig.edm.trigger import PROCESS_CODES, SIGNALS, SM_COCKTAIL
    from recotrig.sim import premix

    assert PROCESS_CODES == {
        "zerobias": 0,
        "minbias": 1,
        "wlnu": 2,
        "zll": 3,
        "ttbar": 4,
        "ato4l": 5,
        "lq_btau": 6,
        "h0_tautau": 7,
        "hpm_taunu": 8,
    }
    assert set(premix.PROCESSES) | {"zerobias"} == set(PROCESS_CODES)
    assert set(SIGNALS) | set(SM_COCKTAIL) <= set(PROCESS_CODES)
    assert premix.PROCESS_CODES is PROCESS_CODES and premix.SIGNALS is SIGNALS  # one list, not a copy
