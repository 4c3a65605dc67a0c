"""TrackFormer: the model layer, tiny EncReg and EncCla models trained end to end, ONNX Runtime
against torch, phi sectors and their merge, the shipped models against their cards,
TrackFormerFinder in sequences, and its bad inputs."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.edm import Hits
from recotrig.framework import ConfigError, EventError, Sequencer
from recotrig.io.hit_reader import HitReader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.models import registry
from recotrig.sequences.samples import SAMPLE_MU20, SAMPLE_MU60
from recotrig.training.trackformer import dataset
from recotrig.training.trackformer.train import OVERLAPS

#: shipped models and the least held-out TrackML score each must keep: the issue's goals (the docs
#: quote 0.969, 0.985, 0.904, 0.923 and 0.876 on 400, 80, 20, 20 and 20 events of seed 303, and
#: 0.967 / 0.983 / 0.904 / 0.914 / 0.861 on 100 crossings of seed 404)
SHIPPED = {
    "trackformer-encreg-10-50": 0.95,
    "trackformer-enccla-10-50": 0.96,
    "trackformer-encreg-200-500": 0.80,
    "trackformer-enccla-200-500": 0.85,
    "trackformer-encreg-200-500-fast": 0.80,
}
STORES = {"train": str(SAMPLE_MU60), "val": str(SAMPLE_MU20), "test": str(SAMPLE_MU20)}
TINY = dict(
    stores=STORES,
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
    progress=False,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny EncReg trained in seconds: data set -> training -> ONNX -> card."""
    from recotrig.training.trackformer.train import train

    folder = tmp_path_factory.mktemp("tiny")
    return folder, train(name="tiny", out=folder, work=folder / "work", **TINY)


@pytest.fixture(scope="module")
def tiny_cla(tmp_path_factory):
    """A tiny EncCla (4 x 4 x 2 x 2 classes) on 200-500-track events cut into 12 phi sectors."""
    from recotrig.training.trackformer.train import train

    folder = tmp_path_factory.mktemp("tiny_cla")
    card = train(
        name="tiny_cla",
        kind="enccla",
        data="200-500",
        out=folder,
        work=folder / "work",
        bins={"phi": 4, "theta": 4, "p": 2},
        **TINY,
    )
    return folder, card


def test_tiny_model_trains_exports_and_runs_in_a_sequence(tiny, tmp_path):
    folder, card = tiny
    model = registry.load(str(folder / "tiny.onnx"), family="trackformer")
    assert model.card["onnx_sha256"] == registry.sha256(folder / "tiny.onnx")
    assert card["onnx_vs_torch_max_abs_diff"] < 1e-5  # ONNX Runtime gives torch's output
    assert card["data"]["events"] == {"train": 4, "val": 4, "test": 4} and (folder / "tiny.card.md").exists()
    assert card["sectors"] == {"n": 1, "overlap": 0.0} and card["data"]["windows"] == {"train": 4}
    seq = Sequencer(
        [
            HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=15),
            TrackFormerFinder(model=str(folder / "tiny.onnx")),
            Performance(tracks=["tracks"], output=str(tmp_path), min_hits=4),
        ]
    )
    result = seq.run(progress=False)
    assert result.processed == 3
    record = result.record["files"]["model"][0]
    assert record["sha256"] == card["onnx_sha256"]


def test_training_resumes_from_its_checkpoint(tiny):
    from recotrig.training.trackformer.train import train

    folder, card = tiny
    again = train(name="tiny", out=folder / "again", work=folder / "work", **TINY)
    assert again["training"]["seconds"] == card["training"]["seconds"]  # nothing trained again
    assert again["training"]["pieces"] == card["training"]["pieces"] == 1
    assert again["onnx_sha256"] == card["onnx_sha256"]


def test_onnx_runtime_equals_torch_on_dynamic_hit_counts(tiny):
    from recotrig.models.runtime import Session
    from recotrig.training.trackformer.model import Encoder
    from recotrig.training.trackformer.train import export

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


