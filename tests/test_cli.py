"""The command line: option overrides, --help listing, dry run, user sequence files, -j."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from recotrig.framework import ConfigError
from recotrig.sequences.cli import configure_run, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recotrig.sequences.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_overrides_flag_and_set_styles(tmp_path):
    _, seq, _ = configure_run(
        [
            "toy",
            "-o",
            str(tmp_path),
            "--ToyReader.vertices",
            "9",
            "--set",
            "ZHistogramVertexer.bin_width=2.5",
            "--set",
            "TruthTracker.tracks=trk",
            "--ZHistogramVertexer.tracks",
            "trk",
            "--Performance.tracks",
            "trk",
        ]
    )
    assert seq.algorithm("ToyReader").vertices == 9
    assert seq.algorithm("ZHistogramVertexer").bin_width == 2.5
    assert seq.algorithm("TruthTracker").options()["tracks"] == "trk"
    assert seq.algorithm("Performance").keys("tracks") == ["trk"]
    seq.plan()  # still consistent after renaming every end
    _, broken, _ = configure_run(["toy", "-o", str(tmp_path), "--set", "TruthTracker.tracks=trk"])
    with pytest.raises(ConfigError, match="reads key 'tracks', which no algorithm produces; similar keys: 'trk'"):
        broken.plan()


def test_override_errors_are_clear(capsys, tmp_path):
    assert main(["run", "toy", "-o", str(tmp_path), "--set", "TruthTracker.nope=1"]) == 1
    assert "TruthTracker has no option 'nope'" in capsys.readouterr().err
    assert main(["run", "toy", "-o", str(tmp_path), "--ToyReader.events", "many"]) == 1
    assert "ToyReader.events: cannot use 'many'" in capsys.readouterr().err
    assert main(["run", "nosuchsequence"]) == 1
    assert "unknown sequence 'nosuchsequence'" in capsys.readouterr().err


def test_help_lists_every_algorithm_option():
    out = run_cli("run", "toy", "--help")
    assert out.returncode == 0
    for flag in (
        "--ToyReader.vertices",
        "--TruthTracker.min_hits",
        "--ZHistogramVertexer.bin_width",
        "--SummaryWriter.path",
        "--TruthTracker.hits",
    ):
        assert flag in out.stdout


def test_dry_run_prints_graph_and_writes_dot(tmp_path):
    dot = tmp_path / "flow.dot"
    out = run_cli("run", "toy", "--dry-run", "--dot", str(dot), "-o", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert "2. TruthTracker" in out.stdout and "in  hits: Hits <- 'hits' from ToyReader" in out.stdout
    assert '"ToyReader" -> "TruthTracker" [label="hits"];' in dot.read_text()
    assert not (tmp_path / "out").exists()  # nothing ran


def test_run_writes_outputs_and_timing(tmp_path):
    out = run_cli("run", "toy", "-n", "5", "--skip", "2", "-j", "2", "-o", str(tmp_path), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "TruthTracker" in out.stdout and "5 events processed" in out.stdout
    import uproot

    timing = uproot.open(tmp_path / "timing.root")["timing"].arrays(library="np")
    assert list(timing["event_id"]) == [2, 3, 4, 5, 6]
    assert set(timing) >= {"ToyReader", "TruthTracker", "SummaryWriter"} and all(timing["TruthTracker"] > 0)
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["record"]["entries"] == [2, 7] and report["record"]["sequence"] == "toy"
    assert report["processed"] == 5 and "jobs" not in report["record"]
    timing_json = json.loads((tmp_path / "timing.json").read_text())
    assert timing_json["jobs"] == 2 and timing_json["wall_s"] > 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["event_id"] for r in summary["events"]] == [2, 3, 4, 5, 6]


def test_user_sequence_file(tmp_path):
    steering = tmp_path / "mine.py"
    steering.write_text(
        "from recotrig.framework import Algorithm, Option\n"
        "from recotrig.edm import Tracks, Vertices\n"
        "from recotrig.algorithms.toy import ToyReader, TruthTracker, SummaryWriter\n"
        "class Widest(Algorithm):\n"
        "    '''Keeps the track with the most hits as a one-row vertex list.'''\n"
        "    outputs = ('vertices',)\n"
        "    scale = Option(1.0, 'z scale')\n"
        "    def execute(self, tracks: Tracks) -> Vertices:\n"
        "        return Vertices(x=[0.0], y=[0.0], z=[self.scale * float(tracks.z0[0])])\n"
        "def build(*, input, output):\n"
        "    return [ToyReader(events=4), TruthTracker(), Widest(),\n"
        "            SummaryWriter(path=output + '/summary.json')]\n"
    )
    out = run_cli("run", str(steering), "-o", str(tmp_path / "o"), "--Widest.scale", "2", "-j", "2", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "Widest" in out.stdout
    rows = json.loads((tmp_path / "o" / "summary.json").read_text())["events"]
    assert [r["vertices"] for r in rows] == [1, 1, 1, 1]


@pytest.mark.parametrize("args,code", [(["--help"], 0), ([], 2)])
def test_top_level_usage(args, code):
    out = run_cli(*args)
    assert "recotrig run" in out.stdout and out.returncode == code


def test_config_reruns_a_recorded_run_exactly(tmp_path):
    first = run_cli(
        "run",
        "toy",
        "-n",
        "4",
        "--skip",
        "1",
        "--ToyReader.vertices",
        "3",
        "--TruthTracker.min_hits",
        "4",
        "-o",
        str(tmp_path / "a"),
        "--no-progress",
    )
    assert first.returncode == 0, first.stderr
    again = run_cli(
        "run", "--config", str(tmp_path / "a" / "run.json"), "-o", str(tmp_path / "b"), "-j", "2", "--no-progress"
    )
    assert again.returncode == 0, again.stderr
    a = json.loads((tmp_path / "a" / "run.json").read_text())
    b = json.loads((tmp_path / "b" / "run.json").read_text())
    assert a["record"] == b["record"] and a["record"]["entries"] == [1, 5]
    options = {x["name"]: x["options"] for x in a["record"]["algorithms"]}
    assert options["ToyReader"]["vertices"] == 3 and options["TruthTracker"]["min_hits"] == 4
    for name in ("comparison.json", "comparison.root", "performance.json", "summary.json", "run.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    out = run_cli("run", "--config", str(bad))
    assert out.returncode == 1 and "not a recotrig run record" in out.stderr


def test_record_names_inputs_with_checksums_and_refuses_a_changed_input(tmp_path):
    import shutil

    from recotrig.sequences.samples import SAMPLE_MU20

    store = tmp_path / "in.root"
    shutil.copy(SAMPLE_MU20, store)
    out = run_cli("run", "tracking", "--input", str(store), "-n", "1", "-o", str(tmp_path / "o"), "--no-progress")
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "o" / "run.json").read_text())["record"]
    (entry,) = record["files"]["input"]
    assert entry["path"] == str(store) and entry["bytes"] == store.stat().st_size and len(entry["sha256"]) == 64
    assert record["versions"]["numpy"] and record["versions"]["pyacts"]
    from recotrig.io.store import open_store

    assert open_store(tmp_path / "o" / "tracks.root").metadata["run"] == record
    with open(store, "ab") as f:
        f.write(b"\0")
    rerun = run_cli("run", "--config", str(tmp_path / "o" / "run.json"), "-o", str(tmp_path / "p"))
    assert rerun.returncode == 1 and "differs from the recorded one" in rerun.stderr


@pytest.mark.parametrize("jobs", ["0", "-2", "1000"])
def test_jobs_out_of_range_fails_before_any_event(tmp_path, jobs):
    out = run_cli("run", "toy", "-j", jobs, "-o", str(tmp_path))
    assert out.returncode == 1 and "-j must be from 1 to" in out.stderr and not tmp_path.joinpath("run.json").exists()


def test_help_and_dry_run_read_no_event_data(monkeypatch, capsys, tmp_path):
    from recotrig.io import rootstore, trackml

    def refuse(*args, **kwargs):
        raise AssertionError("event data was read")

    monkeypatch.setattr(rootstore.RootStore, "_read", refuse)
    monkeypatch.setattr(trackml.TrackMLStore, "_read", refuse)
    assert main(["run", "vertexing", "--dry-run", "-o", str(tmp_path)]) == 0
    assert "ActsAMVF" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["run", "vertexing", "--help"])
    assert done.value.code == 0 and "--ActsCKF.seed_min_pt" in capsys.readouterr().out
