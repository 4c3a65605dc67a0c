"""Vertexing in the metric and the report: PV-Finder's threshold-scan curve (one global threshold,
falling monotonically), the efficiency read off it at a false-positive rate, the
pair-finding efficiency against the distance between two vertices, the window z residuals, and the
first event along z, all in ``performance.json`` and drawn in the report from the files alone."""

from __future__ import annotations

import json
import math
import pickle
import shutil

import numpy as np
import pytest

import recotrig
from recotrig.edm import TruthVertices, Vertices
from recotrig.metrics.vertexing import SCAN_THRESHOLDS, VertexMetrics, efficiency_at_fp
from recotrig.report import build
from recotrig.sequences.cli import main

PVF, CANDIDATES = "vertices_pvfinder", "vertices_pvfinder_candidates"
FIGURES = ("vertex_efficiency_vs_fp", "vertex_pair_efficiency", "vertex_z_residuals", "vertex_event_view")


@pytest.fixture(scope="module")
def pv_run(tmp_path_factory):
    """One event of the bundled mu = 60 sample through the pvfinder sequence, with its report."""
    out = tmp_path_factory.mktemp("pv") / "pvfinder"
    result = recotrig.run("pvfinder", output=out, n_events=1, keep=[PVF, CANDIDATES], report=True)
    assert result.processed == 1
    return out, json.loads((out / "performance.json").read_text()), result.kept


def test_threshold_scan_of_the_default_is_a_global_threshold_and_falls_monotonically(pv_run):
    _, perf, kept = pv_run
    res = perf["results"][PVF]
    scan = res["threshold_scan"]
    threshold, eff, fp = (np.asarray(scan[k], float) for k in ("threshold", "efficiency", "fp_per_event"))
    assert len(threshold) == len(eff) == len(fp) == len(SCAN_THRESHOLDS) and np.all(np.diff(threshold) > 0)
    assert np.all(np.diff(eff) <= 0) and np.all(np.diff(fp) <= 0)
    assert fp[0] > 2 * res["window_fp_per_event"] and fp[-1] == 0.0  # well beyond the operating point both sides
    assert "threshold_scan" not in perf["results"]["vertices_amvf"]  # AMVF: an operating point only
    # the candidates, in z: the vertices (the event's own threshold, which lies between two of the
    # scores) and the peaks below it; steps of one global threshold (test_pvfinder_auto)
    vertices, candidates = kept[PVF][0], kept[CANDIDATES][0]
    score, z = np.asarray(candidates.score), np.asarray(candidates.z)
    assert np.all(np.diff(z) >= 0)
    kept_z = set(np.asarray(vertices.z).tolist())
    chosen = np.array([v in kept_z for v in z.tolist()])
    assert chosen.sum() == len(vertices) and len(vertices) < len(candidates)
    assert score[chosen].min() > score[~chosen].max()  # the vertices are the top of the candidates


def test_efficiency_at_fp_interpolates_the_curve():
    scan = {"fp_per_event": [4.0, 2.0, 2.0, 0.0, None], "efficiency": [0.9, 0.8, 0.7, 0.5, 0.1]}
    assert efficiency_at_fp(scan, 2.0) == pytest.approx(0.8)  # the best where steps share a rate
    assert efficiency_at_fp(scan, 3.0) == pytest.approx(0.85)
    assert efficiency_at_fp(scan, 1.0) == pytest.approx(0.65)
    assert efficiency_at_fp(scan, 0.0) == pytest.approx(0.5)
    assert math.isnan(efficiency_at_fp(scan, 4.5)) and math.isnan(efficiency_at_fp(scan, -1.0))


TRUTH = TruthVertices(
    vertex_id=[0, 1, 2], x=[0.0] * 3, y=[0.0] * 3, z=[0.0, 10.0, 20.0], n_reconstructable=[10, 10, 10]
)


def scored(z, score) -> Vertices:
    zero = np.zeros(len(z))
    return Vertices(x=zero, y=zero, z=z, extra={"score": np.asarray(score, float)})