def test_no_softmax_weight_is_denormal_and_the_rest_are_unchanged():
    """Scores 200 apart: a plain softmax gives denormal float32 weights (slow on a CPU), the floored
    one none, and the same weights wherever the scores are within the span of the largest."""
    from recotrig.training.trackformer.model import SCORE_SPAN, softmax

    scores = torch.linspace(0.0, -200.0, 401)[None]
    plain, floored = torch.softmax(scores, -1), softmax(scores)
    tiny = torch.finfo(torch.float32).tiny
    assert ((plain > 0) & (plain < tiny)).any()
    assert floored.min() >= floored.max() * math.exp(-SCORE_SPAN) * 0.99 and floored.min() > tiny
    within = scores >= scores.max() - SCORE_SPAN  # weights above the floor: exactly the plain ones
    assert torch.equal(floored[within], plain[within]) and floored[~within].max() <= plain[within].min()


@pytest.mark.parametrize("name", ["trackformer-encreg-200-500", "trackformer-enccla-200-500"])
def test_the_shipped_models_make_no_denormal_weights(name):
    """Every softmax of the shipped 200-500 models, on a 300-track window of the bundled sample:
    no denormal weights (the plain softmax gave a few per cent, and twice the encoder's time)."""
    import onnx
    import onnxruntime as ort

    from recotrig.models.trackformer.inference import Finder

    model = registry.load(name, family="trackformer")
    graph = onnx.load(str(model.onnx))
    weights = [n.output[0] for n in graph.graph.node if n.op_type == "Softmax"]
    joint = model.card["kind"] == "enccla" and "head" not in model.card  # a factorised head has log-softmaxes
    assert len(weights) == model.card["hyper_parameters"]["layers"] + joint
    graph.graph.output.extend(onnx.ValueInfoProto(name=w) for w in weights)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    sample = dataset.build(str(SAMPLE_MU20), low=300, high=300, draws=1, seed=1)[0]
    finder = Finder(None, model.card).with_overlap(model.card["sectors"]["trained_overlap"])  # the wider window
    window = finder.sectors.windows(sample.features[:, 0], sample.features[:, 1])[0]
    x = ((finder.sectors.rotate(sample.features[window], 0) - finder.mean) / finder.std)[None].astype(np.float32)
    outputs = session.run(weights, {"hits": x, "mask": np.ones(x.shape[:2], np.float32)})
    assert len(window) > 150
    for w in outputs:
        assert not ((w > 0) & (w < np.finfo(np.float32).tiny)).any()


@pytest.mark.parametrize("top_k", [0, 3])
def test_weights_read_back_from_onnx_are_the_trained_ones(tmp_path, top_k):
    """``weights_of`` recovers an exported encoder's parameters exactly (EncReg, and EncCla inside
    its top-k graph), so ``--reexport`` writes a model's own numbers through the current export."""
    from recotrig.training.trackformer.model import Encoder
    from recotrig.training.trackformer.train import export, weights_of

    torch.manual_seed(2)
    model = Encoder(d=16, layers=2, heads=2, ff=32, outputs=4 if not top_k else 11).eval()
    export(model, tmp_path / "m.onnx", top_k=top_k)
    state = weights_of(tmp_path / "m.onnx")
    assert sorted(state) == sorted(model.state_dict())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_reexport_writes_the_same_outputs_with_the_card_it_had(tiny, tmp_path):
    from recotrig.sequences.cli import main

    folder = tiny[0]
    card = registry.load(str(folder / "tiny.onnx"), family="trackformer").card
    assert main(["train", "trackformer", "--reexport", str(folder / "tiny.onnx"), "--output", str(tmp_path)]) == 0
    again = registry.load(str(tmp_path / "tiny.onnx"), family="trackformer").card
    assert again["reexport"]["max_abs_diff"] < 1e-6
    assert again["reexport"]["previous_onnx_sha256"] == card["onnx_sha256"]
    assert again["onnx_sha256"] == registry.sha256(tmp_path / "tiny.onnx")
    same = ("reexport", "onnx_sha256")
    assert {k: v for k, v in again.items() if k not in same} == {k: v for k, v in card.items() if k not in same}


