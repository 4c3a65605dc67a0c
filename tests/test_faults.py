"""Faults: a killed main process, a full disk, and fuzzed stores. Nothing lost, nothing mixed,
nothing left running; damaged stores give a StoreError or a correct read, nothing else."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slowrun import SLOW, alive, children

from recotrig.edm import Hits, HitTruth, Particles
from recotrig.io.errors import StoreError
from recotrig.io.store import open_store, write_store
from recotrig.io.validate import validate_event
from recotrig.sequences.cli import main


def start_slow_run(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    (tmp_path / "slow.py").write_text(SLOW)
    # a test run started in the background inherits SIGINT ignored (POSIX, for asynchronous commands),
    # and Python keeps it ignored: the run must see Ctrl-C as a terminal would send it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recotrig.sequences.cli",
            "run",
            str(tmp_path / "slow.py"),
            "-o",
            str(tmp_path / "out"),
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
        time.sleep(0.2)
        workers = children(proc.pid)
    assert len(workers) >= 2, "the worker processes did not start"
    time.sleep(1.0)  # events are running
    return proc, workers


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_main_process_leaves_no_worker_and_no_output(tmp_path, sig):
    proc, workers = start_slow_run(tmp_path)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "worker processes outlived their parent"
    assert "Traceback" not in stderr
    out = tmp_path / "out"
    assert not (out / "reco.root").exists() and not (out / "summary.json").exists()
    if sig != signal.SIGKILL:  # unwound: temporaries removed at once
        assert not list(tmp_path.rglob("*.tmp"))
        assert proc.returncode in (130, 143) and ("interrupted" in stderr or "terminated" in stderr)
    # the next run into the same place removes whatever a killed run left and commits everything
    (tmp_path / "quick.py").write_text(SLOW.replace("events=400", "events=4"))
    assert main(["run", str(tmp_path / "quick.py"), "-o", str(out), "--no-progress"]) == 0
    assert not list(tmp_path.rglob("*.tmp"))
    assert (out / "reco.root").exists() and (out / "summary.json").exists()


def test_a_full_disk_leaves_the_previous_outputs_untouched(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert main(["run", "toy", "-n", "3", "-o", str(out), "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"comparison.json", "performance.json", "summary.json", "run.json", "timing.root"} <= set(before)

    import recotrig.framework.files as files

    real = files.json.dumps

    def full_disk(value, **kwargs):
        text = real(value, **kwargs)
        if '"results"' in text:  # performance.json: written after comparison.json and summary.json
            raise OSError(errno.ENOSPC, "No space left on device")
        return text

    monkeypatch.setattr(files.json, "dumps", full_disk)
    assert main(["run", "toy", "-n", "5", "--ToyReader.vertices", "7", "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == before, "a failed run changed the outputs of the previous one"
    assert not list(tmp_path.rglob("*.tmp"))


def test_os_errors_while_writing_name_the_file(tmp_path, monkeypatch):
    import recotrig.framework.files as files

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "open", refuse, raising=False)  # the module's own name for open
    with pytest.raises(OSError, match=r"cannot write .*x\.json: No space left on device"):
        files.write_json(tmp_path / "x.json", {"a": 1})
    assert not list(tmp_path.iterdir())


def test_json_outputs_are_strict(tmp_path):
    assert main(["run", "toy", "-n", "2", "-o", str(tmp_path), "--no-progress"]) == 0
    for name in ("comparison.json", "performance.json", "run.json", "timing.json", "summary.json"):
        json.loads((tmp_path / name).read_text(), parse_constant=lambda c, name=name: pytest.fail(f"{name} holds {c}"))
    modes = {oct((tmp_path / n).stat().st_mode & 0o777) for n in os.listdir(tmp_path)}
    assert len(modes) == 1  # one file mode for every output


# -- fuzzing --------------------------------------------------------------------------------------
@st.composite
def events(draw):
    out = []
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, 12))
        ids = np.arange(1, n + 1, dtype=np.int64)
        coords = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=3 * n, max_size=3 * n))
        xyz = np.asarray(coords, dtype=np.float64).reshape(3, n) if n else np.zeros((3, 0))
        pid = np.asarray(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
        particles = Particles(
            particle_id=[1, 2, 3],
            vx=np.zeros(3),
            vy=np.zeros(3),
            vz=np.zeros(3),
            px=[1.0, 2.0, 0.5],
            py=[0.0, 1.0, 0.5],
            pz=[0.1, 0.2, 3.0],
            q=[1, -1, 1],
        )
        out.append(
            {
                "hits": Hits(hit_id=ids, x=xyz[0], y=xyz[1], z=xyz[2]),
                "truth": HitTruth(hit_id=ids, particle_id=pid),
                "particles": particles,
            }
        )
    return out


def read_checked(path) -> list[dict]:
    store = open_store(path)
    got = store.read()
    for event_id, event in zip(store.event_ids, got):
        validate_event(event, path=path, event_id=int(event_id))
    return got


def same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(x[k].equals(y[k]) for x, y in zip(a, b) for k in x)


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(
    data=events(),
    fmt=st.sampled_from(["root", "trackml"]),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4),
)
def test_fuzzed_stores_read_correctly_or_fail_with_a_store_error(tmp_path_factory, data, fmt, cut, flips):
    folder = tmp_path_factory.mktemp("fuzz")
    path = write_store(folder / ("s.root" if fmt == "root" else "s"), data, format=fmt)
    assert same(read_checked(path), data)  # intact: read back exactly
    victim = Path(path) if fmt == "root" else Path(path) / "event000000000-hits.csv"
    raw = bytearray(victim.read_bytes())
    for where, value in flips:
        if raw:
            raw[int(where * (len(raw) - 1))] = value
    victim.write_bytes(bytes(raw[: max(0, int(cut * len(raw)))] if cut < 0.98 else raw))
    with contextlib.suppress(StoreError):  # a clear error naming the file
        read_checked(path)
