"""Many event files and scale-out: filesets, the Dask executor on a real LocalCluster, retries,
killed workers, bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from recotrig.algorithms.toy import ToyReader, TruthTracker
from recotrig.framework import EventError, Sequencer
from recotrig.framework.executors import DaskExecutor
from recotrig.framework.testing import FlakyOnce, KillOnce
from recotrig.io.errors import StoreError
from recotrig.io.fileset import Fileset, expand
from recotrig.io.hit_reader import HitReader
from recotrig.io.store import open_store, write_store
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance


def make_files(folder, n_files=4, per_file=5):
    """Toy stores with distinct event ids: file k holds ids 100k .. 100k + per_file - 1."""
    folder.mkdir(parents=True, exist_ok=True)
    toy = ToyReader(vertices=3)
    paths = []
    for k in range(n_files):
        ids = list(range(100 * k, 100 * k + per_file))
        events = [dict(zip(("hits", "particles", "truth", "vertices"), toy.read(i))) for i in ids]
        paths.append(write_store(folder / f"ev{k}.root", events, event_ids=ids))
    return paths


def sequence(inp, out, **reader):
    return [
        HitReader(input=str(inp), **reader),
        TruthTracker(min_hits=3),
        Performance(tracks=["tracks"], output=str(out), min_hits=3),
        StoreWriter(path=str(out / "reco.root"), collections=["tracks"]),
    ]


# -- filesets -----------------------------------------------------------------------------------
def test_fileset_specs(tmp_path):
    paths = [str(p) for p in make_files(tmp_path / "d", n_files=3, per_file=2)]
    assert expand(str(tmp_path / "d" / "*.root")) == paths
    assert expand(",".join(paths[::-1])) == paths[::-1]
    listing = tmp_path / "files.txt"
    listing.write_text(f"# three files\n{paths[0]}\n\nd/ev1.root\n{paths[2]}  # last\n")
    assert expand(str(listing)) == [paths[0], str(tmp_path / "d" / "ev1.root"), paths[2]]
    with pytest.raises(StoreError, match=r"nope.root: no such file or directory \(named in the fileset\)"):
        expand(f"{paths[0]},{tmp_path}/nope.root")
    with pytest.raises(StoreError, match="matches no file"):
        expand(str(tmp_path / "none*.root"))
    fileset = Fileset(str(tmp_path / "d" / "*.root"))
    assert fileset.n_events == 6 and fileset.event_ids.tolist() == [0, 1, 100, 101, 200, 201]
    assert [n for _, _, n in fileset.segments()] == [2, 2, 2]
    events = fileset.read(1, 5, collections=["hits"])  # spans three files
    assert len(events) == 4


def test_repeated_event_ids_across_files_are_refused(tmp_path):
    toy = ToyReader()
    for name in ("a", "b"):
        write_store(tmp_path / f"{name}.root", [dict(zip(("hits", "particles", "truth", "vertices"), toy.read(0)))])
    with pytest.raises(StoreError, match=r"event id 0 is in .*a.root and in .*b.root"):
        Fileset(str(tmp_path / "*.root"))


def test_n_and_skip_count_across_the_fileset_and_chunks_stay_in_one_file(tmp_path):
    make_files(tmp_path / "d", n_files=3, per_file=4)
    seq = Sequencer(sequence(tmp_path / "d" / "*.root", tmp_path / "o"))
    result = seq.run(n_events=6, skip=3, chunk_size=3, progress=False)
    assert open_store(tmp_path / "o" / "reco.root").event_ids.tolist() == [3, 100, 101, 102, 103, 200]
    assert [(f["file"][-8:], f["entries"]) for f in result.record["fileset"]] == [
        ("ev0.root", [3, 4]),
        ("ev1.root", [0, 4]),
        ("ev2.root", [0, 1]),
    ]
    assert len(result.record["files"]["input"]) == 3


# -- Dask ----------------------------------------------------------------------------------------
def test_dask_output_equals_one_process(tmp_path):
    make_files(tmp_path / "d")
    serial = Sequencer(sequence(tmp_path / "d" / "*.root", tmp_path / "j1")).run(chunk_size=2, progress=False)
    dask = Sequencer(sequence(tmp_path / "d" / "*.root", tmp_path / "dask")).run(
        executor=DaskExecutor(2), chunk_size=2, progress=False
    )
    assert serial.processed == dask.processed == 20 and dask.jobs == 2
    for name in ("reco.root", "comparison.json", "comparison.root", "performance.json"):
        assert (tmp_path / "j1" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes(), name


def test_dask_retries_a_failing_task(tmp_path):
    (tmp_path / "m").mkdir()
    algs = [ToyReader(events=6), FlakyOnce(folder=str(tmp_path / "m"))]
    result = Sequencer(algs).run(executor=DaskExecutor(2, retries=1), chunk_size=1, progress=False)
    assert result.processed == 6 and not result.failures
    (tmp_path / "n").mkdir()
    with pytest.raises(EventError, match="transient failure at entry 0"):
        Sequencer([ToyReader(events=3), FlakyOnce(folder=str(tmp_path / "n"))]).run(
            executor=DaskExecutor(2, retries=0), chunk_size=1, progress=False
        )


def test_dask_survives_a_killed_worker_with_every_event_once(tmp_path):
    (tmp_path / "m").mkdir()
    algs = [
        ToyReader(events=12),
        KillOnce(folder=str(tmp_path / "m"), entry=5),
        TruthTracker(),
        StoreWriter(path=str(tmp_path / "out.root"), collections=["tracks"]),
    ]
    result = Sequencer(algs).run(executor=DaskExecutor(2), chunk_size=1, progress=False)
    assert (tmp_path / "m" / "killed").exists()  # a worker really died
    assert result.processed == 12
    assert open_store(tmp_path / "out.root").event_ids.tolist() == list(range(12))


def test_process_executor_names_the_chunk_of_a_dead_worker(tmp_path):
    (tmp_path / "m").mkdir()
    algs = [
        ToyReader(events=8),
        KillOnce(folder=str(tmp_path / "m"), entry=5),
        TruthTracker(),
        StoreWriter(path=str(tmp_path / "out.root"), collections=["tracks"]),
    ]
    with pytest.raises(EventError, match=r"worker process died .* while entries (\d+\.\.\d+, )*5\.\.5"):
        Sequencer(algs).run(jobs=2, chunk_size=1, progress=False)
    assert not (tmp_path / "out.root").exists()


# -- bad files -------------------------------------------------------------------------------------
def corrupt_basket(path):
    """Zero the key of the first basket of hits.x: the file opens, reading its hits fails."""
    import uproot

    with uproot.open(path) as f:
        seek = int(f["hits"]["x"].member("fBasketSeek")[0])
    data = bytearray(path.read_bytes())
    data[seek : seek + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["garbage", "basket"])
def test_bad_files_stop_the_run_or_are_skipped_and_recorded(tmp_path, damage):
    paths = make_files(tmp_path / "d", n_files=3, per_file=4)
    if damage == "garbage":
        paths[1].write_bytes(b"this is not a ROOT file")
    else:
        corrupt_basket(paths[1])
    with pytest.raises((StoreError, EventError), match=r"ev1.root"):
        Sequencer(sequence(tmp_path / "d" / "*.root", tmp_path / "o")).run(progress=False)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    result = Sequencer(sequence(tmp_path / "d" / "*.root", tmp_path / "o", skip_bad_files=True)).run(
        skip_bad_files=True, chunk_size=2, progress=False
    )
    (bad,) = {b["file"] for b in result.bad_files}
    assert bad.endswith("ev1.root") and all(b["reason"] for b in result.bad_files)
    ids = open_store(tmp_path / "o" / "reco.root").event_ids.tolist()
    assert ids == [0, 1, 2, 3, 200, 201, 202, 203] and result.processed == 8


def test_cli_dask_fileset_with_skip_bad_files(tmp_path):
    paths = make_files(tmp_path / "d", n_files=4, per_file=3)
    paths[2].write_bytes(b"broken")
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(str(p) for p in paths) + "\n")
    out = subprocess.run(
        [sys.executable, "-m", "recotrig.sequences.cli", "run", "toy_fileset_check.py"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1  # no such sequence file: a clear error, no traceback
    steering = tmp_path / "seq.py"
    steering.write_text(
        "from recotrig.io.hit_reader import HitReader\n"
        "from recotrig.algorithms.toy import TruthTracker\n"
        "from recotrig.io.writers import StoreWriter\n"
        "def build(*, input, output):\n"
        "    return [HitReader(input=input), TruthTracker(min_hits=3),\n"
        "            StoreWriter(path=output + '/reco.root', collections=['tracks'])]\n"
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "recotrig.sequences.cli",
            "run",
            str(steering),
            "--input",
            str(listing),
            "-o",
            str(tmp_path / "o"),
            "--executor",
            "dask",
            "--workers",
            "2",
            "--skip-bad-files",
            "--retries",
            "1",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "bad file skipped" in run.stdout and "ev2.root" in run.stdout
    report = json.loads((tmp_path / "o" / "run.json").read_text())
    assert [b["file"] for b in report["bad_files"]] == [str(paths[2])]
    assert open_store(tmp_path / "o" / "reco.root").event_ids.tolist() == [0, 1, 2, 100, 101, 102, 300, 301, 302]
    assert np.all(np.diff(open_store(tmp_path / "o" / "reco.root").event_ids) > 0)