def test_tiny_enccla_gives_tracks_with_their_top_k_posteriors(tiny_cla, tmp_path):
    folder, card = tiny_cla
    assert card["onnx_vs_torch_max_abs_diff"] < 1e-5
    assert card["classes"]["count"] == 4 * 4 * 2 * 2
    # the windows' overlap tuned at inference, never wider than the training's
    assert card["sectors"]["n"] == 12 and card["sectors"]["trained_overlap"] == 0.1
    assert card["sectors"]["overlap"] in OVERLAPS and card["sectors"]["overlap"] <= 0.1
    assert card["data"]["windows"]["train"] > 12 * 3  # every event gives its windows
    seq = Sequencer(
        [
            HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=300),
            TrackFormerFinder(model=str(folder / "tiny_cla.onnx")),
            StoreWriter(path=str(tmp_path / "tracks.root"), collections=["tracks"]),
        ]
    )
    assert seq.run(progress=False, n_events=2).processed == 2
    finder = finder_on(folder / "tiny_cla.onnx")
    empty = finder.execute(hits=Hits(hit_id=np.zeros(0, np.int64), x=np.zeros(0), y=np.zeros(0), z=np.zeros(0)))
    assert len(empty) == 0 and "top3_prob" in empty
    reader = HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=300)
    reader.prepare(0, 1)
    hits = reader.read(0)[0]
    tracks = finder.execute(hits=hits)
    assert len(tracks) > 4
    hit_ids = np.concatenate([np.asarray(t) for t in tracks.hit_ids.tolist()])
    assert len(np.unique(hit_ids)) == len(hit_ids) and np.isin(hit_ids, np.asarray(hits.hit_id)).all()
    for j in (1, 2, 3):  # parallel to hit_ids, the top-1 class the one a track is made of
        assert [len(c) for c in tracks[f"top{j}_class"].tolist()] == [len(t) for t in tracks.hit_ids.tolist()]
    probs = [np.asarray(tracks[f"top{j}_prob"].tolist()[0]) for j in (1, 2, 3)]
    assert (probs[0] >= probs[1]).all() and (probs[1] >= probs[2]).all() and (probs[0] <= 1).all()
    first = np.asarray(tracks["top1_class"].tolist()[0])
    assert (first == first[0]).all()


@pytest.mark.parametrize("bins", [(5, 4, 6), (4, 3, 2)])
def test_the_factorised_top_k_is_the_top_k_of_every_product(bins):
    """``FactorisedTopK`` forms only k^3 products, yet gives the k most probable of all
    phi x theta x (p, charge) classes, with class ids in ``classes.py``'s order (a factor with
    fewer than k bins too)."""
    from recotrig.training.trackformer.model import Encoder, FactorisedHead, FactorisedTopK

    torch.manual_seed(4)
    encoder = Encoder(d=16, layers=1, heads=2, ff=32, outputs=2).eval()
    head = FactorisedHead(16, 8, bins).eval()
    x, mask = torch.randn(2, 9, 3), torch.ones(2, 9)
    with torch.no_grad():
        classes, probabilities = FactorisedTopK(encoder, head, 3)(x, mask)
        p, t, q = head(encoder.features(x, mask))
        joint = (p[..., :, None, None] + t[..., None, :, None] + q[..., None, None, :]).flatten(-3)
    best, index = joint.topk(3, dim=-1)
    assert torch.equal(classes, index) and torch.allclose(probabilities, best.exp())
    assert (probabilities <= 1).all() and (probabilities[..., :-1] >= probabilities[..., 1:]).all()


