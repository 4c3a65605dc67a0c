"""Every command-line entry point, fuzzed: whatever the arguments, steering file or run record, a
command ends with exit status 0, or with exactly one line on stderr and a non-zero status — never
a traceback (nor the last-resort "internal error" line). Then the crashes once seen, one by one,
and the paths that could not be named before (``a,b.root``, ``ev[1].root``, ``#`` in a list file,
a repeated ``--input``).

No example starts a long job: ``simulate``, ``simulate-l1`` and ``firmware`` always end on an
output that exists, ``train`` on the shipped models' folder (refused), shipped sequences other
than the bundled-store steering files get ``--dry-run``, and every store here holds 3 events."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recotrig.algorithms.toy import ToyReader
from recotrig.io.store import write_store
from recotrig.models import registry
from recotrig.sequences.cli import main

SEQUENCE = """
from recotrig.algorithms.toy import TruthTracker
from recotrig.io.hit_reader import HitReader
from recotrig.metrics.performance import Performance

def build(*, input, output):
    return [HitReader(input=input), TruthTracker(min_hits=3),
            Performance(tracks=["tracks"], output=output, min_hits=3)]
"""
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def toy_events(n: int = 3) -> list[dict]:
    toy = ToyReader(vertices=2, tracks_per_vertex=10)
    return [dict(zip(("hits", "particles", "truth", "vertices"), toy.read(i))) for i in range(n)]


def outcome(argv: list[str]) -> tuple[int, str, str]:
    """Run ``recotrig *argv`` here; (exit status, stdout, stderr), checked against the rule."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as done:  # --help, and argparse's errors
            code = done.code
    text = err.getvalue()
    if isinstance(code, str):
        code, text = 1, text + code + "\n"
    code = code or 0
    lines = [line for line in text.split("\n") if line.strip()]  # what a terminal shows as lines
    assert "Traceback" not in text and "internal error" not in text, (argv, text)
    assert code == 0 or len(lines) == 1, (argv, code, text)
    return code, out.getvalue(), text


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    """A folder of inputs good and bad, copied afresh for every example (outputs may land in it)."""
    root = tmp_path_factory.mktemp("fuzz")
    events = toy_events()
    write_store(root / "ok.root", events)
    write_store(root / "a,b.root", events, event_ids=[10, 11, 12])
    write_store(root / "ev[1].root", events, event_ids=[20, 21, 22])
    write_store(root / "ev#2.root", events, event_ids=[30, 31, 32])
    csv = write_store(root / "csv", events, format="trackml")
    shutil.copytree(csv, root / "huge_csv")
    shutil.copy(Path(csv) / "event000000001-hits.csv", root / "huge_csv" / "event99999999999999999999999-hits.csv")
    (root / "list.txt").write_text("# the stores\nev#2.root\n\na,b.root  # the second\n")
    (root / "garbage.root").write_bytes(b"hello, not ROOT")
    (root / "empty.root").write_bytes(b"")
    (root / "dir").mkdir()
    (root / "nonempty").mkdir()
    (root / "nonempty" / "x").write_text("x")
    (root / "fwbad").mkdir()
    (root / "fwbad" / "firmware.json").write_text("{not json")
    (root / "sim.root").write_bytes(b"x")  # simulate, simulate-l1: the outputs exist
    (root / "sim").mkdir()
    (root / "sim_csv").mkdir()
    (root / "bad.json").write_text("{")
    for name in ("seq.py", "toy.py"):  # toy.py: named like a shipped sequence
        (root / name).write_text(SEQUENCE)
    (root / "seq.txt").write_text(SEQUENCE)
    (root / "toy").write_text("raise RuntimeError('not a sequence')\n")
    with contextlib.chdir(root):
        assert outcome(["run", "seq.py", "-i", "ok.root", "-o", "rec", "--no-progress"])[0] == 0
    return root


@contextlib.contextmanager
def inside(master: Path):
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder) / "w"
        shutil.copytree(master, work)
        with contextlib.chdir(work):
            yield work


_FLAGS: dict[tuple[str, ...], list[str]] = {}


