"""The shipped physics sequences run on the bundled sample and print the comparison table."""

from __future__ import annotations

import json
import subprocess
import sys

import uproot

from recotrig.io.store import open_store
from recotrig.sequences import loader
from recotrig.sequences.samples import SAMPLE_MU20


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recotrig.sequences.cli", "run", *args, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_shipped_sequences_are_listed():
    assert {"toy", "tracking", "vertexing"} <= set(loader.available())


def test_vertexing_on_the_mu20_sample(tmp_path):
    out = run("vertexing", "--input", str(SAMPLE_MU20), "-o", str(tmp_path), "-n", "2")
    assert out.returncode == 0, out.stderr
    assert "ActsCKF [tracks_ckf]" in out.stdout and "ActsAMVF(seeder=gaussian) [vertices_amvf]" in out.stdout
    rows = {r["algorithm"]: r for r in json.loads((tmp_path / "comparison.json").read_text())["rows"]}
    ckf, amvf = rows["ActsCKF [tracks_ckf]"], rows["ActsAMVF(seeder=gaussian) [vertices_amvf]"]
    # the README's figures on these two events: CKF efficiency 0.978, fake 0, TrackML score 0.434;
    # AMVF efficiency 0.917 (of 24 reconstructable vertices: one vertex is 0.04), z resolution 34 um
    assert ckf["efficiency"] > 0.96 and ckf["fake"] < 0.01
    assert 0.41 < ckf["trackml_score"] < 0.46
    assert amvf["efficiency"] > 0.85 and 0.02 < amvf["resolution_mm"] < 0.05
    # the same sequence in two worker processes gives byte-identical outputs
    again = run("vertexing", "--input", str(SAMPLE_MU20), "-o", str(tmp_path / "j2"), "-n", "2", "-j", "2")
    assert again.returncode == 0, again.stderr
    for name in ("comparison.json", "comparison.root", "performance.json", "reco.root"):
        assert (tmp_path / name).read_bytes() == (tmp_path / "j2" / name).read_bytes(), name
    reco = open_store(tmp_path / "reco.root")
    assert reco.n_events == 2 and set(reco.collections) == {"tracks_ckf", "vertices_amvf"}
    tracks = reco.read(0, 1)[0]["tracks_ckf"]
    assert tracks.cov.shape[1:] == (6, 6) and len(tracks) > 100
    timing = uproot.open(tmp_path / "timing.root")["timing"].arrays(library="np")
    assert list(timing["event_id"]) == [0, 1] and all(timing["ActsCKF"] > 0)


def test_tracking_dry_run_on_default_input(tmp_path):
    out = run("tracking", "--dry-run", "-o", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "ActsCKF" in out.stdout and "'tracks_ckf'" in out.stdout


def test_acts_algorithms_take_the_detector_the_store_records(tmp_path):
    from recotrig.io.store import write_store
    from recotrig.sequences.cli import configure_run

    original = open_store(SAMPLE_MU20)
    metadata = dict(original.metadata, detector={"name": "generic", "field_T": 3.0})
    store = write_store(tmp_path / "three_tesla.root", original.read(0, 1), metadata=metadata)
    _, seq, _ = configure_run(["vertexing", "--input", str(store), "-o", str(tmp_path / "out")])
    assert seq.algorithm("ActsCKF").field_T == 3.0 and seq.algorithm("ActsAMVF").field_T == 3.0
    _, seq, _ = configure_run(["vertexing", "-o", str(tmp_path / "out")])
    assert seq.algorithm("ActsCKF").field_T == 2.0