def test_a_factorised_enccla_is_trained_on_its_encoder_and_runs_in_the_finder(tiny, tiny_cla, tmp_path, capsys):
    """``--factorise``: the joint head of an EncCla replaced by a factorised one trained on the
    frozen encoder, the track building tuned again, the card telling what was done; the finder runs
    it as it runs any EncCla; a model already factorised, or an EncReg, is refused."""
    from recotrig.sequences.cli import main

    folder, before = tiny_cla
    stores = ",".join(STORES[k] for k in ("train", "val", "test"))
    options = ["--stores", stores, "--max-events", "2", "--epochs", "2", "--output", str(tmp_path)]
    assert main(["train", "trackformer", "--factorise", str(folder / "tiny_cla.onnx"), *options]) == 0
    model = registry.load(str(tmp_path / "tiny_cla.onnx"), family="trackformer")
    card = model.card
    assert card["head"]["kind"] == "factorised" and card["head"]["factors"] == {"phi": 4, "theta": 4, "p_charge": 4}
    assert card["head"]["command"].startswith("recotrig train trackformer --factorise")
    assert card["command"] == before["command"] and card["classes"] == before["classes"]
    assert card["head"]["hits"] > 1000 and card["head"]["training"]["pieces"] == 1
    assert card["onnx_vs_torch_max_abs_diff"] < 1e-5
    assert 0 <= card["held_out"]["trackml_score"] <= 1 and "clustering" in card
    assert card["parameters"] < before["parameters"] + 16 * 128 + 128 * 12 + 128 + 12
    reader = HitReader(input=str(SAMPLE_MU20), volumes=[7, 8, 9], tracks_per_event=300)
    reader.prepare(0, 1)
    tracks = finder_on(tmp_path / "tiny_cla.onnx").execute(hits=reader.read(0)[0])
    assert len(tracks) > 0 and "top3_prob" in tracks
    for refused in (tmp_path / "tiny_cla.onnx", tiny[0] / "tiny.onnx"):  # factorised already; an EncReg
        assert main(["train", "trackformer", "--factorise", str(refused), *options[:-1], str(tmp_path / "b")]) == 1
        assert "EncCla with a joint class head" in capsys.readouterr().err


def test_tuning_scores_each_min_hits_from_one_refinement_as_its_own_run_would(tiny_cla):
    """EncCla cuts its smallest track after the helix refinement, so the tuning builds the tracks
    of settings that differ in min_hits alone once: the scores are those of each setting's run."""
    from recotrig.models.runtime import Session
    from recotrig.models.trackformer.inference import Finder
    from recotrig.training.trackformer import train

    folder, card = tiny_cla
    finder = Finder(Session(folder / "tiny_cla.onnx", threads=1), card)
    val = dataset.build(str(SAMPLE_MU20), low=200, high=300, draws=1, seed=1, max_events=2)
    predictions = [finder.predict(s.features) for s in val]
    helix = {"xy_mm": 2.0, "rz_mm": 1.0, "min_hits": 2}
    settings = [{"min_hits": m, "link_overlap": o, "helix": helix} for m in (1, 3, 4) for o in (0.1, 0.3)]
    shared = train._refined_scores(finder, val, settings, predictions)
    assert shared == [train._score(finder, val, p, predictions) for p in settings]
    assert len(set(shared)) > 1


