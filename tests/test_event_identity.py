"""Events are identified by (run, event): stores carry a run number beside each event id, a
repeated (run, event) is refused within a file as across a fileset (naming the file(s) and both
entries), stores of different runs numbered alike read together, an old store without a run
number reads as run 0, and every per-event output is keyed by both."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from recotrig.algorithms.toy import ToyReader
from recotrig.framework.identity import EventKey
from recotrig.io.errors import StoreError
from recotrig.io.fileset import Fileset
from recotrig.io.store import open_store, open_writer, write_store
from recotrig.sequences.cli import main

KEYS = ("hits", "particles", "truth", "vertices")
SEQUENCE = """
from recotrig.algorithms.toy import TruthTracker
from recotrig.io.hit_reader import HitReader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance

def build(*, input, output):
    return [HitReader(input=input), TruthTracker(min_hits=3),
            Performance(tracks=["tracks"], output=output, min_hits=3),
            StoreWriter(path=output + "/reco.root", collections=["tracks"])]
"""


def toy_events(n: int = 3) -> list[dict]:
    toy = ToyReader(vertices=2, tracks_per_vertex=10)
    return [dict(zip(KEYS, toy.read(i))) for i in range(n)]


def store_with_keys(path: Path, keys: list[tuple[int, int]]) -> Path:
    """A ROOT store whose entries hold these (run, event) keys, repeats included: what merging a
    file with itself gives (the writer's own refusal of a repeat is stepped past)."""
    writer = open_writer(path)
    for event, key in zip(toy_events(len(keys)), keys):
        writer._append(EventKey(*key), event)
    return writer.close()


def old_store(path: Path, event_ids: list[int]) -> Path:
    """A store in the layout written before run numbers: recotrig trees with ``event_id`` and no
    ``run_number`` branch."""
    events = toy_events(len(event_ids))
    with uproot.recreate(path) as file:
        for name in KEYS:
            parts = [e[name] for e in events]
            counts = [len(p) for p in parts]
            records = ak.zip({c: ak.unflatten(np.concatenate([p[c] for p in parts]), counts) for c in parts[0].names})
            tree = file.mktree(
                name,
                {"event_id": np.int64, name: records.type.content},
                title=f"recotrig:{type(parts[0]).type_name}",
                counter_name=lambda branch: f"n_{branch}",
                field_name=lambda outer, inner: inner,
            )
            tree.extend({"event_id": np.asarray(event_ids, np.int64), name: records})
    return path


def run(tmp: Path, inputs: str, *flags: str, out: str = "out") -> int:
    (tmp / "seq.py").write_text(SEQUENCE)
    return main(["run", str(tmp / "seq.py"), "--input", inputs, "-o", str(tmp / out), "--no-progress", *flags])


def assert_nothing_written(tmp: Path) -> None:
    assert not any((tmp / "out" / name).exists() for name in ("run.json", "performance.json", "reco.root"))
    assert not any(p.name.endswith(".tmp") for p in tmp.rglob("*")), "a temporary was left behind"


# -- item 3: a repeated event inside one file ------------------------------------------------------
@pytest.mark.parametrize("run_number,label", [(0, "event id 1"), (4, "run 4 event id 1")])
def test_a_repeated_event_inside_one_file_is_refused(tmp_path, capsys, run_number, label):
    store = store_with_keys(tmp_path / "dup.root", [(run_number, 0), (run_number, 1), (run_number, 2), (run_number, 1)])
    assert open_store(store).event_ids.tolist() == [0, 1, 2, 1]  # the file holds the repeat
    assert run(tmp_path, str(store)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(rf"dup\.root: {label} is in this file twice \(entries 1 and 3\)", err), err
    assert_nothing_written(tmp_path)


def test_the_same_event_id_in_two_runs_of_one_file_is_two_events(tmp_path):
    store = store_with_keys(tmp_path / "merged.root", [(1, 0), (1, 1), (2, 0), (2, 1)])
    fileset = Fileset(str(store))
    assert [fileset.key(i) for i in range(4)] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert str(fileset.key(2)) == "run 2 event 0" and str(EventKey(0, 5)) == "event 5"


# -- item 11: events that can be combined ----------------------------------------------------------
def test_stores_of_two_runs_numbered_alike_read_together_and_outputs_key_by_run(tmp_path):
    for name, run_number in (("a", 11), ("b", 12)):
        write_store(tmp_path / "in" / f"{name}.root", toy_events(), run=run_number)
    inputs = str(tmp_path / "in" / "*.root")
    assert run(tmp_path, inputs) == 0
    out = tmp_path / "out"
    assert json.loads((out / "run.json").read_text())["processed"] == 6
    per_event = json.loads((out / "performance.json").read_text())["results"]["tracks"]["per_event"]
    assert per_event["run_number"] == [11, 11, 11, 12, 12, 12] and per_event["event_id"] == [0, 1, 2, 0, 1, 2]
    reco = open_store(out / "reco.root")
    assert reco.runs.tolist() == [11, 11, 11, 12, 12, 12] and reco.event_ids.tolist() == [0, 1, 2, 0, 1, 2]
    with uproot.open(out / "timing.root") as timing:
        assert timing["timing"]["run_number"].array(library="np").tolist() == [11, 11, 11, 12, 12, 12]
        assert timing["timing"]["event_id"].array(library="np").tolist() == [0, 1, 2, 0, 1, 2]
    # the same with two processes, byte for byte
    assert run(tmp_path, inputs, "-j", "2", "--chunk-size", "2", out="j2") == 0
    for name in ("run.json", "performance.json", "reco.root"):
        assert (out / name).read_bytes() == (tmp_path / "j2" / name).read_bytes(), name


def test_the_same_run_and_event_in_two_stores_is_refused(tmp_path, capsys):
    write_store(tmp_path / "in" / "a.root", toy_events(2), event_ids=[0, 1], run=3)
    write_store(tmp_path / "in" / "b.root", toy_events(2), event_ids=[1, 2], run=3)
    assert run(tmp_path, str(tmp_path / "in" / "*.root")) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search(r"run 3 event id 1 is in \S*a\.root and in \S*b\.root \(entries 1 and 0\)", err), err
    assert_nothing_written(tmp_path)


def test_trackml_stores_carry_one_run_each(tmp_path):
    for name, run_number in (("a", 0), ("b", 7)):
        write_store(tmp_path / name, toy_events(2), format="trackml", run=run_number)
    assert not (tmp_path / "a" / "metadata.json").exists()  # run 0 writes nothing new
    assert json.loads((tmp_path / "b" / "metadata.json").read_text()) == {"run_number": 7}
    b = open_store(tmp_path / "b")
    assert b.runs.tolist() == [7, 7] and b.metadata == {} and b.info()["runs"] == [7]
    fileset = Fileset([str(tmp_path / "a"), str(tmp_path / "b")])
    assert [fileset.key(i) for i in range(4)] == [(0, 0), (0, 1), (7, 0), (7, 1)]
    write_store(tmp_path / "c", toy_events(1), format="trackml", event_ids=[1], run=7)
    with pytest.raises(StoreError, match=r"run 7 event id 1 is in \S*b and in \S*c \(entries 1 and 0\)"):
        Fileset([str(tmp_path / "b"), str(tmp_path / "c")])
    # one directory is one run: a second run is refused and nothing is left behind
    with pytest.raises(StoreError, match=r"d, event 1: a TrackML store holds one run: this event is of run 8"):
        with open_writer(tmp_path / "d", format="trackml") as writer:
            writer.append(0, toy_events(1)[0], run=7)
            writer.append(1, toy_events(1)[0], run=8)
    assert not (tmp_path / "d").exists()
    (tmp_path / "b" / "metadata.json").write_text('{"run_number": -2}')
    with pytest.raises(StoreError, match=r"metadata\.json: 'run_number' must be a non-negative integer, got -2"):
        _ = open_store(tmp_path / "b").runs


def test_a_root_store_may_hold_several_runs_each_event_once(tmp_path):
    with open_writer(tmp_path / "m.root") as writer:
        for key, event in zip([(1, 0), (2, 0), (2, 1)], toy_events()):
            writer.append(key[1], event, run=key[0])
        with pytest.raises(StoreError, match=r"m\.root, event 0: event id written twice in run 2"):
            writer.append(0, toy_events(1)[0], run=2)
        with pytest.raises(StoreError, match=r"run number must be a non-negative integer, got -1"):
            writer.append(5, toy_events(1)[0], run=-1)
    store = open_store(tmp_path / "m.root")
    assert store.runs.tolist() == [1, 2, 2] and store.event_ids.tolist() == [0, 0, 1]
    assert store.entry_of(0, run=2) == 1 and store.info()["runs"] == [1, 2]


# -- old stores ------------------------------------------------------------------------------------
def test_an_old_store_without_run_numbers_reads_as_run_0(tmp_path, capsys):
    old = old_store(tmp_path / "old.root", [0, 1, 2])
    with uproot.open(old) as file:
        assert "run_number" not in file["hits"]
    store = open_store(old)
    assert store.runs.tolist() == [0, 0, 0] and store.info()["runs"] == [0]
    assert main(["info", str(old)]) == 0
    assert "(event ids 0..2; run 0)" in capsys.readouterr().out
    new = write_store(tmp_path / "new.root", toy_events(), run=5)
    fileset = Fileset([str(old), str(new)])
    assert fileset.runs.tolist() == [0, 0, 0, 5, 5, 5] and len(fileset.read(0, 6, collections=list(KEYS))) == 6
    assert run(tmp_path, f"{old},{new}") == 0
    per_event = json.loads((tmp_path / "out" / "performance.json").read_text())["results"]["tracks"]["per_event"]
    assert per_event["run_number"] == [0, 0, 0, 5, 5, 5]
    again = write_store(tmp_path / "again.root", toy_events(1), event_ids=[2])  # run 0, like the old store
    with pytest.raises(StoreError, match=r"event id 2 is in \S*old\.root and in \S*again\.root \(entries 2 and 0\)"):
        Fileset([str(old), str(again)])


# -- recotrig simulate records the run -------------------------------------------------------------
@pytest.mark.slow
def test_simulate_records_its_run_default_the_seed(tmp_path):
    def simulate(out: Path, *flags: str) -> dict:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "recotrig.sequences.cli",
                "simulate",
                "-o",
                str(out),
                "-n",
                "2",
                "--mu",
                "1",
                "--seed",
                "5",
                "--no-progress",
                *flags,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout[done.stdout.index("{") :])

    assert simulate(tmp_path / "r7.root", "--run", "7", "--format", "both")["run"] == 7
    assert open_store(tmp_path / "r7.root").runs.tolist() == [7, 7]
    assert open_store(tmp_path / "r7_csv").runs.tolist() == [7, 7]
    assert simulate(tmp_path / "seed.root")["run"] == 5
    assert open_store(tmp_path / "seed.root").runs.tolist() == [5, 5]
    # both number their events from 0, and read together
    fileset = Fileset([str(tmp_path / "r7.root"), str(tmp_path / "seed.root")])
    assert [fileset.key(i) for i in range(4)] == [(7, 0), (7, 1), (5, 0), (5, 1)]
