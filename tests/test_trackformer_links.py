"""EncCla's tracks from the top-k posterior (``tracks.linked``): top-1 classes linked where their
hits' posteriors overlap, each connected group of classes a track; the threshold comes from the
card (tuned on validation events, ``train.tune``; ``train.retune`` for an existing model), and a
card without it keeps the top-1 tracks it had."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.framework import ConfigError
from recotrig.io.hit_reader import HitReader
from recotrig.models import registry
from recotrig.models.trackformer.inference import params_of
from recotrig.models.trackformer.tracks import by_class, linked
from recotrig.sequences.samples import SAMPLE_MU20, SAMPLE_MU60

STORES = {"train": str(SAMPLE_MU60), "val": str(SAMPLE_MU20), "test": str(SAMPLE_MU20)}


def posterior(rows: list[list[tuple[int, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Per hit its top-k (class, probability) pairs, in decreasing probability."""
    return (
        np.array([[c for c, _ in row] for row in rows], np.int64),
        np.array([[p for _, p in row] for row in rows], np.float32),
    )


def listed(tracks: list[np.ndarray]) -> list[list[int]]:
    return [t.tolist() for t in tracks]


def test_two_classes_link_when_their_overlap_exceeds_the_threshold():
    # hits 0, 1 (class 7) give class 9 0.6 of their top-1 probability, hits 2, 3 (class 9) give 7
    # nothing: overlap (0.6 + 0.6) / 4 hits = 0.3; hit 4's class 10 shares nothing
    classes, probs = posterior(
        [
            [(7, 0.5), (9, 0.3), (50, 0.01)],
            [(7, 0.5), (9, 0.3), (51, 0.01)],
            [(9, 0.6), (52, 0.01), (53, 0.01)],
            [(9, 0.6), (54, 0.01), (55, 0.01)],
            [(10, 0.9), (56, 0.01), (57, 0.01)],
        ]
    )
    assert listed(linked(classes, probs, overlap=0.29)) == [[0, 1, 2, 3], [4]]
    assert listed(linked(classes, probs, overlap=0.31)) == [[0, 1], [2, 3], [4]]
    assert listed(linked(classes, probs, overlap=0.31)) == listed(by_class(classes[:, 0]))


def test_links_chain_and_pass_through_a_class_no_hit_has_first():
    # 1 -> 2 -> 3 in a chain (1 and 3 share nothing); 4 and 6 both lean on 5, which no hit has first
    classes, probs = posterior(
        [
            [(1, 0.5), (2, 0.4), (90, 0.01)],
            [(2, 0.5), (3, 0.4), (91, 0.01)],
            [(3, 0.5), (92, 0.01), (93, 0.01)],
            [(4, 0.5), (5, 0.4), (94, 0.01)],
            [(6, 0.5), (5, 0.4), (95, 0.01)],
            [(8, 0.5), (96, 0.01), (97, 0.01)],
        ]
    )
    # overlaps: (1, 2) = 0.8 / 2, (2, 3) = 0.8 / 2, (4, 5) = (6, 5) = 0.8 / 1
    assert listed(linked(classes, probs, overlap=0.3)) == [[0, 1, 2], [3, 4], [5]]
    assert listed(linked(classes, probs, overlap=0.5)) == [[0], [1], [2], [3, 4], [5]]
    assert listed(linked(classes, probs, overlap=0.9)) == [[0], [1], [2], [3], [4], [5]]


def test_no_linking_is_exactly_the_top_1_tracks_and_linking_only_joins_them():
    rng = np.random.default_rng(5)
    n = 600
    classes = np.stack([rng.permutation(60)[:3] for _ in range(n)])  # 3 distinct classes a hit
    probs = -np.sort(-rng.dirichlet(np.ones(8), size=n)[:, :3], axis=1).astype(np.float32)
    top1 = by_class(classes[:, 0])
    for off in (None, 0, 0.0):
        assert listed(linked(classes, probs, overlap=off)) == listed(top1)
    assert linked(np.zeros((0, 3), np.int64), np.zeros((0, 3), np.float32), overlap=0.2) == []
    joined = linked(classes, probs, overlap=0.08)  # random posteriors overlap little
    assert 1 < len(joined) < len(top1)
    assert sorted(np.concatenate(joined).tolist()) == list(range(n))  # every hit once
    assert [int(t[0]) for t in joined] == sorted(int(t[0]) for t in joined)  # ordered by first hit
    track_of = np.empty(n, np.int64)
    for i, t in enumerate(joined):
        track_of[t] = i
    assert all(len(np.unique(track_of[t])) == 1 for t in top1)  # a top-1 class is never split


def test_the_card_gives_the_threshold_and_an_old_card_means_no_links():
    card = {"kind": "enccla", "clustering": {"algorithm": "top-1 class", "min_hits": 1}}
    assert params_of(card) == {"min_hits": 1, "link_overlap": 0.0, "helix": None, "passes": []}
    card["clustering"]["link_overlap"] = 0.25
    assert params_of(card) == {"min_hits": 1, "link_overlap": 0.25, "helix": None, "passes": []}
    for bad, message in (("much", r"lacks or mistypes a parameter .*'much'"), (1.5, r"link_overlap 1\.5 is not in")):
        card["clustering"]["link_overlap"] = bad
        with pytest.raises(ValueError, match=message):
            params_of(card)