def test_sectors_cover_every_hit_and_merge_each_track_once():
    from recotrig.models.trackformer.sectors import Sectors

    rng = np.random.default_rng(4)
    phi = rng.uniform(-np.pi, np.pi, 2000)
    r = rng.uniform(30, 170, 2000)
    x, y = r * np.cos(phi), r * np.sin(phi)
    sectors = Sectors(12, 0.1)
    windows = sectors.windows(x, y)
    assert len(windows) == 12 and set(np.concatenate(windows)) == set(range(2000))
    sizes = np.array([len(w) for w in windows])
    assert (np.abs(sizes / 2000 - (2 * np.pi / 12 + 0.2) / (2 * np.pi)) < 0.04).all()
    features = np.stack([x, y, rng.normal(size=2000)], axis=1).astype(np.float32)
    turned = sectors.rotate(features[windows[3]], 3)  # about the beam line: r and z kept, phi about 0
    assert np.allclose(np.hypot(turned[:, 0], turned[:, 1]), r[windows[3]], rtol=1e-5)
    assert (np.abs(np.arctan2(turned[:, 1], turned[:, 0])) <= np.pi / 12 + 0.1 + 1e-5).all()
    targets = np.stack([np.ones(2000), np.sin(phi), np.cos(phi), np.ones(2000)], 1)[windows[3]]
    assert np.allclose(
        sectors.rotate_targets(targets, 3)[:, 1], np.sin(np.arctan2(turned[:, 1], turned[:, 0])), atol=1e-5
    )
    # a track in the overlap of sectors 3 and 4, seen by both windows: kept once, by its owner
    border = -np.pi + 4 * 2 * np.pi / 12
    track = np.flatnonzero(np.abs(phi - (border + 0.03)) < 0.02)
    shorter = track[:-2]  # the neighbour saw it partly, and a stray hit in sector 3 only
    merged = sectors.merge(
        [(3, shorter), (4, track), (3, np.flatnonzero(np.abs(phi - (border - 0.3)) < 0.01))], x, y, min_hits=2
    )
    assert [k for k, _ in merged].count(4) == 1 and all(len(np.intersect1d(t, track)) == 0 or k == 4 for k, t in merged)
    assert Sectors(1).windows(x, y)[0].tolist() == list(range(2000))
    with pytest.raises(ValueError, match="overlap"):
        Sectors(4, 4.0)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_models_reach_their_cards(name):
    from recotrig.training.trackformer.train import SAMPLE_CHECK, evaluate

    model = registry.load(name, family="trackformer")
    card = model.card
    # EncReg: ORT and torch differ by up to 5e-4 on its outputs (z-scored, of order 1); EncCla's
    # probabilities agree to 1e-5 - or to twice the model's own float32 rounding (torch float32
    # against float64, in the card) where that is larger: ORT cannot be closer to torch than that
    bound = 1e-3 if card["kind"] == "encreg" else 1e-5
    bound = max(bound, 2 * card.get("torch_float32_vs_float64_max_abs_diff", 0.0))
    assert card["onnx_vs_torch_max_abs_diff"] < bound
    assert model.onnx.stat().st_size < 5e6
    check = card["sample_check"]
    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK[card["data"]["dataset"]])
    assert evaluate(model.onnx, samples, card) == pytest.approx(check["trackml_score"], abs=0.01)
    assert card["held_out"]["trackml_score"] > SHIPPED[name]
    if card["kind"] == "enccla":  # classes linked through their hits' posteriors: few duplicates
        assert card["clustering"]["link_overlap"] > 0
        assert card["held_out"]["duplicate_rate"] < (0.05 if card["data"]["dataset"] == "10-50" else 0.1)


def test_the_helix_refinement_lifts_encreg_on_the_bundled_sample():
    """EncReg 10-50 on the bundled sample's reduced events (never used in training or tuning):
    the card's helix refinement against the network's candidates alone (held-out seed 303:
    0.969 against 0.891)."""
    from recotrig.training.trackformer.train import SAMPLE_CHECK, evaluate

    model = registry.load("trackformer-encreg-10-50", family="trackformer")
    card = model.card
    assert card["clustering"]["helix"]
    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK["10-50"])
    plain = {**card, "clustering": {**card["clustering"], "helix": None}}
    assert evaluate(model.onnx, samples, card) > evaluate(model.onnx, samples, plain) + 0.04