def flags_of(argv: list[str], master: Path) -> list[str]:
    """The flags ``recotrig *argv --help`` lists."""
    if tuple(argv) not in _FLAGS:
        with contextlib.chdir(master):
            code, out, _ = outcome([*argv, "--help"])
        assert code == 0
        _FLAGS[tuple(argv)] = sorted(set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w.-]*)", out)))
    return _FLAGS[tuple(argv)]


def numbers() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            "-1",
            "0",
            "1",
            "3",
            str(2**63),
            str(2**64),
            str(-(2**63) - 1),
            "nan",
            "inf",
            "-inf",
            "1e309",
            "1.5",
            "0x10",
            "1_0",
            "",
        ]
    )


PATHS = [
    "ok.root",
    "csv",
    "huge_csv",
    "garbage.root",
    "empty.root",
    "dir",
    "nonempty",
    "missing.root",
    "a,b.root",
    "ev[1].root",
    "ev#2.root",
    "list.txt",
    "ev*.root",
    "seq.py",
    "bad.json",
    "rec/run.json",
    "fwbad",
    ".",
]


def values() -> st.SearchStrategy[str]:
    text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0/"), max_size=8)
    return (
        numbers()
        | st.sampled_from(
            [
                *PATHS,
                "abc",
                "ü",
                "∞",
                "a,b",
                "1,2,3",
                "x=y",
                "A.b=1",
                "{}",
                "[]",
                "null",
                "true",
                "10kHz",
                "-5Hz",
                "7,abc",
            ]
        )
        | text.filter(lambda s: not s.startswith("--"))
    )


def arguments(flags: list[str], value: st.SearchStrategy[str] | None = None) -> st.SearchStrategy[list[str]]:
    """Up to five flags, most with a value, and maybe a stray positional."""
    value = values() if value is None else value
    one = st.tuples(st.sampled_from(flags), value, st.integers(0, 4)).map(lambda f: [f[0], f[1]][: 1 + bool(f[2])])
    return st.tuples(st.lists(one, max_size=5), st.lists(value, max_size=1)).map(
        lambda g: [x for group in g[0] for x in group] + g[1]
    )


def shipped_digests() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in registry.SHIPPED.iterdir() if p.is_file()}


# -- the fuzz, per entry point --------------------------------------------------------------------------
#: sequences that run for real (3-event stores); any other gets --dry-run
CHEAP = ("seq.py", "toy.py")
RUN_SAFE_VALUES = {
    "-j": ["0", "-1", "65", str(2**63), "x", "", "1"],
    "--jobs": ["0", "65", "1"],
    "--executor": ["process", "x", ""],
    "--workers": ["0", "-1", "65", "x"],
}


@FUZZ
@given(
    data=st.data(),
    sequence=st.sampled_from(
        [*CHEAP, "toy", "vertexing", "tracking", "nosuch", "seq.txt", "dir", "missing.py", "ok.root", "", None]
    ),
)
def test_run(master, data, sequence):
    listed = sequence if sequence in ("toy", "vertexing", "tracking") else "seq.py"
    flags = [f for f in flags_of(["run", listed], master) if f not in RUN_SAFE_VALUES]
    args = data.draw(arguments(flags))
    flag = data.draw(st.sampled_from([None, None, *RUN_SAFE_VALUES]))  # no worker processes or clusters
    if flag is not None:
        args += [flag, data.draw(st.sampled_from(RUN_SAFE_VALUES[flag]))]
    argv = ["run", *([sequence] if sequence is not None else []), *args]
    if sequence not in CHEAP and not (sequence is None and "--config" in args):
        argv.append("--dry-run")
    with inside(master):
        outcome(argv)


@FUZZ
@given(
    store=values(),
    args=arguments(["--format", "--json", "--bogus", "-h"], st.sampled_from(["root", "trackml", "csv", ""]) | values()),
)
def test_info(master, store, args):
    with inside(master):
        outcome(["info", store, *args])


@FUZZ
@given(data=st.data())
def test_simulate(master, data):
    args = data.draw(arguments(flags_of(["simulate"], master)))
    with inside(master):
        outcome(["simulate", *args, "-o", "sim.root"])  # exists: refused before any event


