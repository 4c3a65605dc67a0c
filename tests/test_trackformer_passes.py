"""Iterative track finding (``Finder.assemble`` with the card's ``clustering.passes``): a pass's
long tracks kept, the model run again on the hits they leave; the passes tuned on validation
events (``train._with_passes``; ``recotrig train trackformer --retune MODEL --passes-only`` for an
existing model), and ``TrackFormerFinder(passes=False)`` for one pass."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.framework import ConfigError
from recotrig.io.hit_reader import HitReader
from recotrig.models import registry
from recotrig.models.runtime import Session
from recotrig.models.trackformer.inference import Finder, params_of
from recotrig.sequences.samples import SAMPLE_MU20
from recotrig.training.trackformer import dataset


def test_the_passes_lift_the_200_500_models_on_the_bundled_sample():
    """EncReg 200-500 on the bundled sample's reduced events (never used in training or tuning):
    the card's passes against one pass (held-out seed 303: 0.904 against 0.829; seeds 404 / 505:
    0.904 / 0.900 against 0.823 / 0.823)."""
    from recotrig.training.trackformer.train import PASSES, SAMPLE_CHECK, evaluate

    model = registry.load("trackformer-encreg-200-500", family="trackformer")
    card = model.card
    assert tuple(card["clustering"]["passes"]) in PASSES and card["clustering"]["passes"]
    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK["200-500"])
    one = {**card, "clustering": {**card["clustering"], "passes": []}}
    assert evaluate(model.onnx, samples, card) > evaluate(model.onnx, samples, one) + 0.04


@pytest.mark.parametrize("name", ["trackformer-enccla-200-500", "trackformer-encreg-200-500"])
def test_a_pass_keeps_the_long_tracks_of_the_one_before_and_no_hit_twice(name):
    model = registry.load(name, family="trackformer")
    finder = Finder(Session(model.onnx, threads=1), model.card)
    params = params_of(model.card)
    hits = HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=300).read(0)[0]
    x = np.stack([np.asarray(hits[c], np.float32) for c in "xyz"], axis=1)
    one = finder(x, {**params, "passes": []})
    found = finder(x, params)
    ids = np.concatenate(found.tracks)
    assert len(np.unique(ids)) == len(ids)  # each hit on one track at most
    assert [int(t[0]) for t in found.tracks] == sorted(int(t[0]) for t in found.tracks)
    longest = params["passes"][0]
    kept = {tuple(t) for t in found.tracks}
    first = [tuple(t) for t in one.tracks if len(t) >= longest]
    assert first and all(t in kept for t in first)  # the first pass's long tracks, unchanged
    assert len(found.tracks) > len(first)  # and more from the later passes
    if model.card["kind"] == "enccla":  # the posteriors of each hit from the pass that found it
        assert (
            [len(c) for c in found.classes] == [len(t) for t in found.tracks] == [len(p) for p in found.probabilities]
        )
        index = {tuple(t): i for i, t in enumerate(one.tracks)}
        for t, c in zip(found.tracks, found.classes):
            if tuple(t) in index and len(t) >= longest:
                assert np.array_equal(c, one.classes[index[tuple(t)]])


@pytest.mark.parametrize("name", ["trackformer-enccla-200-500", "trackformer-encreg-200-500"])
def test_small_windows_in_one_padded_call_give_the_outputs_of_one_call_each(name, monkeypatch):
    """The later passes' windows (at most ``SMALL_WINDOW`` hits) go through ONNX Runtime together,
    padded: every output bit-identical to running each window alone."""
    from recotrig.models.trackformer import inference

    model = registry.load(name, family="trackformer")
    finder = Finder(Session(model.onnx, threads=1), model.card)
    hits = HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=300).read(0)[0]
    x = np.stack([np.asarray(hits[c], np.float32) for c in "xyz"], axis=1)
    sparse = x[::12]  # about 20 hits a window, as in a late pass
    params = params_of(model.card)
    batched, tracks = finder.predict(sparse), finder(x, params).tracks
    assert len(batched.windows) > 1 and max(len(w) for w in batched.windows) <= inference.SMALL_WINDOW
    monkeypatch.setattr(inference, "SMALL_WINDOW", 0)
    alone = finder.predict(sparse)
    assert [w.tolist() for w in batched.windows] == [w.tolist() for w in alone.windows]
    for a, b in zip(batched.outputs, alone.outputs):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert [t.tolist() for t in tracks] == [t.tolist() for t in finder(x, params).tracks]  # later passes included


def test_the_finder_runs_one_pass_when_told():
    hits = HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=300).read(0)[0]
    runs = {}
    for passes in (True, False):
        finder = TrackFormerFinder(model="trackformer-encreg-200-500", passes=passes)
        finder.initialize()
        runs[passes] = (finder._params["passes"], finder.execute(hits=hits).hit_ids.tolist())
    model = registry.load("trackformer-encreg-200-500", family="trackformer")
    assert runs[True][0] == model.card["clustering"]["passes"] and runs[False][0] == []
    one = Finder(Session(model.onnx, threads=1), model.card)(
        np.stack([np.asarray(hits[c], np.float32) for c in "xyz"], axis=1), {**params_of(model.card), "passes": []}
    )
    ids = np.asarray(hits.hit_id)
    assert sorted(runs[False][1]) == sorted(sorted(ids[t].tolist()) for t in one.tracks)
    assert runs[True][1] != runs[False][1]


@pytest.mark.parametrize("passes", [[0, 3], [4, -1], "6", [2.5]])
def test_a_card_with_unusable_passes_fails_at_initialize(tmp_path, passes):
    model = registry.load("trackformer-encreg-10-50", family="trackformer")
    shutil.copy(model.onnx, tmp_path / "bad.onnx")
    registry.write_card(
        tmp_path / "bad.onnx", {**model.card, "clustering": {**model.card["clustering"], "passes": passes}}
    )
    finder = TrackFormerFinder(model=str(tmp_path / "bad.onnx"))
    with pytest.raises(ConfigError, match=r"TrackFormerFinder: .*bad\.onnx: the card's clustering"):
        finder.initialize()


def test_retuning_the_passes_alone_keeps_the_track_building_and_both_commands(tmp_path, monkeypatch, capsys):
    from recotrig.sequences.cli import main
    from recotrig.training.trackformer.train import PASSES

    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    model = registry.load("trackformer-encreg-10-50", family="trackformer")
    old = {**model.card, "clustering": {k: v for k, v in model.card["clustering"].items() if k != "passes"}}
    old.pop("passes_command", None)
    shutil.copy(model.onnx, tmp_path / "old.onnx")
    registry.write_card(tmp_path / "old.onnx", old)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("old.*")}
    argv = ["train", "trackformer", "--retune", "old.onnx", "--passes-only", "--max-events", "2"]
    argv += [f"--stores=-,{SAMPLE_MU20},{SAMPLE_MU20}"]
    assert main(argv) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.glob("old.*")} == before  # the model retuned is unchanged
    new = json.loads((tmp_path / "recotrig-models" / "old.card.json").read_text())
    assert tuple(new["clustering"].pop("passes")) in PASSES
    assert {k: v for k, v in new["clustering"].items() if k != "algorithm"} == {
        k: v for k, v in old["clustering"].items() if k != "algorithm"
    }
    assert new["sectors"] == old["sectors"] and new["retune_command"] == old["retune_command"]
    assert new["passes_command"] == "recotrig " + " ".join(argv)
    assert new["validation"]["store"] == new["held_out"]["store"] == SAMPLE_MU20.name
    capsys.readouterr()
    assert main(["train", "trackformer", "--passes-only"]) == 1
    assert "--passes-only tunes an existing model's passes: give it with --retune MODEL" in capsys.readouterr().err


@pytest.mark.parametrize("most", [1, 2])
def test_max_passes_bounds_the_schedules_tried(tmp_path, monkeypatch, capsys, most):
    """``--max-passes N``: the schedule chosen has at most N passes, tried on the validation events
    among ``PASSES``' of that length (the fast model's card: at most two). Its card records the command."""
    from recotrig.sequences.cli import main
    from recotrig.training.trackformer import train

    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    tried = []
    score = train._score
    monkeypatch.setattr(
        train, "_score", lambda f, s, params, *a: tried.append(params["passes"]) or score(f, s, params, *a)
    )
    argv = ["train", "trackformer", "--retune", "trackformer-encreg-200-500", "--passes-only", "--max-events", "1"]
    argv += [f"--stores=-,{SAMPLE_MU20},{SAMPLE_MU20}", "--max-passes", str(most), "--name", "bounded"]
    assert main(argv) == 0
    card = json.loads((tmp_path / "recotrig-models" / "bounded.card.json").read_text())
    assert len(card["clustering"]["passes"]) < most and card["passes_command"] == "recotrig " + " ".join(argv)
    assert {len(p) for p in tried} == set(range(most))  # every schedule tried had at most `most` passes
    capsys.readouterr()
    assert main(["train", "trackformer", "--max-passes", "2"]) == 1
    assert "--max-passes bounds the schedules --passes-only tries" in capsys.readouterr().err