WARM_UP_CHECK = """
import json, sys
import numpy as np
from recotrig.models import registry
from recotrig.models.runtime import Session
from recotrig.models.trackformer import helices, inference, tracks
from recotrig.io.hit_reader import HitReader
kernels = [getattr(m, n) for m in (tracks, helices) for n in dir(m) if hasattr(getattr(m, n), "signatures")]
inference.warm_up()
warm = [len(k.signatures) for k in kernels]
model = registry.load(sys.argv[1], family="trackformer")
finder = inference.Finder(Session(model.onnx, threads=1), model.card)
hits = HitReader(input=sys.argv[2], volumes=[7, 8, 9], tracks_per_event=int(sys.argv[3])).read(0)[0]
finder(np.stack([np.asarray(hits[c], np.float32) for c in "xyz"], axis=1), inference.params_of(model.card))
print(json.dumps([len(kernels), warm, [len(k.signatures) for k in kernels]]))
"""


@pytest.mark.parametrize("name, tracks", [("trackformer-encreg-10-50", 30), ("trackformer-enccla-200-500", 300)])
def test_the_warm_up_compiles_what_an_event_calls(name, tracks):
    """``warm_up`` (TrackFormerFinder.initialize) loads every compiled loop of the track building,
    with the argument types an event gives them: the event after it, in a fresh process, adds no
    compilation (which would cost seconds in its time)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", WARM_UP_CHECK, name, str(SAMPLE_MU20), str(tracks)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    count, warm, after = json.loads(done.stdout.splitlines()[-1])
    assert count >= 7 and sum(warm) >= 4 and max(warm) == 1  # the helpers they call compile inside them
    assert after == warm


def test_trackformer_sequence_is_identical_with_two_workers(tmp_path):
    from recotrig.sequences.cli import main

    for jobs in ("1", "2"):
        assert main(["run", "trackformer", "-o", str(tmp_path / jobs), "-j", jobs, "--no-progress"]) == 0
    for name in ("tracks.root", "comparison.json", "performance.json"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    rows = {r["algorithm"]: r for r in json.loads((tmp_path / "1" / "comparison.json").read_text())["rows"]}
    assert set(rows) == {
        "ActsCKF [tracks_ckf]",
        "TrackFormerEncReg [tracks_encreg]",
        "TrackFormerEncCla [tracks_enccla]",
        "FitEncReg [tracks_encreg_fitted]",
        "FitEncCla [tracks_enccla_fitted]",
    }


def test_dense_sequence_runs_the_sectored_model_beside_ckf(tmp_path):
    from recotrig.sequences.cli import main

    assert main(["run", "trackformer_dense", "-o", str(tmp_path), "--no-progress"]) == 0
    performance = json.loads((tmp_path / "performance.json").read_text())
    rows = {r["algorithm"]: r for r in json.loads((tmp_path / "comparison.json").read_text())["rows"]}
    assert set(rows) == {
        "ActsCKF [tracks_ckf]",
        "TrackFormerEncReg [tracks_encreg]",
        "FitEncReg [tracks_encreg_fitted]",
        "TrackFormerEncCla [tracks_enccla]",
        "FitEncCla [tracks_enccla_fitted]",
    }
    for kind in ("EncReg", "EncCla"):
        card = registry.load(f"trackformer-{kind.lower()}-200-500", family="trackformer").card
        # 3 crossings of 300 tracks: the held-out score of 80 events of 200-500 within a statistical margin
        score = rows[f"TrackFormer{kind} [tracks_{kind.lower()}]"]["trackml_score"]
        assert score == pytest.approx(card["held_out"]["trackml_score"], abs=0.08)
    binned = performance["results"]["tracks_encreg"]["binned"]  # the rates in bins of pT and |eta|
    assert len(binned["pt"]["efficiency"]) == len(binned["pt"]["edges"]) - 1 and sum(binned["eta"]["n_tracks"]) > 0


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
    n = finder._finder.max_hits + 1
    big = Hits(hit_id=np.arange(n), x=np.ones(n), y=np.ones(n), z=np.ones(n))
    with pytest.raises(ValueError, match=rf"{n} hits: model tiny\.onnx: {n} hits in one window exceed the \d+"):
        finder.execute(hits=big)


def test_an_oversized_event_in_a_run_names_the_event(tiny):
    seq = Sequencer(
        [
            HitReader(input=str(SAMPLE_MU60), volumes=[7, 8, 9]),
            TrackFormerFinder(model=str(tiny[0] / "tiny.onnx"), name="tf"),
        ]
    )
    card = json.loads((tiny[0] / "tiny.card.json").read_text())
    if card["max_hits"] > 20000:
        pytest.fail("the card's capacity is larger than a full mu = 60 pixel event; the test needs a smaller one")
    with pytest.raises(EventError, match=r"event 0 \(entry 0\): tf failed: ValueError: tf: \d+ hits: .* exceed"):
        seq.run(n_events=1, progress=False)


def test_windows_run_unpadded_with_the_outputs_of_one_padded_batch():
    """Each sector window goes through ONNX Runtime on its own, unpadded: the outputs are those
    of all windows in one batch padded to the longest (the padding masked), up to float rounding,
    and so are the tracks."""
    from recotrig.models.runtime import Session
    from recotrig.models.trackformer import inference

    model = registry.load("trackformer-encreg-200-500", family="trackformer")
    finder = inference.Finder(Session(model.onnx, threads=1), model.card)
    sample = dataset.build(str(SAMPLE_MU20), low=200, high=500, draws=1, seed=7, max_events=1)[0]
    params = inference.params_of(model.card)
    alone = finder.predict(sample.features)
    windows = alone.windows
    assert len(windows) == 12 and len({len(w) for w in windows}) > 1  # the batch pads
    longest = max(len(w) for w in windows)
    x = np.zeros((len(windows), longest, 3), np.float32)
    mask = np.zeros((len(windows), longest), np.float32)
    for i, (k, w) in enumerate(zip(alone.sectors, windows)):
        x[i, : len(w)] = (finder.sectors.rotate(sample.features[w], k) - finder.mean) / finder.std
        mask[i, : len(w)] = 1.0
    batch = finder.session.run(hits=x, mask=mask)["output"]
    padded = inference.Prediction(
        alone.sectors, windows, [{"output": batch[i, : len(w)]} for i, w in enumerate(windows)]
    )
    for a, b in zip(alone.outputs, padded.outputs):
        np.testing.assert_allclose(a["output"], b["output"], atol=1e-4)
    tracks = [finder.assemble(sample.features, p, params).tracks for p in (alone, padded)]
    assert [t.tolist() for t in tracks[0]] == [t.tolist() for t in tracks[1]]


@pytest.mark.parametrize("narrowest, expected", [(0.898, 0.08), (0.8992, 0.06)])
def test_tuning_keeps_the_narrowest_overlap_within_tie_of_the_best(monkeypatch, narrowest, expected):
    """Of the windows' overlaps (never wider than the training's 0.1 rad), the narrowest whose
    validation score is within TIE of the best: 0.08 when 0.06 loses more than TIE, else 0.06."""
    from types import SimpleNamespace

    from recotrig.training.trackformer import train

    class Finder(SimpleNamespace):
        def with_overlap(self, overlap):
            return Finder(sectors=train.Sectors(12, overlap))

        def predict(self, features):
            return self.sectors.overlap

    scores = {0.1: 0.899, 0.08: 0.9, 0.06: narrowest}
    monkeypatch.setattr(
        train, "_score", lambda finder, val, params, predictions: scores.get(finder.sectors.overlap, 0.9)
    )
    val = [SimpleNamespace(features=None)]
    finder, predictions = train._overlap(Finder(sectors=train.Sectors(12, 0.1)), val, {}, ["at 0.1"])
    assert finder.sectors.overlap == expected and predictions == [expected]
    narrow = Finder(sectors=train.Sectors(12, 0.07))  # trained narrower (0.9 there): 0.08, 0.1 not tried
    assert train._overlap(narrow, val, {}, ["at 0.07"])[0].sectors.overlap == min(expected, 0.07)
    unsectored = Finder(sectors=train.Sectors(1, 0.0))
    assert train._overlap(unsectored, val, {}, ["kept"]) == (unsectored, ["kept"])


@pytest.mark.parametrize("gap, fast", [(0.5e-3, True), (2e-3, False)])
def test_tuning_takes_the_fast_hdbscan_among_equal_scores(monkeypatch, gap, fast):
    """Of EncReg settings within TIE of the best validation score, tuning takes one with
    min_samples 1 (single linkage in C; scikit-learn's estimator costs several times more); one
    that scores worse by more than TIE is not taken for being fast."""
    from types import SimpleNamespace

    from recotrig.training.trackformer import train

    def score(finder, samples, params, predictions=None):
        best = params["min_cluster_size"] == 4 and params["min_samples"] == 3 and params["weights"][3] == 0.1
        fast = params["min_cluster_size"] == 4 and params["min_samples"] == 1 and params["weights"][3] == 0.1
        refined = 0.05 if params.get("helix") == train.HELIX_GRID[-1] else 0.0
        return 0.9 + refined + (0.01 if best else 0.01 - gap if fast else 0.0)

    monkeypatch.setattr(train, "_score", score)
    monkeypatch.setattr(train, "_metrics", lambda *a, **k: {"trackml_score": 0.0, "duplicate_rate": 0.0})
    finder = SimpleNamespace(kind="encreg", sectors=train.Sectors(1, 0.0))
    tuned = train.tune(finder, {"val": [], "test": []}, stores={"val": "v.root", "test": "t.root"}, predictions=[])
    assert tuned["clustering"]["min_samples"] == (1 if fast else 3)
    assert tuned["clustering"]["min_cluster_size"] == 4 and tuned["clustering"]["helix"] == train.HELIX_GRID[-1]


def test_training_batches_hold_each_window_once_and_windows_of_like_length():
    """``_batches``: per epoch every window once, in batches of windows of like length (sorted within
    runs of ``BUCKET`` batches, so little of a batch is padding), in an order the seed fixes."""
    from recotrig.training.trackformer.train import BUCKET, _batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(100, 500, 16 * BUCKET * 2 + 5)
    windows = [
        dataset.Sample(
            rng.normal(size=(n, 3)).astype(np.float32),
            np.full((n, 4), i, np.float32),  # the target names the window
            np.ones(n, np.float32),
            np.arange(n),
            np.arange(n),
            np.ones(n),
        )
        for i, n in enumerate(lengths)
    ]
    zero = {
        "features_mean": np.zeros(3),
        "features_std": np.ones(3),
        "targets_mean": np.zeros(4),
        "targets_std": np.ones(4),
    }

    def epoch(seed):
        return list(_batches(windows, [], 16, np.random.default_rng(seed), zero))

    batches = epoch(1)
    seen = [int(y[r, 0, 0]) for _, y, m in batches for r in range(len(y))]
    assert sorted(seen) == list(range(len(windows)))  # each window once
    for _, y, m in batches:  # each row is its window, its mask its length
        for r in range(len(y)):
            assert m[r].sum() == lengths[int(y[r, 0, 0])] and m[r, : lengths[int(y[r, 0, 0])]].all()
    padded = sum(m.numel() for _, _, m in batches) / sum(lengths)
    assert padded < 1.1  # random batches of these lengths pad to 1.57 times the hits
    assert [y[:, 0, 0].tolist() for _, y, _ in epoch(1)] == [y[:, 0, 0].tolist() for _, y, _ in batches]
    assert [y[:, 0, 0].tolist() for _, y, _ in epoch(2)] != [y[:, 0, 0].tolist() for _, y, _ in batches]
