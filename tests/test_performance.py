"""The Performance algorithm inside a sequence: truth tracks score 1, tables are written."""

from __future__ import annotations

import json

import pytest

from recotrig.algorithms.toy import ToyReader, TruthTracker, ZHistogramVertexer
from recotrig.framework import Sequencer
from recotrig.metrics.performance import Performance


@pytest.mark.parametrize("jobs", [1, 2])
def test_truth_tracks_score_one_and_table_written(tmp_path, jobs):
    seq = Sequencer(
        [
            ToyReader(events=10),
            TruthTracker(min_hits=3),
            ZHistogramVertexer(),
            Performance(tracks=["tracks"], vertices=["vertices"], output=str(tmp_path), min_hits=3),
        ]
    )
    result = seq.run(jobs=jobs, progress=False)
    rows = {r["algorithm"]: r for r in result.comparison}
    tracking = rows["TruthTracker [tracks]"]
    # every particle with >= 3 hits becomes one pure track: perfect efficiency, no fakes;
    # particles with < 3 hits carry zero TrackML weight (official weights need >= 4 hits)
    assert tracking["efficiency"] == 1.0 and tracking["fake"] == 0.0 and tracking["duplicate"] == 0.0
    assert tracking["trackml_score"] == pytest.approx(1.0, abs=1e-12)
    assert "ms_per_event" not in tracking  # timing goes to timing outputs only
    assert result.comparison_ms_per_event["TruthTracker [tracks]"] > 0
    vertexing = rows["ZHistogramVertexer [vertices]"]
    assert vertexing["efficiency"] > 0.8  # 0.05 mm hits, truth tracks: vertices > 1 mm apart are found
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert len(saved["rows"]) == 3 and "ms_per_event" not in saved["columns"]
    assert [a["name"] for a in saved["run"]["algorithms"]] == [
        "ToyReader",
        "TruthTracker",
        "ZHistogramVertexer",
        "Performance",
    ]
    assert (tmp_path / "comparison.root").exists() and (tmp_path / "performance.json").exists()
    per_event = json.loads((tmp_path / "performance.json").read_text())["results"]["tracks"]["per_event"]
    assert per_event["event_id"] == list(range(10)) and per_event["trackml_score"] == pytest.approx([1.0] * 10)
