"""PVFinder's per-event operating point: an event's peak-finder threshold follows its KDE's scale
between the card's operating points (each tuned at one pile-up), so no pile-up is chosen by hand."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from recotrig.algorithms.ml.pvfinder import PVFinder
from recotrig.framework import ConfigError
from recotrig.models import registry


@pytest.fixture(scope="module")
def card():
    return registry.load("pvfinder-unet-mu60", family="pvfinder").typed_card


def _finder(**options) -> PVFinder:
    finder = PVFinder(**options)
    finder.initialize()
    return finder


def test_the_shipped_card_places_its_points_by_pile_up(card):
    points = card.operating_points
    assert {"mu6", "mu60", "mu200"} <= set(points)
    scales = [points[p].kde_scale for p in ("mu6", "mu60", "mu200")]
    assert all(s and s > 0 for s in scales) and scales == sorted(scales)
    # about 40 per track; the tracks grow with the pile-up on top of the tt-bar event's
    assert 2.5 < scales[1] / scales[0] < 10 and 1.8 < scales[2] / scales[1] < 3.5


def test_auto_gives_each_point_at_its_scale_and_interpolates_between(card):
    auto = _finder()
    points = card.operating_points
    for name in ("mu6", "mu60", "mu200"):
        assert auto.peak_settings(points[name].kde_scale)["threshold"] == pytest.approx(points[name].threshold)
    low, high = points["mu6"], points["mu60"]
    middle = math.sqrt(low.kde_scale * high.kde_scale)
    assert auto.peak_settings(middle)["threshold"] == pytest.approx(math.sqrt(low.threshold * high.threshold))
    assert auto.peak_settings(low.kde_scale / 10)["threshold"] == pytest.approx(low.threshold)  # held at the ends
    assert auto.peak_settings(points["mu200"].kde_scale * 10)["threshold"] == pytest.approx(points["mu200"].threshold)
    assert auto.peak_settings(0.0)["threshold"] == pytest.approx(low.threshold)  # an empty KDE


def test_a_named_point_the_default_or_an_explicit_threshold_fix_every_event(card):
    for scale in (0.0, 3e3, 4e4, 1e6):
        assert (
            _finder(operating_point="mu6").peak_settings(scale)["threshold"] == card.operating_points["mu6"].threshold
        )
        assert _finder(operating_point="").peak_settings(scale)["threshold"] == card.peak_finder.threshold
        assert _finder(threshold=0.05).peak_settings(scale)["threshold"] == 0.05
    with pytest.raises(ConfigError, match="no operating point 'mu600'.*'auto'"):
        _finder(operating_point="mu600")


def test_a_card_without_scales_runs_its_default(tmp_path, card):
    model = registry.load("pvfinder-unet-mu60", family="pvfinder")
    shutil.copy(model.onnx, tmp_path / "old.onnx")
    raw = json.loads(model.onnx.with_name("pvfinder-unet-mu60.card.json").read_text())
    for point in raw["operating_points"].values():
        point.pop("kde_scale", None)
    raw["name"] = "old"
    (tmp_path / "old.card.json").write_text(json.dumps(raw))
    old = _finder(model=str(tmp_path / "old.onnx"))
    for scale in (3e3, 4e4, 1e6):
        assert old.peak_settings(scale)["threshold"] == card.peak_finder.threshold
    assert np.isfinite(old.peak_settings(1e5)["min_prominence"])


@pytest.mark.slow
def test_auto_on_the_bundled_mu60_sample(tmp_path):
    """The default run: each event's threshold from its own KDE; on the bundled mu = 60 events
    (KDE sums below the mu60 point's) it keeps the efficiency the README quotes, with no more
    false positives than the mu = 60 point gives there (the card's sample check)."""
    from recotrig.sequences.cli import main

    card = registry.load("pvfinder-unet-mu60", family="pvfinder").card
    assert main(["run", "pvfinder", "-o", str(tmp_path), "--no-progress"]) == 0
    ours = json.loads((tmp_path / "performance.json").read_text())["results"]["vertices_pvfinder"]
    assert ours["window_efficiency"] >= 0.85 and ours["n_events"] == 4
    assert ours["window_fp_per_event"] <= card["sample_check"]["window_fp_per_event"]


@pytest.mark.slow
def test_the_scan_of_the_default_is_one_global_threshold(card):
    """The per-event default's scan candidates scoring at least k are exactly the vertices the
    finder gives with threshold = k x its reference threshold (the card's default), on the
    bundled mu = 60 and mu = 20 events, whose own thresholds differ from it."""
    from recotrig.algorithms.acts import ActsCKF
    from recotrig.algorithms.vertexing.kde_builder import KDEBuilder
    from recotrig.io.hit_reader import HitReader
    from recotrig.sequences.samples import SAMPLE_MU20, SAMPLE_MU60

    ckf, kde_builder, auto = ActsCKF(), KDEBuilder(**card.binning.__dict__), _finder()
    for alg in (ckf, kde_builder):
        alg.initialize()
    assert auto.reference_threshold == card.peak_finder.threshold
    own = []
    for sample in (SAMPLE_MU60, SAMPLE_MU20):
        reader = HitReader(input=str(sample))
        reader.prepare(0, 1)
        tracks = ckf.execute(hits=reader.read(0)[0])
        kde, use = kde_builder.execute(tracks=tracks)
        vertices, candidates, _ = auto.execute(kde=kde, tracks=tracks, kde_tracks=use)
        own.append(auto.peak_settings(float(np.sum(kde.kde_a)))["threshold"])
        score, z = np.asarray(candidates.score), np.asarray(candidates.z)
        assert np.all(np.diff(z) >= 0)  # in z, as the vertices are
        assert sorted(np.asarray(vertices.z).tolist()) == z[score >= own[-1] / auto.reference_threshold].tolist()
        for k in (0.3, 1.0, 3.0, 30.0, 300.0):
            fixed = _finder(threshold=k * auto.reference_threshold)
            at_k, _, _ = fixed.execute(kde=kde, tracks=tracks, kde_tracks=use)
            assert z[score >= k].tolist() == np.asarray(at_k.z).tolist()
        assert (score < 1).sum() > 0 and (score >= 1).sum() > 0
    assert all(abs(math.log(t / auto.reference_threshold)) > 0.05 for t in own)  # not the reference itself