def test_scan_counts_the_candidates_above_each_step_and_merges():
    candidates = scored([0.1, 10.1, 30.0, 50.0], [5.0, 0.5, 2.0, 0.01])
    acc = VertexMetrics()
    acc.add_event(candidates.select(np.asarray(candidates.score) >= 1), TRUTH, candidates=candidates)
    scan = acc.result()["threshold_scan"]
    expected = {1.0: (1 / 3, 1.0), 0.1: (2 / 3, 1.0), 0.01: (2 / 3, 2.0), 3.1622776601683795: (1 / 3, 0.0)}
    for t, (eff, fp) in expected.items():
        at = scan["threshold"].index(t)
        assert (scan["efficiency"][at], scan["fp_per_event"][at]) == pytest.approx((eff, fp))
    assert scan["efficiency"][-1] == 0.0 and scan["fp_per_event"][-1] == 0.0
    # halves merged (as worker processes' accumulators are) give the whole
    other = [scored([0.0, 20.2], [1.5, 0.2]), scored([], [])]
    whole, halves = VertexMetrics(), [VertexMetrics(), VertexMetrics()]
    for i, c in enumerate([candidates, *other]):
        for acc in (whole, halves[i % 2]):
            acc.add_event(c.select(np.asarray(c.score) >= 1), TRUTH, candidates=c)
    merged = pickle.loads(pickle.dumps(halves[0])).merge(halves[1])
    assert merged.result()["threshold_scan"] == whole.result()["threshold_scan"]
    with pytest.raises(ValueError, match="threshold-scan candidates have no 'score' column"):
        VertexMetrics().add_event(candidates, TRUTH, candidates=Vertices(x=[0.0], y=[0.0], z=[0.0]))


def test_pair_finding_efficiency_tends_to_one_far_apart():
    rng = np.random.default_rng(3)
    acc = VertexMetrics()
    for _ in range(40):
        z = np.sort(rng.uniform(-40, 40, 60))
        truth = TruthVertices(vertex_id=np.arange(60), x=np.zeros(60), y=np.zeros(60), z=z, n_reconstructable=[9] * 60)
        keep = np.concatenate([[True], np.diff(z) > 0.4])  # a vertex closer than 0.4 mm to the last is lost
        reco = z[keep] + rng.normal(0, 0.02, keep.sum())
        acc.add_event(Vertices(x=np.zeros(len(reco)), y=np.zeros(len(reco)), z=reco), truth)
    res = acc.result()
    curve = res["vv_pair_efficiency"]
    edges, ratio = np.asarray(curve["edges"]), np.asarray(curve["ratio"], float)
    assert len(edges) == len(ratio) + 1 == round(res["dz_max"] / res["dz_bin"]) + 1
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert np.mean(ratio[centres > 1.0]) == pytest.approx(1.0, abs=0.03)
    assert np.all(ratio[centres < 0.3] < 0.5) and 0.3 < res["vv_resolution"] < 0.6
    assert sum(curve["reco_pairs"]) > 0 and sum(curve["truth_pairs"]) > sum(curve["reco_pairs"])


def test_the_tracks_own_limit_is_the_same_for_every_finder_on_the_same_tracks(pv_run):
    """The truth pairs whose own tracks tell them apart depend on the tracks and the truth only:
    one curve for PVFinder and both AMVF seeders on the same CKF tracks. Far apart nearly every
    pair is separable (a vertex without a precise track is not), closer than 0.3 mm some are not
    (half are at 0.21 mm on 200 held-out crossings at mu = 60, docs/models/pvfinder.md)."""
    out, perf, _ = pv_run
    curves = [
        perf["results"][key]["vv_separable_pair_efficiency"] for key in (PVF, "vertices_amvf", "vertices_amvf_grid")
    ]
    assert curves[0] == curves[1] == curves[2]
    separable = np.asarray(curves[0]["separable_pairs"])
    truth = np.asarray(perf["results"][PVF]["vv_pair_efficiency"]["truth_pairs"])
    assert np.all(separable <= truth) and curves[0]["plateau_level"] > 0.8
    res = perf["results"][PVF]
    assert res["separable_sigma"] == 3.0 and separable[:6].sum() < truth[:6].sum()  # closer than 0.3 mm
    assert "black dash-dotted" in (out / "report.html").read_text()


