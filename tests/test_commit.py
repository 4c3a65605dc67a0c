"""The commit step of a run: the output directory is built beside its place and swapped in whole,
under an exclusive lock; failures, signals and a second run never leave a mix, and the message
says truthfully whether anything was committed. Repeated signals end a run promptly."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from slowrun import SLOW, alive, children

import recotrig.framework.files as files
from recotrig.sequences.cli import main


def leftovers(root: Path) -> list[Path]:
    """Temporaries and lock files under ``root``: none may be left after a run ends."""
    return [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".lock"))]


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(directory)): (p.read_bytes() if p.is_file() else None) for p in sorted(directory.rglob("*"))
    }


def start_slow_run(tmp_path: Path, out: Path) -> tuple[subprocess.Popen, list[int]]:
    (tmp_path / "slow.py").write_text(SLOW)
    # SIGINT as a terminal sends it (a background test run inherits it ignored)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recotrig.sequences.cli",
            "run",
            str(tmp_path / "slow.py"),
            "-o",
            str(out),
            "-j",
            "2",
            "--no-progress",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.1)
        workers = children(proc.pid)
    assert len(workers) >= 2, "the worker processes did not start"
    time.sleep(0.5)  # events are running
    return proc, workers


def toy_run(out: Path, events: int) -> int:
    return main(["run", "toy", "-n", str(events), "-o", str(out), "--no-progress"])


# -- signals -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "signals, gap",
    [
        ((signal.SIGINT, signal.SIGINT), 0.05),
        ((signal.SIGTERM, signal.SIGTERM), 0.3),
        ((signal.SIGHUP, signal.SIGINT, signal.SIGTERM), 0.15),
    ],
)
def test_repeated_signals_end_the_run_within_5_s_and_leave_nothing(tmp_path, signals, gap):
    out = tmp_path / "out"
    proc, workers = start_slow_run(tmp_path, out)
    t0 = time.time()
    for i, sig in enumerate(signals):
        if i:
            time.sleep(gap)
        if proc.poll() is None:
            proc.send_signal(sig)
    try:
        _, stderr = proc.communicate(timeout=5 - (time.time() - t0))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"the run did not end within 5 s of the first signal; its processes: {children(proc.pid)}")
    assert time.time() - t0 < 5
    first = signals[0]
    # ended by its handler (128 + the first signal), or by a later signal while the interpreter exits
    assert proc.returncode == 128 + first or -proc.returncode in signals, proc.returncode
    deadline = time.time() + 2
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.05)
    assert not any(alive(w) for w in workers), "a worker process outlived the run"
    assert {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}[first] in stderr
    assert "no output was committed" in stderr and "Traceback" not in stderr
    assert not out.exists() and not leftovers(tmp_path)


# -- the commit step under failures --------------------------------------------------------------------
def test_a_failure_in_the_middle_of_the_commit_changes_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert toy_run(out, 3) == 0
    before = snapshot(out)
    real = os.replace
    calls = []

    def failing(src, dst, *args, **kwargs):  # the third rename of the commit fails
        if str(tmp_path) in os.path.abspath(dst):
            calls.append(dst)
            if len(calls) == 3:
                raise OSError(errno.EIO, "Input/output error (injected)")
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    assert toy_run(out, 5) == 1
    err = capsys.readouterr().err
    assert "Input/output error (injected)" in err and "Traceback" not in err
    assert snapshot(out) == before, "a failed commit changed the previous output"
    assert not leftovers(tmp_path)


def test_a_directory_where_an_output_file_goes_is_refused_before_anything_changes(tmp_path, capsys):
    out = tmp_path / "out"
    assert toy_run(out, 3) == 0
    (out / "timing.json").unlink()
    (out / "timing.json").mkdir()
    (out / "timing.json" / "mine.txt").write_text("kept")
    before = snapshot(out)
    assert toy_run(out, 5) == 1
    err = capsys.readouterr().err
    assert f"{out / 'timing.json'} is a directory" in err and "Traceback" not in err
    assert snapshot(out) == before
    assert not leftovers(tmp_path)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_signal_at_the_swap_is_reported_truthfully(tmp_path, monkeypatch, capsys, when):
    out = tmp_path / "out"
    assert toy_run(out, 3) == 0
    (out / "notes.txt").write_text("the user's notes")  # not the run's: kept by the new output
    before = snapshot(out)
    real = files._exchange

    def exchange(a, b):  # SIGTERM arrives just before, or just after, the one step that commits
        if when == "before":
            os.kill(os.getpid(), signal.SIGTERM)
        done = real(a, b)
        if when == "after":
            os.kill(os.getpid(), signal.SIGTERM)
        return done

    monkeypatch.setattr(files, "_exchange", exchange)
    assert toy_run(out, 5) == 143
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if when == "before":
        assert "terminated; no output was committed" in err
        assert snapshot(out) == before
    else:
        assert "no output was committed" not in err and f"terminated after committing {out}" in err
        record = json.loads((out / "run.json").read_text())
        assert record["processed"] == 5 and (out / "timing.root").is_file()
        assert (out / "notes.txt").read_text() == "the user's notes"
    assert not leftovers(tmp_path)


# -- where a run may write ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["user files", "current directory", "a file"])
def test_a_place_that_is_not_a_run_output_is_refused_and_untouched(tmp_path, monkeypatch, capsys, case):
    target = tmp_path / "target"
    if case == "user files":
        (target / "src").mkdir(parents=True)
        (target / "src" / "top.v").write_text("module top; endmodule\n")
        (target / "thesis.tex").write_text("\\documentclass{book}\n")
        message = "is not empty and is not the output of a recotrig run"
    elif case == "current directory":
        target.mkdir()
        monkeypatch.chdir(target)
        message = "is the current directory"
    else:
        target.write_text("not a directory")
    before = snapshot(tmp_path)
    arg = "." if case == "current directory" else str(target)
    assert main(["run", "toy", "-n", "2", "-o", arg, "--no-progress"]) == 1
    err = capsys.readouterr().err
    if case == "a file":
        message = "exists and is not a directory"
    assert f"recotrig run: error: {arg} {message}" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before and not leftovers(tmp_path)


def test_a_second_run_into_the_same_output_is_refused_naming_the_first(tmp_path, capsys):
    out = tmp_path / "out"
    proc, _workers = start_slow_run(tmp_path, out)
    try:
        lock = tmp_path / ".out.lock"
        assert lock.read_text().startswith(f"{proc.pid} ")
        t0 = time.time()
        assert toy_run(out, 2) == 1
        assert time.time() - t0 < 5  # refused at once, not after waiting
        err = capsys.readouterr().err
        assert f"{out} is in use by recotrig process {proc.pid}" in err and "Traceback" not in err
        assert not out.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "terminated; no output was committed" in stderr
    assert not out.exists() and not leftovers(tmp_path)


def test_a_lock_file_left_by_a_killed_run_is_taken_over_and_removed(tmp_path):
    (tmp_path / ".out.lock").write_text("999999999 recotrig run (killed)\n")  # no process holds its lock
    assert toy_run(tmp_path / "out", 2) == 0
    assert (tmp_path / "out" / "run.json").is_file() and not leftovers(tmp_path)


# -- temporaries outside the output ----------------------------------------------------------------
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_amvf_hand_over_folders_carry_the_pid_and_dead_ones_are_swept(tmp_path, monkeypatch):
    from recotrig.algorithms.acts.amvf import ActsAMVF

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f".recotrig-amvf.{dead_pid()}-0123abcd.tmp"
    (dead / "tracks").mkdir(parents=True)
    living = tmp_path / f".recotrig-amvf.{os.getppid()}-89abcdef.tmp"  # a running process's: kept
    living.mkdir()
    amvf = ActsAMVF(tracks="tracks", vertices="vertices")
    amvf.initialize()
    try:
        assert not dead.exists() and living.is_dir()
        assert amvf._dir.parent == tmp_path and amvf._dir.name.startswith(f".recotrig-amvf.{os.getpid()}-")
        assert amvf._dir.is_dir()
    finally:
        amvf.finalize()
        amvf._cleanup()
    assert not amvf._dir.exists()
