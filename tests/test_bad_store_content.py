"""Stores whose content is damaged in ways that used to read as other numbers: a counter that
disagrees with a branch's own per-entry sizes (rows moved between events), values that a cast to
the declared dtype would change (NaN or 1.5 into an id, 2**32 + 8 into int32, a uint64 above
2**63, a boolean x) and values outside their physical domain (a charge of 1e9, a time of 1e300, a
negative TrackML weight). Each must end with exit 1 and one line naming the file, the event, the
collection, the column and (where it applies) the row, with no output committed."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import pytest
import uproot

from recotrig.algorithms.toy import ToyReader
from recotrig.edm import Hits, Particles, Tracks, TruthVertices
from recotrig.framework.collection import ColumnError, lossless
from recotrig.io.store import StoreError, open_store, write_store
from recotrig.io.validate import validate_event
from recotrig.sequences.cli import main

KEYS = ("hits", "particles", "truth", "vertices")
SEQUENCE = """
from recotrig.algorithms.toy import TruthTracker
from recotrig.io.hit_reader import HitReader
from recotrig.metrics.performance import Performance

def build(*, input, output):
    return [HitReader(input=input), TruthTracker(min_hits=3),
            Performance(tracks=["tracks"], output=output, min_hits=3)]
"""
DATA = Path(__file__).resolve().parent.parent / "data"


def toy_events(n: int = 3) -> list[dict]:
    toy = ToyReader(vertices=2, tracks_per_vertex=10)  # 166, 228 and 157 hits
    return [dict(zip(KEYS, toy.read(i))) for i in range(n)]


# -- stores damaged below the project's writer: rewritten branch by branch with uproot ------------
Branches = dict[str, Any]


def rewrite(source: Path, target: Path, edits: dict[str, Callable[[Branches], Branches]]) -> Path:
    """Copy a store as uproot reads it (titles, metadata and schema kept), every branch written on
    its own (a jagged one with its own counter ``n_<branch>``, so the tree's ``n_<tree>`` is a
    plain branch that may disagree), after ``edits[tree](branches)``."""
    with uproot.open(source) as file:
        strings = {key: str(file[key]) for key in ("metadata", "schema")}
        trees = {
            name: (file[name].title, file[name].arrays(library="ak", how=dict))
            for name, kind in file.classnames(cycle=False).items()
            if kind == "TTree"
        }
    with uproot.recreate(target) as out:
        for key, text in strings.items():
            out[key] = text
        for name, (title, branches) in trees.items():
            branches = edits.get(name, lambda b: b)(dict(branches))
            jagged = {b for b, v in branches.items() if v.ndim > 1}
            data = {
                b: v if b in jagged else ak.to_numpy(v)
                for b, v in branches.items()
                if not (b.startswith("n_") and b[2:] in jagged)
            }  # each jagged branch's counter comes anew
            out.mktree(
                name,
                {b: v.type.content if b in jagged else v.dtype for b, v in data.items()},
                title=title,
                counter_name=lambda b: f"n_{b}",
            )
            out[name].extend(data)
    return target


def good_store(tmp: Path, events: list[dict] | None = None) -> Path:
    return write_store(tmp / "good.root", events or toy_events())


def damaged(name: str, tree: str, edit: Callable[[Branches], Branches], events: Callable[[], list[dict]] = toy_events):
    def make(tmp: Path) -> Path:
        return rewrite(good_store(tmp, events()), tmp / f"{name}.root", {tree: edit})

    return make


def value(column: str, new: Any, dtype: Any, *, event: int = 1, row: int = 2):
    """The column as ``dtype`` with row ``row`` of event ``event`` set to ``new``."""

    def edit(branches: Branches) -> Branches:
        counts = ak.num(branches[column], axis=1)
        flat = ak.to_numpy(ak.flatten(branches[column])).astype(dtype)
        flat[int(np.sum(counts[:event])) + row] = new
        return {**branches, column: ak.unflatten(flat, counts)}

    return edit


def as_dtype(column: str, dtype: Any):
    def edit(branches: Branches) -> Branches:
        return {**branches, column: ak.values_astype(branches[column], dtype)}

    return edit


def resplit(columns: list[str], move: int, *, first: int = 0):
    """Move ``move`` rows of ``columns`` from event ``first + 1`` to event ``first`` (totals kept)."""

    def edit(branches: Branches) -> Branches:
        out = dict(branches)
        for column in columns:
            counts = np.asarray(ak.num(out[column], axis=1))
            counts[first] += move
            counts[first + 1] -= move
            out[column] = ak.unflatten(ak.flatten(out[column]), counts)
        return out

    return edit


def recount(counter: str, move: int):
    """The counter ``counter`` says ``move`` more rows in event 0 and fewer in event 1."""

    def edit(branches: Branches) -> Branches:
        counts = np.array(branches[counter])
        counts[0] += move
        counts[1] -= move
        return {**branches, counter: ak.Array(counts)}

    return edit


# -- stores written by the project with values outside their domain --------------------------------
def written(name: str, collection: str, column: str, new: Any, *, row: int = 2, fmt: str = "root"):
    def make(tmp: Path) -> Path:
        events = toy_events()
        part = events[1][collection]
        data = {k: np.array(v) for k, v in part.to_arrays().items()}
        data[column] = data[column] if column in data else np.full(len(part), 0.01)
        data[column] = data[column].astype(np.result_type(data[column], np.asarray(new)))
        data[column][row] = new
        if column not in events[0][collection]:  # a new optional column: every event has it
            for event in (events[0], events[2]):
                event[collection] = event[collection].with_columns(**{column: np.full(len(event[collection]), 0.01)})
        events[1][collection] = type(part)(data)
        return write_store(tmp / (f"{name}.root" if fmt == "root" else name), events, format=fmt)

    return make


# each: (name, make(tmp) -> store, regex the one-line message must match)
CASES = [
    # 1. counters against the branches' own per-entry sizes: the rows of event 0 and 1 must not mix
    (
        "counter-shifted",
        damaged("counter-shifted", "hits", recount("n_hits", 62)),
        r"counter-shifted\.root, event 0, tree 'hits', column '\w+': the branch holds 166 values in this event where "
        r"the counter 'n_hits' says 228",
    ),
    (
        "one-branch-shifted",
        damaged("one-branch-shifted", "hits", resplit(["x"], 62)),
        r"one-branch-shifted\.root, event 0, tree 'hits', column 'x': the branch holds 228 values in this event where "
        r"the counter 'n_hits' says 166",
    ),
    (
        "truth-branch-shifted",
        damaged("truth-branch-shifted", "truth", resplit(["particle_id"], -5, first=1)),
        r"truth-branch-shifted\.root, event 1, tree 'truth', column 'particle_id': the branch holds 223 values in "
        r"this event where the counter 'n_truth' says 228",
    ),
    (
        "particles-branch-shifted",
        damaged("particles-branch-shifted", "particles", resplit(["q", "px"], 1)),
        r"particles-branch-shifted\.root, event 0, tree 'particles', column '(q|px)': the branch holds 21 values",
    ),
    # 2. casts to the declared dtype that would change a value
    (
        "nan-hit-id",
        damaged("nan-hit-id", "hits", value("hit_id", np.nan, np.float64)),
        r"nan-hit-id\.root, event 1, tree 'hits', column 'hit_id', row 2: value nan cannot be read as int64: "
        r"not an integer",
    ),
    (
        "fractional-hit-id",
        damaged("fractional-hit-id", "hits", value("hit_id", 1.5, np.float64)),
        r"fractional-hit-id\.root, event 1, tree 'hits', column 'hit_id', row 2: value 1\.5 cannot be read as int64: "
        r"not an integer",
    ),
    (
        "uint64-hit-id",
        damaged("uint64-hit-id", "hits", value("hit_id", 2**63 + 5, np.uint64)),
        r"uint64-hit-id\.root, event 1, tree 'hits', column 'hit_id', row 2: value 9223372036854775813 cannot be read "
        r"as int64: out of range",
    ),
    (
        "wide-volume-id",
        damaged("wide-volume-id", "hits", value("volume_id", 2**32 + 8, np.int64)),
        r"wide-volume-id\.root, event 1, tree 'hits', column 'volume_id', row 2: value 4294967304 cannot be read as "
        r"int32: out of range",
    ),
    (
        "fractional-charge",
        damaged("fractional-charge", "particles", value("q", 0.4, np.float64)),
        r"fractional-charge\.root, event 1, tree 'particles', column 'q', row 2: value 0\.4 cannot be read as int32: "
        r"not an integer",
    ),
    (
        "boolean-x",
        damaged("boolean-x", "hits", as_dtype("x", np.bool_)),
        r"boolean-x\.root, event 0, tree 'hits', column 'x', row 0: value True cannot be read as float64: a boolean "
        r"is not a number",
    ),
    (
        "infinite-truth-particle",
        damaged("infinite-truth-particle", "truth", value("particle_id", np.inf, np.float64)),
        r"infinite-truth-particle\.root, event 1, tree 'truth', column 'particle_id', row 2: value inf cannot be read "
        r"as int64: not an integer",
    ),
    (
        "huge-float-vertex-id",
        damaged("huge-float-vertex-id", "vertices", value("vertex_id", 1e19, np.float64, row=1)),
        r"huge-float-vertex-id\.root, event 1, tree 'vertices', column 'vertex_id', row 1: value 1e\+19 cannot be "
        r"read as int64: out of range",
    ),
    (
        "negative-geometry-id",
        damaged(
            "negative-geometry-id",
            "hits",
            value("geometry_id", -1, np.int64),
            lambda: [
                {**e, "hits": e["hits"].with_columns(geometry_id=np.arange(len(e["hits"]), dtype=np.uint64))}
                for e in toy_events()
            ],
        ),
        r"negative-geometry-id\.root, event 1, tree 'hits', column 'geometry_id', row 2: value -1 cannot be read as "
        r"uint64: out of range",
    ),
    (
        "hard-scatter-two",
        damaged(
            "hard-scatter-two",
            "vertices",
            value("is_hard_scatter", 2, np.int32, row=0),
            lambda: [
                {**e, "vertices": e["vertices"].with_columns(is_hard_scatter=np.zeros(len(e["vertices"]), bool))}
                for e in toy_events()
            ],
        ),
        r"hard-scatter-two\.root, event 1, tree 'vertices', column 'is_hard_scatter', row 0: value 2 cannot be read "
        r"as bool",
    ),
    # 4. values outside their physical domain (io/validate.py DOMAINS)
    (
        "charge-1e9",
        written("charge-1e9", "particles", "q", 10**9),
        r"charge-1e9\.root, event 1, tree 'particles', column 'q', row 2: value 1000000000 is not an allowed value "
        r"\(q in \{-1, 0, 1\}\)",
    ),
    (
        "charge-two",
        written("charge-two", "particles", "q", -2, row=4),
        r"charge-two\.root, event 1, tree 'particles', column 'q', row 4: value -2 is not an allowed value",
    ),
    (
        "time-1e300",
        written("time-1e300", "hits", "t", 1e300),
        r"time-1e300\.root, event 1, tree 'hits', column 't', row 2: value 1e\+300 is beyond the physical bound "
        r"\|t\| <= 1e\+06",
    ),
    (
        "particle-time",
        written("particle-time", "particles", "vt", -2e6),
        r"particle-time\.root, event 1, tree 'particles', column 'vt', row 2: value -2000000\.0 is beyond the physical "
        r"bound \|vt\| <= 1e\+06",
    ),
    (
        "negative-weight",
        written("negative-weight", "truth", "weight", -0.5),
        r"negative-weight\.root, event 1, tree 'truth', column 'weight', row 2: value -0\.5 is out of range "
        r"\(weight >= 0\)",
    ),
    (
        "negative-hit-id",
        written("negative-hit-id", "hits", "hit_id", -7),
        r"negative-hit-id\.root, event 1, tree 'hits', column 'hit_id', row 2: value -7 is out of range \(hit_id >= 0\)",
    ),
    (
        "negative-volume",
        written("negative-volume", "hits", "volume_id", -8),
        r"negative-volume\.root, event 1, tree 'hits', column 'volume_id', row 2: value -8 is out of range",
    ),
    (
        "csv-negative-weight",
        written("csv-negative-weight", "truth", "weight", -1e-3, fmt="trackml"),
        r"csv-negative-weight, event 1, tree 'truth', column 'weight', row 2: value -0\.001 "
        r"is out of range \(weight >= 0\)",
    ),
    (
        "csv-charge-1e9",
        written("csv-charge-1e9", "particles", "q", 10**9, fmt="trackml"),
        r"csv-charge-1e9, event 1, tree 'particles', column 'q', row 2: value 1000000000 is not an "
        r"allowed value",
    ),
]


def test_there_are_at_least_15_cases():
    assert len(CASES) >= 15 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,make,pattern", CASES, ids=[c[0] for c in CASES])
def test_damaged_store_is_refused_naming_where(name, make, pattern, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "seq.py").write_text(SEQUENCE)
    store = make(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "seq.py"), "--input", str(store), "-o", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and re.search(pattern, lines[0]), err
    assert not out.exists(), "a run over a damaged store committed outputs"
    assert not list(tmp_path.rglob("*.tmp")), "a temporary was left behind"


# -- the reading path alone: jagged and fixed-shape columns, and the error's attributes ------------
def tracks_store(tmp: Path) -> Path:
    events = [
        {"tracks": Tracks(hit_ids=[[1, 2, 3], [4, 5]], cov=np.ones((2, 6, 6)))},
        {"tracks": Tracks(hit_ids=[[6], [7, 8], [9, 10, 11]], cov=np.full((3, 6, 6), 2.0))},
    ]
    return write_store(tmp / "tracks.root", events, event_ids=[10, 11])


@pytest.mark.parametrize(
    "column,edit,pattern",
    [
        (
            "hit_ids",
            resplit(["hit_ids"], 1),
            r"event 10, tree 'tracks', column 'hit_ids': the branch holds 6 values in this event where the sum of "
            r"'hit_ids_count' says 5",
        ),
        (
            "hit_ids_count",
            resplit(["hit_ids_count"], 1),
            r"event 10, tree 'tracks', column 'hit_ids_count': the branch holds 3 values in this event where the counter "
            r"'n_tracks' says 2",
        ),
        (
            "cov",
            resplit(["cov"], 36),
            r"event 10, tree 'tracks', column 'cov': the branch holds 108 values in this event where the counter "
            r"'n_tracks' \(x 36 values a row\) says 72",
        ),
    ],
)
def test_jagged_and_fixed_branches_agree_with_the_counter_entry_by_entry(tmp_path, column, edit, pattern):
    store = rewrite(tracks_store(tmp_path), tmp_path / "bad.root", {"tracks": edit})
    with pytest.raises(StoreError, match=pattern) as caught:
        open_store(store).read()
    assert (caught.value.path, caught.value.event, caught.value.tree, caught.value.column) == (
        str(store),
        10,
        "tracks",
        column,
    )


def test_a_lossy_cast_in_a_store_is_a_store_error_with_its_row(tmp_path):
    store = rewrite(good_store(tmp_path), tmp_path / "nan.root", {"hits": value("hit_id", np.nan, np.float64)})
    with pytest.raises(StoreError) as caught:
        open_store(store).read()
    error = caught.value
    assert (error.path, error.event, error.tree, error.column, error.row) == (str(store), 1, "hits", "hit_id", 2)


def acts_particles(path: Path, **changes: Any) -> Path:
    """A particles tree with the branches of ACTS's RootParticleWriter (each vector with its own
    counter, as ACTS writes them), ``changes`` replacing branches."""
    f32 = np.float32
    branches = {
        "event_id": np.array([4, 5], np.uint32),
        "particle_type": ak.Array([[211, -211, 22], [13]]),
        **{b: ak.values_astype(ak.Array([[0.1, 0.2, 5.0], [1.0]]), f32) for b in ("vx", "vy", "vz", "px", "py", "pz")},
        "q": ak.values_astype(ak.Array([[1.0, -1.0, 0.0], [-1.0]]), f32),
        "particle_id": ak.values_astype(ak.Array([[1, 2, 3], [1]]), np.uint64),
        **changes,
    }
    with uproot.recreate(path) as file:
        file.mktree(
            "particles", {k: v.type.content if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        ).extend(branches)
    return path


@pytest.mark.parametrize(
    "changes,pattern,row",
    [
        (
            {"q": ak.values_astype(ak.Array([[1.0, -1.0], [0.0, -1.0]]), np.float32)},
            r"event 4, tree 'particles', column 'q': the branch holds 2 values in this event where the branch 'vx' says 3",
            None,
        ),
        (
            {"q": ak.values_astype(ak.Array([[1.0, -1.0, 0.0], [0.4]]), np.float32)},
            r"event 5, tree 'particles', column 'q', row 0: value 0\.4\d* cannot be read as int32: not an integer",
            0,
        ),
    ],
)
def test_acts_particles_are_checked_like_recotrig_trees(tmp_path, changes, pattern, row):
    path = acts_particles(tmp_path / "acts.root", **changes)
    with pytest.raises(StoreError, match=pattern) as caught:
        open_store(path).read()
    assert (caught.value.path, caught.value.tree, caught.value.column, caught.value.row) == (
        str(path),
        "particles",
        "q",
        row,
    )
    assert acts_particles(tmp_path / "good.root") and len(open_store(tmp_path / "good.root").read()) == 2


# -- the conversion rule itself ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "values,dtype",
    [
        (np.array([1, -2], np.int32), np.int64),
        (np.array([0.1, -1e30], np.float32), np.float64),
        (np.array([3.0, -4.0, 2.0**62]), np.int64),  # integral floats in range
        (np.array([0, 1], np.int64), np.bool_),
        (np.array([0.0, 1.0]), np.bool_),
        (np.array([2**53, -(2**53)], np.int64), np.float64),
        (np.array([2**63 - 1], np.uint64), np.int64),
        (np.array([0.1, 3.4e38]), np.float32),  # rounded to the declared precision, not overflowing
        (np.array([1.0, 2.0], ">f8"), np.float64),
    ],
)
def test_lossless_conversions_pass(values, dtype):
    out = lossless(values, dtype)
    assert out.dtype == np.dtype(dtype)
    assert np.array_equal(out.astype(values.dtype), values) or dtype == np.float32


@pytest.mark.parametrize(
    "values,dtype,why",
    [
        (np.array([1.0, np.nan]), np.int64, r"value nan cannot be read as int64: not an integer"),
        (np.array([1.0, -np.inf]), np.int32, r"value -inf cannot be read as int32: not an integer"),
        (np.array([1.0, 0.4]), np.int32, r"value 0\.4 .*not an integer"),
        (np.array([1.0, 2.0**63]), np.int64, r"value 9\.223372036854776e\+18 .*out of range for int64"),
        (np.array([1.0, -1.0]), np.uint64, r"value -1\.0 .*out of range for uint64"),
        (np.array([1, 2**32 + 8]), np.int32, r"value 4294967304 .*out of range for int32"),
        (np.array([1, 2**63 + 1], np.uint64), np.int64, r"value 9223372036854775809 .*out of range for int64"),
        (np.array([1, -1]), np.uint64, r"value -1 .*out of range for uint64"),
        (np.array([1, 2**53 + 1]), np.float64, r"value 9007199254740993 .*float64 cannot hold it exactly"),
        (np.array([False, True]), np.float64, r"value False .*a boolean is not a number"),
        (np.array([True]), np.int32, r"a boolean is not a number"),
        (np.array([0, 2]), np.bool_, r"value 2 cannot be read as bool: a boolean is 0 or 1"),
        (np.array([0.0, 0.5]), np.bool_, r"value 0\.5 .*a boolean is 0 or 1"),
        (np.array([1.0, 1e300]), np.float32, r"value 1e\+300 cannot be read as float32: too large"),
    ],
)
def test_conversions_that_change_a_value_are_refused(values, dtype, why):
    with pytest.raises(ValueError, match=why) as caught:
        lossless(values, dtype)
    assert caught.value.index == (0 if values.dtype == np.bool_ else 1)  # the first value it would change


def test_collections_name_the_column_and_row_of_a_lossy_value():
    with pytest.raises(ColumnError, match=r"Hits: column 'hit_id', row 1: value nan cannot be read as int64") as c:
        Hits(hit_id=[1.0, np.nan], x=[0.0, 0.0], y=[0.0, 0.0], z=[0.0, 0.0])
    assert (c.value.column, c.value.row) == ("hit_id", 1)
    with pytest.raises(ColumnError, match=r"Tracks: column 'hit_ids', row 2: value 4\.5") as c:
        Tracks(hit_ids=[[1.0], [2.0, 3.0], [4.5]])
    assert (c.value.column, c.value.row) == ("hit_ids", 2)
    cov = np.ones((3, 6, 6), np.int64)
    cov[1, 2, 3] = 2**62 + 1
    with pytest.raises(ColumnError, match=r"Tracks: column 'cov', row 1: value 4611686018427387905") as c:
        Tracks(hit_ids=[[1], [2], [3]], cov=cov)
    with pytest.raises(ColumnError, match=r"Particles: column 'q', row 0: value 0\.4"):
        Particles(particle_id=[1], vx=[0.0], vy=[0.0], vz=[0.0], px=[1.0], py=[0.0], pz=[0.0], q=[0.4])
    with pytest.raises(ColumnError, match=r"TruthVertices: column 'is_hard_scatter', row 1: value 2"):
        TruthVertices(vertex_id=[1, 2], x=[0.0, 0.0], y=[0.0, 0.0], z=[0.0, 0.0], is_hard_scatter=[1, 2])


# -- no false alarms ---------------------------------------------------------------------------------
def test_a_good_store_reads_identically_after_an_uproot_rewrite(tmp_path, capsys):
    events = toy_events()
    store = good_store(tmp_path)
    copy = rewrite(store, tmp_path / "copy.root", {})
    for path in (store, copy):
        got = open_store(path).read()
        assert all(got[i][k].equals(events[i][k]) for i in range(len(events)) for k in KEYS)
        for i, event in enumerate(got):
            validate_event(event, path=path, event_id=i)
    (tmp_path / "seq.py").write_text(SEQUENCE)
    argv = ["run", str(tmp_path / "seq.py"), "--input", str(copy), "-o", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "performance.json").exists()


@pytest.mark.parametrize("path", sorted(DATA.glob("*.root")), ids=lambda p: p.name)
def test_the_bundled_samples_read_and_validate(path):
    store = open_store(path)
    events = list(store.read(0, min(2, store.n_events)))
    assert len(events) == min(2, store.n_events) > 0
    for entry, event in enumerate(events):
        validate_event(event, path=path, event_id=int(store.event_ids[entry]))  # raises StoreError if not


def test_skip_policy_skips_only_the_event_a_cast_refuses(tmp_path):
    """A value refused while a chunk is read fails its own event, not the whole chunk: under
    --error-policy skip the other events of the chunk are processed."""
    (tmp_path / "seq.py").write_text(SEQUENCE)
    store = damaged("nan-hit-id", "hits", value("hit_id", np.nan, np.float64))(tmp_path)
    assert (
        main(
            [
                "run",
                str(tmp_path / "seq.py"),
                "--input",
                str(store),
                "-o",
                str(tmp_path / "out"),
                "--error-policy",
                "skip",
                "--no-progress",
            ]
        )
        == 0
    )
    import json

    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["processed"] == 2
    assert [(f["event_id"], f["algorithm"]) for f in record["failures"]] == [(1, "HitReader")]
    assert "column 'hit_id', row 2" in record["failures"][0]["error"]
