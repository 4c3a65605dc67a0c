"""Bad input, as a new user would give it: every case must end with the right exit code and a
message naming what is wrong (file, event, column, row; option; steering-file line) — never a
traceback from deep inside a library, never numbers out of garbage."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import uproot

from recotrig.algorithms.toy import ToyReader
from recotrig.io.store import write_store
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


def toy_events(n: int = 3) -> list[dict]:
    toy = ToyReader(vertices=2, tracks_per_vertex=10)
    return [dict(zip(KEYS, toy.read(i))) for i in range(n)]


def replace(collection, **columns):
    data = {k: np.array(v) for k, v in collection.to_arrays().items()}
    data.update(columns)
    return type(collection)(data)


def edited(events: list[dict], name: str, edit) -> list[dict]:
    out = [dict(e) for e in events]
    out[1][name] = edit(out[1][name])
    return out


def with_value(column: str, value: float, row: int = 2):
    def edit(c):
        values = np.array(c[column], dtype=float)
        values[row] = value
        return replace(c, **{column: values})

    return edit


# -- the cases -------------------------------------------------------------------------------------
# each: (name, make(tmp) -> argv for `recotrig`, expected exit code, regex the message must match)
def root_case(name: str, edit, pattern: str, collection: str = "hits"):
    def make(tmp: Path) -> list[str]:
        store = write_store(tmp / f"{name}.root", edited(toy_events(), collection, edit))
        return ["run", str(tmp / "seq.py"), "--input", str(store)]

    return (f"root-{name}", make, 1, pattern)


def csv_case(name: str, damage, pattern: str, code: int = 1):
    def make(tmp: Path) -> list[str]:
        store = write_store(tmp / name, toy_events(), format="trackml")
        damage(Path(store))
        return ["run", str(tmp / "seq.py"), "--input", str(store)]

    return (f"csv-{name}", make, code, pattern)


def option_case(name: str, flags: list[str], pattern: str, sequence: str = "seq"):
    def make(tmp: Path) -> list[str]:
        store = write_store(tmp / "ok.root", toy_events())
        target = str(tmp / "seq.py") if sequence == "seq" else sequence
        return ["run", target, "--input", str(store), *flags]

    return (f"option-{name}", make, 1, pattern)


def steering_case(name: str, text: str, pattern: str):
    def make(tmp: Path) -> list[str]:
        (tmp / "user.py").write_text(text)
        return ["run", str(tmp / "user.py")]

    return (f"steering-{name}", make, 1, pattern)


def simulate_case(name: str, flags: list[str], pattern: str, prepare=None):
    def make(tmp: Path) -> list[str]:
        if prepare:
            prepare(tmp)
        return ["simulate", "-o", str(tmp / "sim.root"), "--no-progress", *flags]

    return (f"simulate-{name}", make, 1, pattern)


def garbage(tmp_name: str, content: bytes):
    def make(tmp: Path) -> list[str]:
        path = tmp / tmp_name
        path.write_bytes(content)
        return ["run", str(tmp / "seq.py"), "--input", str(path)]

    return make


def truncated(tmp: Path) -> list[str]:
    store = write_store(tmp / "t.root", toy_events())
    data = Path(store).read_bytes()
    Path(store).write_bytes(data[: len(data) // 3])
    return ["run", str(tmp / "seq.py"), "--input", str(store)]


def zeroed_basket(tmp: Path) -> list[str]:
    store = write_store(tmp / "b.root", toy_events())
    with uproot.open(store) as f:
        seek = int(f["hits"]["x"].member("fBasketSeek")[0])
    data = bytearray(Path(store).read_bytes())
    data[seek : seek + 64] = bytes(64)
    Path(store).write_bytes(bytes(data))
    return ["run", str(tmp / "seq.py"), "--input", str(store)]


def particles_only(tmp: Path) -> list[str]:
    store = write_store(tmp / "p.root", [{"particles": e["particles"]} for e in toy_events()])
    return ["run", str(tmp / "seq.py"), "--input", str(store)]


def bad_metadata(tmp: Path) -> list[str]:
    store = write_store(tmp / "m.root", toy_events(1), metadata={"detector": {"name": "generic", "field_T": "abc"}})
    return ["run", "vertexing", "--input", str(store), "--dry-run"]


def nonjson_metadata(tmp: Path) -> list[str]:
    path = tmp / "nj.root"
    with uproot.recreate(path) as f:
        f["metadata"] = "not json {"
        f["hits"] = {"event_id": np.array([0], np.int64), "n_hits": np.array([0], np.int32)}
    return ["run", str(tmp / "seq.py"), "--input", str(path)]


def nan_loc0(tmp: Path) -> list[str]:
    events = toy_events()
    for i, e in enumerate(events):
        e["hits"] = replace(e["hits"], loc0=np.where((np.arange(len(e["hits"])) == 4) & (i == 1), np.nan, 0.0))
    store = write_store(tmp / "loc0.root", events)
    return ["run", str(tmp / "seq.py"), "--input", str(store)]


def every_event_bad(tmp: Path) -> list[str]:
    events = toy_events()
    for e in events:
        e["hits"] = with_value("x", np.nan)(e["hits"])
    store = write_store(tmp / "allbad.root", events)
    return ["run", str(tmp / "seq.py"), "--input", str(store), "--error-policy", "skip"]


def rename(old: str, new: str):
    def damage(store: Path) -> None:
        shutil.copy(store / old, store / new)

    return damage


def gzip_copy(store: Path) -> None:
    import gzip

    (store / "event000000001-hits.csv.gz").write_bytes(gzip.compress((store / "event000000001-hits.csv").read_bytes()))


def rewrite_csv(name: str, transform):
    def damage(store: Path) -> None:
        path = store / name
        path.write_text(transform(path.read_text()))

    return damage


def second_line(edit):
    def transform(text: str) -> str:
        lines = text.splitlines()
        lines[1] = edit(lines[1])
        return "\n".join(lines) + "\n"

    return transform


def first_field(value: str):
    return second_line(lambda line: ",".join([value, *line.split(",")[1:]]))


def field(index: int, value: str):
    return second_line(lambda line: ",".join(v if i != index else value for i, v in enumerate(line.split(","))))


def bom(store: Path) -> None:
    path = store / "event000000000-hits.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())


CASES = [
    # ROOT stores: garbage in must not give numbers out
    root_case(
        "duplicate-hit-id",
        lambda h: replace(h, hit_id=np.r_[h.hit_id[0], h.hit_id[:-1]]),
        r"b?\.root, event 1, tree 'hits', column 'hit_id', row 1: hit_id \d+ appears more than once",
    ),
    root_case("nan-x", with_value("x", np.nan), r"event 1, tree 'hits', column 'x', row 2: non-finite value nan"),
    root_case("inf-z", with_value("z", np.inf), r"column 'z', row 2: non-finite value inf"),
    root_case("huge-y", with_value("y", 1e300), r"column 'y', row 2: value 1e\+300 is beyond the physical bound"),
    ("root-nan-loc0", lambda tmp: nan_loc0(tmp), 1, r"column 'loc0', row 4: non-finite value nan"),
    root_case(
        "nan-px", with_value("px", np.nan), r"tree 'particles', column 'px', row 2: non-finite", collection="particles"
    ),
    root_case(
        "unknown-particle",
        lambda t: replace(t, particle_id=np.where(np.arange(len(t)) == 3, 999999, t.particle_id)),
        r"tree 'truth', column 'particle_id', row 3: truth row names particle_id 999999",
        collection="truth",
    ),
    root_case(
        "duplicate-particle",
        lambda p: replace(p, particle_id=np.r_[p.particle_id[0], p.particle_id[:-1]]),
        r"tree 'particles', column 'particle_id', row 1: particle_id \d+ appears more than once",
        collection="particles",
    ),
    root_case(
        "short-truth",
        lambda t: t.select(np.arange(len(t) - 3)),
        r"tree 'hits', column 'hit_id', row \d+: the truth table has \d+ rows for \d+ hits",
        collection="truth",
    ),
    root_case(
        "truth-unknown-hit",
        lambda t: replace(t, hit_id=np.where(np.arange(len(t)) == 0, 10**9, t.hit_id)),
        r"tree 'truth', column 'hit_id', row 0: truth row names hit_id 1000000000",
        collection="truth",
    ),
    root_case(
        "duplicate-vertex",
        lambda v: replace(v, vertex_id=np.r_[v.vertex_id[0], v.vertex_id[:-1]]),
        r"tree 'vertices', column 'vertex_id', row 1: vertex_id \d+ appears more than once",
        collection="vertices",
    ),
    ("root-garbage", garbage("g.root", b"hello, not ROOT"), 1, r"g\.root: not a ROOT file"),
    ("root-empty-file", garbage("e.root", b""), 1, r"e\.root: not a ROOT file"),
    ("root-truncated", truncated, 1, r"t\.root: cannot (open|read|list)"),
    ("root-zeroed-basket", zeroed_basket, 1, r"b\.root.*cannot read entries 0\.\.2"),
    ("root-no-hits", particles_only, 1, r"p\.root: the store has no hits"),
    ("root-metadata-not-json", nonjson_metadata, 1, r"nj\.root: the 'metadata' object is not JSON"),
    ("root-bad-detector-record", bad_metadata, 1, r"m\.root: its metadata does not describe a detector: .*field_T"),
    (
        "root-missing",
        lambda tmp: ["run", str(tmp / "seq.py"), "--input", str(tmp / "nope.root")],
        1,
        r"nope\.root: no such file or directory \(named in the fileset\)",
    ),
    (
        "root-directory",
        lambda tmp: (tmp / "dir.root").mkdir() or ["run", str(tmp / "seq.py"), "--input", str(tmp / "dir.root")],
        1,
        r"dir\.root: directory holds no TrackML event files",
    ),
    ("root-every-event-bad", every_event_bad, 1, r"no event was processed: all events failed"),
    # TrackML CSV stores
    csv_case("bom", bom, r"", code=0),
    csv_case(
        "short-and-long-names",
        rename("event000000001-hits.csv", "event1-hits.csv"),
        r"two hits files for event 1: event000000001-hits\.csv and event1-hits\.csv",
    ),
    csv_case(
        "plain-and-gzip",
        gzip_copy,
        r"two hits files for event 1: event000000001-hits\.csv and "
        r"event000000001-hits\.csv\.gz",
    ),
    csv_case(
        "missing-column",
        rewrite_csv("event000000000-hits.csv", lambda t: t.replace("hit_id,x,", "hit_id,xx,", 1)),
        r"event000000000-hits\.csv, event 0, column 'x': missing column",
    ),
    csv_case(
        "text-in-number",
        rewrite_csv("event000000001-hits.csv", field(1, "abc")),
        r"event000000001-hits\.csv, event 1.*column 'x'",
    ),
    csv_case(
        "empty-file",
        rewrite_csv("event000000002-hits.csv", lambda t: ""),
        r"event000000002-hits\.csv, event 2: the file is empty",
    ),
    csv_case(
        "duplicate-hit-id",
        rewrite_csv("event000000001-hits.csv", first_field("2")),
        r"event 1, tree 'hits', column 'hit_id', row \d: hit_id 2 appears more than once",
    ),
    csv_case(
        "nan-x",
        rewrite_csv("event000000001-hits.csv", field(1, "nan")),
        r"event 1, tree 'hits', column 'x', row 0: non-finite value nan",
    ),
    csv_case(
        "missing-truth", lambda s: (s / "event000000002-truth.csv").unlink(), r"truth file missing for this event"
    ),
    (
        "csv-no-event-files",
        lambda tmp: (tmp / "emptydir").mkdir() or ["run", str(tmp / "seq.py"), "--input", str(tmp / "emptydir")],
        1,
        r"emptydir: directory holds no TrackML event files",
    ),
    # options and commands, checked before any event runs
    option_case(
        "volumes-not-int",
        ["--HitReader.volumes", "7,abc"],
        r"HitReader\.volumes: cannot use '7,abc': "
        r"expected int, got 'abc'",
    ),
    option_case(
        "volumes-absent",
        ["--HitReader.volumes", "99"],
        r"volume selection \[99\] keeps no hit; this "
        r"event's hits are in volumes \[8\]",
    ),
    option_case("negative-pt", ["--HitReader.min_pt", "-5"], r"option 'min_pt' must be >= 0\.0, got -5\.0"),
    option_case("nan-pt", ["--HitReader.min_pt", "nan"], r"option 'min_pt' must be a finite number"),
    option_case("jobs-zero", ["-j", "0"], r"-j must be from 1 to 64, got 0"),
    option_case("jobs-huge", ["-j", "1000"], r"-j must be from 1 to 64, got 1000"),
    option_case("zero-events", ["-n", "0"], r"nothing to run: .* -n 0 selects none"),
    option_case("skip-past-end", ["--skip", "10"], r"nothing to run: the input holds 3 events and --skip 10 is past"),
    option_case("unknown-option", ["--set", "HitReader.nope=1"], r"HitReader has no option 'nope'"),
    option_case("retries-negative", ["--retries", "-1"], r"--retries must be from 0 to 100"),
    option_case(
        "acts-negative-pt",
        ["--ActsCKF.seed_min_pt", "-5", "--dry-run"],
        r"option 'seed_min_pt' must be >= 0\.01",
        sequence="vertexing",
    ),
    option_case(
        "acts-nan-field",
        ["--ActsCKF.field_T", "nan", "--dry-run"],
        r"option 'field_T' must be a finite",
        sequence="vertexing",
    ),
    option_case("bad-choice", ["--HitReader.format", "xml"], r"option 'format' must be one of"),
    # steering files: one line with the file and the line
    steering_case(
        "syntax", "def build(*, input, output):\n    return [\n", r"user\.py:\d+: cannot be loaded: SyntaxError"
    ),
    steering_case("import", "import nonexistent_module_xyz\n", r"user\.py:1: cannot be loaded: ModuleNotFoundError"),
    steering_case(
        "build-raises",
        "def build(*, input, output):\n    x = 1\n    raise RuntimeError('oops')\n",
        r"user\.py:3: build\(\) failed: RuntimeError: oops",
    ),
    steering_case("build-returns-nothing", "def build(*, input, output):\n    pass\n", r"build\(\) returned nothing"),
    steering_case(
        "build-returns-junk", "def build(*, input, output):\n    return [42]\n", r"which is not an Algorithm"
    ),
    steering_case("no-build", "x = 1\n", r"defines no build"),
    # the simulate command
    simulate_case("zero-events", ["-n", "0"], r"-n must be at least 1, got 0"),
    simulate_case("negative-mu", ["-n", "1", "--mu", "-1"], r"option 'mu' must be >= 0\.0"),
    simulate_case("text-mu", ["-n", "1", "--mu", "abc"], r"SimulationReader\.mu: cannot use 'abc': expected float"),
    simulate_case("jobs-zero", ["-n", "1", "-j", "0"], r"-j must be from 1 to 64"),
    simulate_case("exists", ["-n", "1"], r"sim\.root exists", prepare=lambda tmp: (tmp / "sim.root").write_bytes(b"x")),
]


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,make,code,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input(name, make, code, pattern, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "seq.py").write_text(SEQUENCE)
    argv = make(tmp_path)
    if argv[0] == "run" and "-o" not in argv:
        argv += ["-o", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) == code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code:
        assert re.search(pattern, captured.err), captured.err
        assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*")), "a temporary was left behind"
    for name_ in ("comparison.json", "performance.json"):
        if (tmp_path / "out" / name_).exists() and code:
            assert name == "root-every-event-bad"  # only a run that ran (and failed every event) writes its record