def test_residual_histograms_count_the_matched_vertices(pv_run):
    _, perf, _ = pv_run
    for key in (PVF, "vertices_amvf", "vertices_amvf_grid"):
        res = perf["results"][key]
        hist = res["window_z_residual_hist"]
        assert sum(hist["counts"]) == res["n_window_z_residuals"] == res["n_window_found"] > 20
        assert hist["edges"][0] == -res["z_window"] and hist["edges"][-1] == res["z_window"]


def test_event_view_holds_the_first_event_of_the_run(pv_run):
    _, perf, kept = pv_run
    view = perf["event_view"]
    assert (view["run_number"], view["event_id"]) == (60, 0)
    assert view["vertices"][PVF] == [float(f"{z:.5g}") for z in kept[PVF][0].z]
    assert set(view["vertices"]) == {PVF, "vertices_amvf", "vertices_amvf_grid"}
    assert len(view["truth_z"]) == len(view["truth_eligible"]) > 20
    assert sum(view["truth_eligible"]) == perf["results"][PVF]["n_window_eligible"]  # one event: the same ones
    assert len(view["kde"]["z"]) == len(view["kde"]["kde_a"]) == len(view["density"]["density"]) == 4000
    assert max(view["density"]["density"]) > 0.1 and max(view["kde"]["kde_a"]) > 0


def test_report_draws_the_vertexing_figures(pv_run):
    out, _, _ = pv_run
    page = (out / "report.html").read_text()
    for name in FIGURES:
        assert f"<figure id='{name}'>" in page
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000
    assert "records no" not in page and "threshold scan" in page


def test_report_of_an_older_output_says_what_it_lacks(pv_run, tmp_path):
    out, perf, _ = pv_run
    shutil.copy(out / "run.json", tmp_path / "run.json")
    del perf["event_view"]
    for res in perf["results"].values():
        for key in ("threshold_scan", "vv_pair_efficiency", "window_z_residual_hist"):
            res.pop(key, None)
    (tmp_path / "performance.json").write_text(json.dumps(perf))
    page = build(tmp_path).read_text()
    assert "vertex_efficiency_vs_fp" in page and "No threshold-scan curve is recorded" in page
    for text in ("records no pair-finding efficiency", "records no z residual histogram", "records no event view"):
        assert text in page
    assert not (tmp_path / "figures" / "vertex_event_view.png").exists()


def test_candidates_without_a_score_stop_the_run_naming_them(tmp_path, capsys):
    out = tmp_path / "toy"
    flags = ["--Performance.candidates", "vertices", "--Performance.candidates_of", "vertices=vertices"]
    assert main(["run", "toy", "-o", str(out), "--no-progress", *flags]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "event 0" in err[0]
    assert "candidates 'vertices' of vertices 'vertices' have no 'score' column" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--Performance.candidates_of", "vertices=nope"], "the candidates 'nope', which are not among its candidates"),
        (
            ["--Performance.candidates", "vertices", "--Performance.candidates_of", "nope=vertices"],
            "candidates_of names vertices 'nope', which are not among its vertices",
        ),
        (["--Performance.candidates", "vertices"], "candidates ['vertices'] belong to no vertex collection"),
    ],
)
def test_candidates_of_is_checked_before_any_event(tmp_path, capsys, flags, message):
    out = tmp_path / "toy"
    assert main(["run", "toy", "-o", str(out), "--no-progress", *flags]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("recotrig run: error: Performance: ") and message in err and "event" not in err
    assert not out.exists()


@pytest.mark.slow
def test_two_processes_write_the_same_performance_json(tmp_path):
    for jobs in (1, 2):
        recotrig.run("pvfinder", output=tmp_path / f"j{jobs}", n_events=2, jobs=jobs)
    one, two = ((tmp_path / f"j{j}" / "performance.json").read_bytes() for j in (1, 2))
    assert one == two and b'"event_view"' in one and b'"threshold_scan"' in one