@FUZZ
@given(data=st.data())
def test_simulate_l1(master, data):
    args = data.draw(arguments(flags_of(["simulate-l1"], master)))
    with inside(master):
        outcome(["simulate-l1", *args, "-o", "sim.root"])


@FUZZ
@given(data=st.data(), family=st.sampled_from(["trackformer", "pvfinder", "anomaly"] * 3 + ["", "x", "--help"]))
def test_train(master, data, family):
    before = shipped_digests()
    flags = [
        f
        for f in flags_of(["train", "trackformer" if family not in ("pvfinder", "anomaly") else family], master)
        if f not in ("--replace-shipped", "--output", "--out")
    ]
    args = data.draw(arguments(flags))
    with inside(master) as work, pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECOTRIG_CACHE_DIR", str(work / "cache"))
        code, _, _ = outcome(["train", family, *args, "--output", str(registry.SHIPPED)])  # refused
        assert not (work / "recotrig-models").exists() and not (work / "cache").exists()
    assert code != 0 or "-h" in args or "--help" in args or family == "--help"
    assert shipped_digests() == before


@FUZZ
@given(args=arguments(["-h", "--bogus"]), name=st.sampled_from(registry.available()) | values() | st.none())
def test_models(master, args, name):
    with inside(master):
        outcome(["models", *([name] if name is not None else []), *args])


@FUZZ
@given(
    data=st.data(),
    command=st.sampled_from(["build", "verify", "calibrate"]),
    directory=st.sampled_from(["nonempty", "dir", "missing", "ok.root", "fwbad", ""]),
    model=st.sampled_from(["anomaly-vae-zerobias-mu60", "pvfinder-unet-mu60", "nosuch", "nonempty/x"]) | values(),
)
def test_firmware(master, data, command, directory, model):
    if command == "build":
        argv = ["firmware", model, *data.draw(arguments(flags_of(["firmware"], master))), "-o", "nonempty"]
    else:
        argv = ["firmware", command, directory, *data.draw(arguments(flags_of(["firmware", command], master)))]
        if command == "calibrate" and data.draw(st.integers(0, 3)):
            argv += ["--rate", data.draw(st.sampled_from(["1kHz", "10kHz", "500Hz", "0", "-1Hz", "1e9kHz", "x"]))]
    with inside(master):
        outcome(argv)


STATEMENTS = [
    "",
    "import nonexistent_module_xyz",
    "raise RuntimeError('at import')",
    "__doc__ = 5",
    "DEFAULT_INPUT = 5",
    "DEFAULT_INPUT = 'missing.root'",
    "build = 5",
    "x = (",
    "1 / 0",
]
SIGNATURES = ["*, input, output", "", "x", "*, input", "input, output", "**kw", "*args"]
RESULTS = [
    "None",
    "5",
    "'text'",
    "[5]",
    "{}",
    "set()",
    "[HitReader(input=input)] * 2",
    "(ToyReader(), TruthTracker())",
    "[ToyReader(), ToyReader()]",
    "[ToyReader(name='a'), TruthTracker(name='a')]",
    "(a for a in [ToyReader()])",
    "[ToyReader(vertices='x')]",
    "[ToyReader(name=5)]",
    "[ToyReader(name='')]",
    "[ToyReader(nope=1)]",
    "[HitReader(input=5)]",
    "[HitReader(input=input), TruthTracker(min_hits=3)]",
    "[TruthTracker()]",
    "[ToyReader(), TruthTracker(min_hits=-1)]",
    "raise ValueError('bad')",
    "raise KeyError('k')",
    "[ToyReader(events=2), TruthTracker()]",
    "[ToyReader(events=2)] + 5",
]


