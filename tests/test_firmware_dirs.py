"""Firmware directories are never destroyed: ``recotrig firmware -o DIR`` and ``firmware calibrate``
build the new directory beside DIR and swap it in when complete; an existing DIR is replaced only
when it is a recotrig firmware directory (by its manifest's content) and ``--force`` is given.
One real build (a module fixture) proves the swap; the rest fails fast, before or during a build."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from recotrig.firmware import hls, project, rtl
from recotrig.firmware.emulator import FORMAT, FirmwareError
from recotrig.sequences.cli import main

MODEL = "anomaly-vae-zerobias-mu60"


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None) for p in sorted(directory.rglob("*"))
    }


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.startswith(".") and p.name.endswith((".tmp", ".lock"))]


@pytest.fixture(scope="module")
def firmware(tmp_path_factory) -> Path:
    """A real build with --force over an older recotrig firmware directory (its manifest says so)."""
    out = tmp_path_factory.mktemp("fwdirs") / "vae"
    out.mkdir()
    (out / "firmware.json").write_text(json.dumps({"format": FORMAT, "model": "an older build"}))
    (out / "calibration.json").write_text(json.dumps({"threshold": 1}))
    (out / "old-only.txt").write_text("from the previous build")
    assert main(["firmware", MODEL, "-o", str(out), "--force"]) == 0
    return out


def test_force_replaces_a_firmware_directory_whole_and_the_result_works_in_place(firmware):
    assert not (firmware / "old-only.txt").exists()  # replaced as a whole, not merged
    manifest = json.loads((firmware / "firmware.json").read_text())
    assert manifest["model"] == MODEL and (firmware / "verilog/src/anomaly_trigger.v").is_file()
    assert not leftovers(firmware.parent)
    assert ".tmp" not in (firmware / "hls4ml/hls4ml_config.yml").read_text()
    assert f"recotrig firmware verify {firmware}`" in (firmware / "report.md").read_text()
    # built under another name, it runs where it now is: the C simulation equals the emulator
    fw = project.load(firmware)
    words = project.edge_words(fw.emulator.spec, np.zeros((0, len(fw.emulator.spec.shifts)), np.int64), 200)
    score, passed = fw.emulator.run(words)
    c_score, c_pass = hls.run_csim(firmware / "hls4ml", words)
    assert np.array_equal(score, c_score) and np.array_equal(passed, c_pass)


def test_a_firmware_directory_is_not_replaced_without_force(firmware, capsys):
    before = snapshot(firmware)
    assert main(["firmware", MODEL, "-o", str(firmware)]) == 1
    err = capsys.readouterr().err
    assert f"recotrig firmware: error: {firmware} is a firmware directory already; give --force" in err
    assert snapshot(firmware) == before and not leftovers(firmware.parent)


@pytest.mark.parametrize("force", [False, True])
def test_user_files_beside_a_file_named_firmware_json_are_never_deleted(tmp_path, capsys, force):
    target = tmp_path / "work"
    (target / "src").mkdir(parents=True)
    (target / "firmware.json").write_text('{"notes": "my own file"}')
    (target / "src" / "top.v").write_text("module top; endmodule\n")
    (target / "thesis.tex").write_text("\\documentclass{book}\n")
    before = snapshot(target)
    assert main(["firmware", MODEL, "-o", str(target)] + (["--force"] if force else [])) == 1
    err = capsys.readouterr().err
    assert f"recotrig firmware: error: {target} exists and is not a firmware directory" in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(target) == before and not leftovers(tmp_path)


@pytest.mark.parametrize("fault", ["error", "SIGTERM"])
def test_a_fault_in_the_middle_of_a_rebuild_leaves_the_old_directory(firmware, monkeypatch, capsys, fault):
    before = snapshot(firmware)

    def half_built(spec, directory, *args, **kwargs):
        directory.mkdir(parents=True)
        (directory / "partial.cpp").write_text("// half written\n")
        if fault == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        raise FirmwareError(f"{directory}: the build failed (injected)")

    monkeypatch.setattr(hls, "write_project", half_built)
    code = main(["firmware", MODEL, "-o", str(firmware), "--force"])
    err = capsys.readouterr().err
    if fault == "error":
        assert code == 1 and "the build failed (injected)" in err
    else:
        assert code == 143 and "recotrig firmware: terminated; no output was committed" in err
    assert "Traceback" not in err
    assert snapshot(firmware) == before, "the old firmware directory changed"
    assert not leftovers(firmware.parent)


def test_an_interrupted_calibration_leaves_the_old_directory(firmware, monkeypatch, capsys):
    before = snapshot(firmware)

    def interrupted(*args, **kwargs):  # after the header and the C simulation were redone
        raise KeyboardInterrupt

    monkeypatch.setattr(rtl, "write_project", interrupted)
    assert main(["firmware", "calibrate", str(firmware), "--rate", "100kHz"]) == 130
    err = capsys.readouterr().err
    assert "recotrig firmware: interrupted; no output was committed" in err and "Traceback" not in err
    assert snapshot(firmware) == before, "an interrupted calibration changed the firmware directory"
    assert not leftovers(firmware.parent)
