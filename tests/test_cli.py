"""The command line: option overrides, --help listing, dry run, user sequence files, -j."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from recotrig.framework import ConfigError
from recotrig.sequences.cli import configure_run, main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "recotrig.sequences.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_overrides_flag_and_set_styles(tmp_path):
    _, seq, _ = configure_run(["toy", "-o", str(tmp_path), "--ToyReader.vertices", "9",
                               "--set", "ZHistogramVertexer.bin_width=2.5", "--set", "TruthTracker.tracks=trk",
                               "--ZHistogramVertexer.tracks", "trk", "--Performance.tracks", "trk"])
    assert seq.algorithm("ToyReader").vertices == 9
    assert seq.algorithm("ZHistogramVertexer").bin_width == 2.5
    assert seq.algorithm("TruthTracker").options()["tracks"] == "trk"
    assert seq.algorithm("Performance").tracks == ["trk"]
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
    for flag in ("--ToyReader.vertices", "--TruthTracker.min_hits", "--ZHistogramVertexer.bin_width",
                 "--SummaryWriter.path", "--TruthTracker.hits"):
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


@pytest.mark.parametrize("args", [["--help"], []])
def test_top_level_usage(args):
    out = run_cli(*args)
    assert "recotrig run" in out.stdout