@FUZZ
@given(
    statement=st.sampled_from(STATEMENTS),
    signature=st.sampled_from(SIGNATURES),
    result=st.sampled_from(RESULTS),
    args=st.lists(st.sampled_from([["--dry-run"], ["--skip", "1"], ["--skip", "5"], ["--bogus"]]), max_size=2).map(
        lambda groups: [x for g in groups for x in g]
    ),
)
def test_run_steering_files(master, statement, signature, result, args):
    body = result if result.startswith("raise") else f"return {result}"
    text = (
        "from recotrig.algorithms.toy import ToyReader, TruthTracker\n"
        "from recotrig.io.hit_reader import HitReader\n"
        f"{statement}\n\ndef build({signature}):\n    {body}\n"
    )
    with inside(master) as work:
        (work / "steer.py").write_text(text)
        outcome(["run", "steer.py", "--input", "ok.root", *args, "-n", "2", "-o", "out", "--no-progress"])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
FIELDS = [
    (),
    ("record",),
    ("record", "sequence"),
    ("record", "input"),
    ("record", "algorithms"),
    ("record", "algorithms", 0),
    ("record", "algorithms", 0, "name"),
    ("record", "algorithms", 0, "class"),
    ("record", "algorithms", 1, "options"),
    ("record", "algorithms", 1, "options", "min_hits"),
    ("record", "algorithms", 1, "keys"),
    ("record", "algorithms", 1, "keys", "hits"),
    ("record", "entries"),
    ("record", "entries", 1),
    ("record", "error_policy"),
    ("record", "files"),
    ("record", "files", "input"),
    ("record", "files", "input", 0),
    ("record", "files", "input", 0, "path"),
    ("record", "files", "input", 0, "sha256"),
]


@FUZZ
@given(field=st.sampled_from(FIELDS), value=JSON, drop=st.booleans())
def test_run_config_records(master, field, value, drop):
    """A recorded run (seq.py over ok.root) with one field replaced by random JSON, or left out."""
    data = json.loads((master / "rec" / "run.json").read_text())
    if not field:
        data = value
    else:
        parent = data
        for key in field[:-1]:
            parent = parent[key]
        if drop:
            del parent[field[-1]]
        else:
            parent[field[-1]] = copy.deepcopy(value)
    with inside(master) as work:
        (work / "r.json").write_text(json.dumps(data))
        outcome(["run", "--config", "r.json", "-o", "out", "--no-progress"])


# -- the crashes once seen ------------------------------------------------------------------------------
DUPLICATES = """
from recotrig.algorithms.toy import TruthTracker
from recotrig.io.hit_reader import HitReader

def build(*, input, output):
    return [HitReader(input=input), TruthTracker(min_hits=3), TruthTracker(min_hits=4)]
"""

CRASHES = [
    (
        "info-event-number-beyond-int64",
        ["info", "huge_csv"],
        r"^recotrig info: error: file huge_csv/event99999999999999999999999-hits\.csv: the event number "
        r"99999999999999999999999 in the file name does not fit a 64-bit event id$",
    ),
    (
        "run-event-number-beyond-int64",
        ["run", "seq.py", "--input", "huge_csv", "-o", "out"],
        r"^recotrig run: error: file huge_csv/event99999999999999999999999-hits\.csv: the event number",
    ),
    (
        "duplicate-algorithm-names",
        ["run", "dup.py", "--input", "ok.root"],
        r"^recotrig run: error: sequence .*dup\.py: two algorithms are named 'TruthTracker' \(number 2, a TruthTracker, "
        r"and number 3, a TruthTracker\); give each its own name=$",
    ),
    (
        "steering-not-py",
        ["run", "seq.txt", "--input", "ok.root"],
        r"^recotrig run: error: sequence file seq\.txt: a steering file is Python and its name ends in \.py "
        r"\(rename it seq\.py\)$",
    ),
    (
        "steering-py-missing-names-the-shipped-one",
        ["run", "tracking.py"],
        r"^recotrig run: error: sequence file 'tracking\.py' does not exist \(the shipped sequence is 'tracking'\)$",
    ),
    ("steering-directory", ["run", "pkg.py"], r"^recotrig run: error: sequence file 'pkg\.py' is not a file$"),
    (
        "config-algorithms-not-objects",
        ["run", "--config", "algs.json"],
        r"^recotrig run: error: --config algs\.json: the record's 'algorithms' must be a list of objects$",
    ),
    (
        "config-algorithms-not-list",
        ["run", "--config", "algs2.json"],
        r"^recotrig run: error: --config algs2\.json: the record's 'algorithms' must be a list of objects$",
    ),
    (
        "config-options-and-keys-overlap",
        ["run", "--config", "overlap.json", "-o", "out"],
        r"^recotrig run: error: --config overlap\.json: the record's 'algorithms\[1\]\.keys' must be store keys, not "
        r"options \(min_hits is both\)$",
    ),
    (
        "config-names-twice",
        ["run", "--config", "twice.json"],
        r"^recotrig run: error: --config twice\.json: the record's 'algorithms' must be algorithms of distinct names$",
    ),
    (
        "usage-error-one-line",
        ["run", "seq.py", "--bogus"],
        r"^recotrig run: error: unrecognized arguments: --bogus \(recotrig run --help for usage\)$",
    ),
    (
        "usage-error-newline-in-value",
        ["info", "ok.root", "--format", "a\nb"],
        r"^recotrig info: error: argument --format: invalid choice: 'a\\nb'",
    ),
    (
        "train-usage-error",
        ["train", "pvfinder", "--seed", "-1"],
        r"^recotrig train pvfinder: error: argument --seed: must be from 0 to 4294967295, got -1 ",
    ),
]


