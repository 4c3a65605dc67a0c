"""`recotrig simulate`: both formats, byte-identical for the same seed whatever -j, summary printed."""

from __future__ import annotations

import filecmp
import json
import subprocess
import sys

import numpy as np

from recotrig.io.store import open_store


def simulate(out, *args):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recotrig.sequences.cli",
            "simulate",
            "-o",
            str(out),
            "-n",
            "3",
            "--mu",
            "4",
            "--seed",
            "5",
            "--format",
            "both",
            "--no-progress",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout[done.stdout.index("{") :])


def test_simulate_is_byte_identical_serial_and_parallel(tmp_path):
    # the store records the run that wrote it, output path included: both runs write to one path
    serial = simulate(tmp_path / "ev.root")
    (tmp_path / "a").mkdir()
    for name in ("ev.root", "ev_csv"):
        (tmp_path / name).rename(tmp_path / "a" / name)
    parallel = simulate(tmp_path / "ev.root", "-j", "2")
    (tmp_path / "b").mkdir()
    for name in ("ev.root", "ev_csv"):
        (tmp_path / name).rename(tmp_path / "b" / name)
    assert serial["events"] == parallel["events"] == 3 and parallel["jobs"] == 2
    assert (tmp_path / "a" / "ev.root").read_bytes() == (tmp_path / "b" / "ev.root").read_bytes()
    cmp = filecmp.dircmp(tmp_path / "a" / "ev_csv", tmp_path / "b" / "ev_csv")
    assert not cmp.diff_files and not cmp.left_only and not cmp.right_only and len(cmp.common) >= 3 * 5
    for key in ("hits_per_event", "particles_per_event", "vertices_per_event", "seconds_per_event"):
        assert serial[key] > 0

    root, csv = open_store(tmp_path / "a" / "ev.root"), open_store(tmp_path / "a" / "ev_csv")
    assert root.metadata == csv.metadata and root.metadata["mu"] == 4.0 and root.metadata["seed"] == 5
    for a, b in zip(root.read(), csv.read()):
        for name in ("hits", "particles", "truth", "vertices"):
            assert a[name].equals(b[name]), name
    # a different seed gives different events
    other = simulate(tmp_path / "c" / "ev.root", "--seed", "6")
    assert other["events"] == 3
    first, changed = root.read(0, 1)[0]["hits"], open_store(tmp_path / "c" / "ev.root").read(0, 1)[0]["hits"]
    assert len(first) != len(changed) or not np.array_equal(first.x, changed.x)


def test_simulate_refuses_to_overwrite(tmp_path):
    (tmp_path / "ev.root").write_bytes(b"keep me")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "recotrig.sequences.cli",
            "simulate",
            "-o",
            str(tmp_path / "ev.root"),
            "-n",
            "1",
            "--mu",
            "1",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "exists" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "ev.root").read_bytes() == b"keep me"
