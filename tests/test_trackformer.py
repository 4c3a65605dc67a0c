"""TrackFormer: the model layer, a tiny model trained end to end, ONNX Runtime against torch, the
shipped model against its card, TrackFormerFinder in sequences, and its bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.edm import Hits
from recotrig.framework import ConfigError, EventError, Sequencer
from recotrig.io.hit_reader import HitReader
from recotrig.metrics.performance import Performance
from recotrig.models import registry
from recotrig.models.trackformer import dataset
from recotrig.sequences.samples import SAMPLE_MU20, SAMPLE_MU60

SHIPPED = "trackformer-encreg-10-50"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny EncReg trained in seconds: data set -> training -> ONNX -> card."""
    from recotrig.models.trackformer.train import train

    folder = tmp_path_factory.mktemp("tiny")
    card = train(name="tiny", low=10, high=20, stores={"train": str(SAMPLE_MU60), "val": str(SAMPLE_MU20),
                                                       "test": str(SAMPLE_MU20)},
                 out=folder, work=folder / "work", epochs=2, seed=3, draws=2, d=16, layers=1, heads=2, batch=4,
                 lr=3e-3, threads=1, max_events=2, progress=False)
    return folder, card


def test_tiny_model_trains_exports_and_runs_in_a_sequence(tiny, tmp_path):
    folder, card = tiny
    model = registry.load(str(folder / "tiny.onnx"), family="trackformer")
    assert model.card["onnx_sha256"] == registry.sha256(folder / "tiny.onnx")
    assert card["onnx_vs_torch_max_abs_diff"] < 1e-5  # ONNX Runtime gives torch's output
    assert card["data"]["events"] == {"train": 4, "val": 4, "test": 4} and (folder / "tiny.card.md").exists()
    seq = Sequencer([HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=15),
                     TrackFormerFinder(model=str(folder / "tiny.onnx")),
                     Performance(tracks=["tracks"], output=str(tmp_path), min_hits=4)])
    result = seq.run(progress=False)
    assert result.processed == 3
    record = result.record["files"]["model"][0]
    assert record["sha256"] == card["onnx_sha256"]


def test_training_resumes_from_its_checkpoint(tiny):
    from recotrig.models.trackformer.train import train

    folder, card = tiny
    again = train(name="tiny", low=10, high=20, stores={"train": str(SAMPLE_MU60), "val": str(SAMPLE_MU20),
                                                        "test": str(SAMPLE_MU20)},
                  out=folder / "again", work=folder / "work", epochs=2, seed=3, draws=2, d=16, layers=1, heads=2,
                  batch=4, lr=3e-3, threads=1, max_events=2, progress=False)
    assert again["training"]["seconds"] == card["training"]["seconds"]  # nothing trained again
    assert again["onnx_sha256"] == card["onnx_sha256"]


def test_onnx_runtime_equals_torch_on_dynamic_hit_counts(tiny):
    from recotrig.models.runtime import Session
    from recotrig.models.trackformer.model import Encoder
    from recotrig.models.trackformer.train import export

    model = Encoder(d=16, layers=1, heads=2, ff=32).eval()
    path = tiny[0] / "dynamic.onnx"
    export(model, path)
    session = Session(path)
    rng = np.random.default_rng(1)
    for n in (3, 40, 333):
        x = rng.normal(size=(1, n, 3)).astype(np.float32)
        m = np.ones((1, n), np.float32)
        with torch.no_grad():
            reference = model(torch.from_numpy(x), torch.from_numpy(m)).numpy()
        assert np.abs(session.run(hits=x, mask=m)["output"] - reference).max() < 1e-5


def test_the_shipped_model_reaches_its_card(tmp_path):
    from recotrig.models.trackformer.train import SAMPLE_CHECK, evaluate

    model = registry.load(SHIPPED, family="trackformer")
    card = model.card
    # ORT and torch differ by up to 5e-4 on this model's outputs (z-scored, of order 1): float32
    # attention summed in another order; the card's figures are all measured through ORT
    assert card["onnx_vs_torch_max_abs_diff"] < 1e-3 and model.onnx.stat().st_size < 5e6
    check = card["sample_check"]
    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK)
    assert evaluate(model.onnx, samples, card) == pytest.approx(check["trackml_score"], abs=0.01)
    assert card["held_out"]["trackml_score"] > 0.85


def test_trackformer_sequence_is_identical_with_two_workers(tmp_path):
    from recotrig.sequences.cli import main

    for jobs in ("1", "2"):
        assert main(["run", "trackformer", "-o", str(tmp_path / jobs), "-j", jobs, "--no-progress"]) == 0
    for name in ("tracks.root", "comparison.json", "performance.json"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    rows = {r["algorithm"]: r for r in json.loads((tmp_path / "1" / "comparison.json").read_text())["rows"]}
    assert set(rows) == {"ActsCKF [tracks_ckf]", "TrackFormerEncReg [tracks_encreg]",
                         "FitEncReg [tracks_encreg_fitted]"}


# -- bad input -------------------------------------------------------------------------------------
def finder_on(path, **options) -> TrackFormerFinder:
    finder = TrackFormerFinder(model=str(path), **options)
    finder.initialize()
    return finder


def test_missing_corrupted_and_mismatched_models_fail_at_initialize(tiny, tmp_path):
    folder, _ = tiny
    with pytest.raises(ConfigError, match=r"no shipped model 'nope'"):
        finder_on("nope")
    shutil.copy(folder / "tiny.onnx", tmp_path / "bad.onnx")
    with pytest.raises(ConfigError, match=r"bad\.onnx: its card bad\.card\.json is missing"):
        finder_on(tmp_path / "bad.onnx")
    card = json.loads((folder / "tiny.card.json").read_text())
    (tmp_path / "bad.card.json").write_text(json.dumps(card))
    data = bytearray((tmp_path / "bad.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.onnx").write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"bad\.onnx: the file's sha256 .* differs from its card's"):
        finder_on(tmp_path / "bad.onnx")
    shutil.copy(folder / "tiny.onnx", tmp_path / "other.onnx")
    (tmp_path / "other.card.json").write_text(json.dumps(dict(card, features=["x", "y", "r"])))
    with pytest.raises(ConfigError, match=r"other\.onnx: the card's 'features' is \['x', 'y', 'r'\]"):
        finder_on(tmp_path / "other.onnx")


def test_empty_and_oversized_events(tiny):
    finder = finder_on(tiny[0] / "tiny.onnx")
    empty = Hits(hit_id=np.zeros(0, np.int64), x=np.zeros(0), y=np.zeros(0), z=np.zeros(0))
    assert len(finder.execute(hits=empty)) == 0
    n = finder._max_hits + 1
    big = Hits(hit_id=np.arange(n), x=np.ones(n), y=np.ones(n), z=np.ones(n))
    with pytest.raises(ValueError, match=rf"{n} hits exceed the \d+ that model tiny\.onnx takes"):
        finder.execute(hits=big)


def test_an_oversized_event_in_a_run_names_the_event(tiny):
    seq = Sequencer([HitReader(input=str(SAMPLE_MU60), volumes=[7, 8, 9]),
                     TrackFormerFinder(model=str(tiny[0] / "tiny.onnx"), name="tf")])
    card = json.loads((tiny[0] / "tiny.card.json").read_text())
    if card["max_hits"] > 20000:
        pytest.fail("the card's capacity is larger than a full mu = 60 pixel event; the test needs a smaller one")
    with pytest.raises(EventError, match=r"event 0 \(entry 0\): tf failed: ValueError: tf: \d+ hits exceed"):
        seq.run(n_events=1, progress=False)