@pytest.mark.parametrize("argv,pattern", [c[1:] for c in CRASHES], ids=[c[0] for c in CRASHES])
def test_crash_once_seen_is_one_line(master, argv, pattern):
    with inside(master) as work:
        (work / "dup.py").write_text(DUPLICATES)
        (work / "pkg.py").mkdir()
        record = json.loads((work / "rec" / "run.json").read_text())
        (work / "algs.json").write_text(json.dumps({**record, "record": {**record["record"], "algorithms": [1, 2]}}))
        (work / "algs2.json").write_text(json.dumps({"sequence": "toy", "algorithms": "ab"}))
        tracker = next(a for a in record["record"]["algorithms"] if a["name"] == "TruthTracker")
        tracker["keys"]["min_hits"] = 4  # a name both among the options and the keys
        (work / "overlap.json").write_text(json.dumps(record))
        record = json.loads((work / "rec" / "run.json").read_text())
        record["record"]["algorithms"][2]["name"] = "HitReader"
        (work / "twice.json").write_text(json.dumps(record))
        code, _, err = outcome(argv)
    assert code in (1, 2)
    assert re.search(pattern, err.strip()), err


def test_a_file_named_like_a_shipped_sequence_does_not_shadow_it(master):
    """`toy` and `toy.py` in the current directory: `recotrig run toy` is the shipped toy
    sequence; the file runs as toy.py."""
    with inside(master):
        code, out, _ = outcome(["run", "toy", "--dry-run"])
        assert code == 0 and "ToyReader" in out
        code, out, _ = outcome(["run", "toy.py", "--input", "ok.root", "--dry-run"])
        assert code == 0 and "HitReader" in out and "ToyReader" not in out
        code, out, _ = outcome(["run", "toy", "--help"])
        assert code == 0 and "a shipped name means the shipped sequence, even where a file of that name is" in " ".join(
            out.split()
        )


def test_an_unexpected_error_is_one_line_and_debug_shows_it(monkeypatch, capsys):
    from recotrig.sequences import cli

    def broken(argv):
        raise RuntimeError("something\nunforeseen")

    monkeypatch.setitem(cli.COMMANDS, "models", broken)
    assert main(["models"]) == 1
    assert capsys.readouterr().err == (
        "recotrig models: internal error: RuntimeError: something\\nunforeseen (--debug shows the traceback)\n"
    )
    with pytest.raises(RuntimeError, match="unforeseen"):
        main(["models", "--debug"])


# -- paths that can be named ----------------------------------------------------------------------------
def ran(argv: list[str], out: str = "out") -> dict:
    """Run ``argv`` into ``out``; the files and entries it read, and how many events."""
    code, _, err = outcome([*argv, "-o", out, "--no-progress"])
    assert code == 0, err
    result = json.loads((Path(out) / "run.json").read_text())
    return {
        "files": [(s["file"], s["entries"]) for s in result["record"]["fileset"]],
        "input": result["record"]["input"],
        "processed": result["processed"],
    }


