"""The Python API: ``recotrig.run`` runs a sequence as ``recotrig run`` does and gives back typed
fields (the comparison as a DataFrame, the report's figures, kept collections as awkward arrays),
and the example of docs/running.md works as written."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import awkward as ak
import matplotlib.figure
import matplotlib.pyplot as plt
import pandas as pd
import pytest

import recotrig
from recotrig.framework import ConfigError
from recotrig.sequences.api import Result

ROOT = Path(__file__).resolve().parent.parent
RUNNING = (ROOT / "docs" / "running.md").read_text()


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Result:
    out = tmp_path_factory.mktemp("api") / "toy"
    return recotrig.run("toy", output=out, n_events=4, options={"TruthTracker.min_hits": 4}, keep=["tracks"])


def test_import_recotrig_stays_light():
    code = "import sys, recotrig; print(sorted(m for m in sys.modules if m.startswith('recotrig.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_comparison_is_a_dataframe_of_the_rows_of_comparison_json(toy):
    table = json.loads((toy.output / "comparison.json").read_text())
    assert isinstance(toy.comparison, pd.DataFrame)
    assert list(toy.comparison["algorithm"]) == [row["algorithm"] for row in table["rows"]]
    for (_, row), written in zip(toy.comparison.iterrows(), table["rows"]):
        for column, value in written.items():
            got = row[column]
            assert got == value or (value is None and math.isnan(got)), (column, got, value)
    assert toy.processed == 4 and toy.timing and toy.record["sequence"] == "toy"
    assert (toy.output / "run.json").is_file() and (toy.output / "timing.json").is_file()


def test_options_are_applied_as_set_and_recorded(toy, tmp_path):
    options = {a["name"]: a["options"] for a in toy.record["algorithms"]}
    assert options["TruthTracker"]["min_hits"] == 4
    assert json.loads((toy.output / "run.json").read_text())["record"] == toy.record
    with pytest.raises(ConfigError, match="TruthTracker has no option 'min_hitz'"):
        recotrig.run("toy", output=tmp_path / "bad", n_events=1, options={"TruthTracker.min_hitz": 4})
    assert not (tmp_path / "bad").exists()


def test_figures_are_matplotlib_figures_by_name(toy):
    figures = toy.figures
    assert {"tracking_efficiency", "vertex_efficiency_vs_fp", "timing"} <= set(figures)
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figures.values())
    assert figures["vertex_efficiency_vs_fp"].axes[0].get_xlabel() == "false positives per event"
    assert plt.get_fignums() == []  # none left open in pyplot
    assert not (toy.output / "report.html").exists()  # drawn, not written


def test_kept_collections_are_per_event_awkward_arrays_equal_for_any_jobs(toy, tmp_path):
    again = recotrig.run("toy", output=tmp_path / "j2", n_events=4, options={"TruthTracker.min_hits": 4}, jobs=2)
    kept = recotrig.run(
        "toy", output=tmp_path / "k2", n_events=4, options={"TruthTracker.min_hits": 4}, jobs=2, keep=["tracks"]
    )
    tracks = toy.kept["tracks"]
    assert isinstance(tracks, ak.Array) and len(tracks) == 4 and "hit_ids" in tracks.fields
    assert ak.sum(ak.num(tracks)) > 0
    assert ak.to_list(kept.kept["tracks"]) == ak.to_list(tracks)
    assert again.kept == {}
    for name in ("run.json", "comparison.json", "performance.json", "summary.json"):  # keep changes no output
        assert (
            (toy.output / name).read_bytes() == (again.output / name).read_bytes() == (kept.output / name).read_bytes()
        )


def test_an_unknown_keep_key_fails_before_the_run_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"reads key 'trackz', which no algorithm produces.*'tracks'"):
        recotrig.run("toy", output=tmp_path / "out", n_events=2, keep=["trackz"])
    assert not (tmp_path / "out").exists()


def test_default_output_is_a_fresh_temporary_directory():
    result = recotrig.run("toy", n_events=1)
    try:
        assert result.output.name == "toy" and (result.output / "run.json").is_file()
        assert not Path("recotrig-out").exists() or result.output.resolve() != Path("recotrig-out/toy").resolve()
    finally:
        shutil.rmtree(result.output.parent)


def test_the_example_of_the_docs_runs_as_written(tmp_path, monkeypatch, capsys):
    section = RUNNING.split("## From Python", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    (tmp_path / "data").symlink_to(ROOT / "data")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    try:
        exec(compile(code, "docs/running.md", "exec"), scope)
        result = scope["result"]
        assert "PVFinder [vertices_pvfinder]" in capsys.readouterr().out
        assert (result.output / "efficiency_vs_fp.png").stat().st_size > 0
        assert len(scope["vertices"]) == 1 == result.processed
        ckf = next(a for a in result.record["algorithms"] if a["name"] == "ActsCKF")
        assert ckf["options"]["seed_min_pt"] == 0.9
    finally:
        if "result" in scope:
            shutil.rmtree(scope["result"].output.parent)