# -- a tiny EncCla end to end ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_cla(tmp_path_factory):
    """A tiny EncCla (4 x 4 x 2 x 2 classes) on 10-50-track events, trained in seconds."""
    from recotrig.training.trackformer.train import train

    folder = tmp_path_factory.mktemp("tiny_links")
    card = train(
        name="tiny_links",
        kind="enccla",
        data="10-50",
        stores=STORES,
        out=folder,
        work=folder / "work",
        epochs=2,
        seed=3,
        draws=2,
        d=16,
        layers=1,
        heads=2,
        batch=4,
        lr=3e-3,
        threads=1,
        max_events=2,
        bins={"phi": 4, "theta": 4, "p": 2},
        progress=False,
    )
    return folder, card


def finder_on(path, **options) -> TrackFormerFinder:
    finder = TrackFormerFinder(model=str(path), **options)
    finder.initialize()
    return finder


def test_training_tunes_the_linking_and_the_finder_applies_it(tiny_cla):
    from recotrig.training.trackformer.train import LINK_OVERLAPS

    folder, card = tiny_cla
    clustering = card["clustering"]
    assert clustering["link_overlap"] in LINK_OVERLAPS and clustering["min_hits"] in (1, 2, 3, 4)
    for entry in ("validation", "held_out"):
        assert card[entry]["store"] == SAMPLE_MU20.name and 0 <= card[entry]["duplicate_rate"] <= 1
    reader = HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=40)
    reader.prepare(0, 1)
    hits = reader.read(0)[0]
    # the links alone (the helix refinement, which the tuning may have chosen, merges tracks too)
    apart = finder_on(folder / "tiny_links.onnx", link_overlap=0.0, helix=False).execute(hits=hits)
    joined = finder_on(folder / "tiny_links.onnx", link_overlap=0.05, helix=False).execute(hits=hits)
    for tracks in (apart, joined):
        ids = np.concatenate([np.asarray(t) for t in tracks.hit_ids.tolist()])
        assert len(np.unique(ids)) == len(ids) and np.isin(ids, np.asarray(hits.hit_id)).all()
    assert all(len(set(c)) == 1 for c in apart["top1_class"].tolist())  # no links: one top-1 class a track
    assert len(joined) < len(apart)
    track_of = {h: i for i, t in enumerate(joined.hit_ids.tolist()) for h in t}
    assert all(len({track_of[h] for h in t}) == 1 for t in apart.hit_ids.tolist())  # links only join tracks


def test_retune_updates_an_old_card_without_retraining(tiny_cla, tmp_path, monkeypatch):
    from recotrig.training.trackformer.train import retune

    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(tmp_path / "cache"))
    folder, card = tiny_cla
    old = json.loads((folder / "tiny_links.card.json").read_text())
    old["clustering"] = {"algorithm": "top-1 class", "min_hits": 1}  # a card from before the linking
    shutil.copy(folder / "tiny_links.onnx", tmp_path / "old.onnx")
    registry.write_card(tmp_path / "old.onnx", old)
    before = {p.name: p.read_bytes() for p in tmp_path.glob("old.*")}
    stores = {"val": STORES["val"], "test": STORES["test"]}
    entries = retune(tmp_path / "old.onnx", stores=stores, max_events=2)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("old.*")} == before  # nothing written unasked
    assert set(entries) == {"summary", "clustering", "sectors", "validation", "held_out", "sample_check"}
    assert entries["clustering"] == card["clustering"]  # the training's tuning, on the same events
    assert entries["sectors"] == card["sectors"]  # from the windows of the training again
    assert entries["validation"] == card["validation"]
    # the command writes the re-tuned model where a training would: the user's folder by default
    from recotrig.sequences.cli import main

    monkeypatch.chdir(tmp_path)
    argv = [
        "train",
        "trackformer",
        "--retune",
        str(tmp_path / "old.onnx"),
        "--max-events",
        "2",
        "--stores",
        ",".join(STORES.values()),
    ]
    assert main(argv) == 0
    assert {p.name: p.read_bytes() for p in tmp_path.glob("old.*")} == before  # the model retuned is unchanged
    new = json.loads((tmp_path / "recotrig-models" / "old.card.json").read_text())
    for card in (new, entries):
        card["held_out"].pop("ms_per_event")  # a timing
    assert new == {**old, **entries, "name": "old", "retune_command": "recotrig " + " ".join(argv)}
    assert (tmp_path / "recotrig-models" / "old.onnx").read_bytes() == before["old.onnx"]
    assert (
        registry.load(str(tmp_path / "recotrig-models" / "old.onnx")).card["clustering"]["link_overlap"]
        == entries["clustering"]["link_overlap"]
    )
    assert main(argv) == 1  # a second time: the model exists there, and --force is not given


def test_a_card_with_an_unusable_threshold_fails_at_initialize(tiny_cla, tmp_path):
    folder, _ = tiny_cla
    card = json.loads((folder / "tiny_links.card.json").read_text())
    shutil.copy(folder / "tiny_links.onnx", tmp_path / "bad.onnx")
    card["clustering"]["link_overlap"] = -0.5
    registry.write_card(tmp_path / "bad.onnx", card)
    with pytest.raises(
        ConfigError,
        match=r"TrackFormerFinder: .*bad\.onnx: the card's clustering link_overlap -0\.5 "
        r"is not in \[0, 1\]",
    ):
        finder_on(tmp_path / "bad.onnx")