@pytest.mark.parametrize("name", ["a,b.root", "ev[1].root", "ev#2.root"])
def test_a_store_whose_name_looks_like_a_list_or_a_glob(master, name):
    with inside(master):
        assert ran(["run", "seq.py", "--input", name]) == {"files": [(name, [0, 3])], "input": name, "processed": 3}
        code, out, _ = outcome(["info", name])
        assert code == 0 and out.startswith(f"{name}: root store, 3 events (event ids ")


def test_a_list_file_with_hash_in_a_name_and_comments(master):
    with inside(master):
        assert ran(["run", "seq.py", "--input", "list.txt"])["files"] == [("ev#2.root", [0, 3]), ("a,b.root", [0, 3])]


def test_a_repeated_input_takes_each_path_literally(master):
    with inside(master):
        got = ran(["run", "seq.py", "--input", "ev[1].root", "-i", "a,b.root", "--input", "ev#2.root"])
        assert got["files"] == [("ev[1].root", [0, 3]), ("a,b.root", [0, 3]), ("ev#2.root", [0, 3])]
        assert got["processed"] == 9
        # the record re-runs the same three files
        assert ran(["run", "--config", "out/run.json"], out="again")["files"] == got["files"]
        # each value is one path: no glob, no comma list, no list file
        for value, named in [("ev*.root", "ev*.root"), ("ok.root,csv", "ok.root,csv")]:
            code, _, err = outcome(["run", "seq.py", "--input", "ok.root", "--input", value, "-o", "out2"])
            assert code == 1 and f"file {named}: no such file or directory (named in the fileset)" in err
        assert not Path("out2").exists()
        # a single --input keeps the glob and the comma list
        assert ran(["run", "seq.py", "--input", "ev*.root"])["files"] == [("ev#2.root", [0, 3]), ("ev[1].root", [0, 3])]
        assert [f for f, _ in ran(["run", "seq.py", "--input", "ok.root,ev#2.root"])["files"]] == [
            "ok.root",
            "ev#2.root",
        ]


def test_firmware_inputs_are_each_one_path(tmp_path):
    """`recotrig firmware verify/calibrate --input A B`: each store literally, commas included."""
    from recotrig.sequences.firmware_cmd import store_features
    from recotrig.sequences.samples import L1_SAMPLE

    signals = [Path(p) for p in L1_SAMPLE.split(",") if "zerobias" not in p][:2]
    named = [tmp_path / "ato,4l.root", tmp_path / "lq[1].root"]
    for source, target in zip(signals, named):
        shutil.copy(source, target)
    x, processes = store_features([str(p) for p in named])
    reference, codes = store_features([str(p) for p in signals])
    assert np.array_equal(x, reference) and np.array_equal(processes, codes) and len(x) == 1000


def test_help_says_how_a_list_is_split(master):
    with contextlib.chdir(master):
        code, out, _ = outcome(["run", "seq.py", "--help"])
    text = " ".join(out.split())
    assert code == 0
    assert (
        "Given once: a .txt file lists one path per line (relative to its folder; '#' at the start of a line "
        "or after a blank starts a comment); any other path that exists is taken as it is (a,b.root and "
        "ev[1].root are names); else a glob ('ev/*.root', sorted) or a comma-separated list." in text
    )
    assert "Given several times, each value is one path, taken literally: no glob, no comma split" in text


def test_event_ids_are_what_the_files_hold(master):
    """The literal names read the right stores: event ids 10-12 from a,b.root, 20-22 from ev[1].root."""
    from recotrig.io.fileset import Fileset

    with contextlib.chdir(master):
        assert np.array_equal(Fileset("a,b.root").event_ids, [10, 11, 12])
        assert np.array_equal(Fileset("ev[1].root\na,b.root").event_ids, [20, 21, 22, 10, 11, 12])
        assert np.array_equal(Fileset("list.txt").event_ids, [30, 31, 32, 10, 11, 12])
