"""Training, export and evaluation of a TrackFormer model (``recotrig train trackformer``).

    recotrig train trackformer --model encreg|enccla --dataset 10-50|200-500 [--epochs 60] [--output DIR]

The model goes to ``recotrig-models/`` (or ``--output DIR``), never over a model there without
``--force``, and into the shipped models only with ``--replace-shipped`` (``training.common``).

1. Stores: three simulated stores at mu = 20 with different seeds (training, validation, held-out
   test), made with ``recotrig simulate`` into the cache folder unless given (``--stores``).
2. Data sets: reductions of each crossing (``dataset.py``), cut into the model's phi sectors
   (``sectors.py``; one window per event at 10-50 tracks); a training example is one window.
3. Training: Adam; EncReg: MSE on the z-scored targets of real hits; EncCla: cross-entropy over the
   classes (``classes.py``, bin edges from the training windows). Batches of windows padded with a
   mask; deterministic for ``--seed``; a checkpoint after every epoch, and a run that finds one
   resumes from it (so a long training goes in pieces); a progress bar with the loss and events/s.
4. Export to ONNX (dynamic batch and hit axes; EncCla's graph ends in softmax and top-k) and a
   check that ONNX Runtime gives torch's output.
5. Tuning of the track building (HDBSCAN's parameters; EncCla's class linking and smallest track)
   on the validation events, through the finder itself (``inference.py``); the TrackML score and
   duplicate rate on the held-out events (``tune``; ``retune`` does it again for an existing model).
6. The card (JSON, and Markdown beside it) with everything needed to remake and use the model.

``--retune MODEL`` tunes an existing model's track building again, ``--reexport MODEL`` writes its
weights through this version's export, and ``--factorise MODEL`` gives an EncCla a factorised class
head (``factorise.py``); none of them trains the encoder.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recotrig.edm import HitTruth, Tracks
from recotrig.framework.arguments import ArgumentParser, integer
from recotrig.framework.sequencer import MAX_JOBS
from recotrig.io.fileset import expand
from recotrig.io.samples import SAMPLE_MU20
from recotrig.metrics.tracking import match_tracks, trackml_score
from recotrig.models.registry import cache_dir, sha256, write_card
from recotrig.models.registry import load as load_model
from recotrig.models.runtime import Session
from recotrig.models.trackformer import classes
from recotrig.models.trackformer.inference import Finder, Prediction, params_of
from recotrig.models.trackformer.sectors import Sectors
from recotrig.sim.store import simulate
from recotrig.training.common import (
    Checkpoint,
    add_output_options,
    export_onnx,
    model_output,
    run_epochs,
    training_entry,
)
from recotrig.training.trackformer import dataset
from recotrig.training.trackformer.model import Encoder, FactorisedTopK, TopK

__all__ = ["main", "retune", "train", "tune", "tuning_grid"]

DATASETS = {"10-50": (10, 50), "200-500": (200, 500)}
#: per data set: reductions per crossing and the phi sectors of its models (n, overlap in rad)
DRAWS = {"10-50": 20, "200-500": 4}
SECTORS = {"10-50": (1, 0.0), "200-500": (12, 0.1)}
TOP_K = 3  # EncCla: classes and probabilities per hit in the output
SIMULATION = {"train": (100, 101), "val": (20, 202), "test": (20, 303)}  # events, seed (mu = 20)
SPLIT_SEEDS = {"train": 0, "val": 1000, "test": 2000}  # reduction seeds per split
#: EncCla's class linking tried in tuning (``tracks.linked``; 0: none, the hits of a top-1 class are a track)
LINK_OVERLAPS = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)
#: validation scores this close to the best count as equal in tuning (see ``tune``)
TIE = 1e-3
#: EncReg: weights of the z-scored predicted charge in the clustering space tried in tuning (the angles weigh 1)
CHARGE_WEIGHTS = (1.0, 0.5, 0.25, 0.1)
#: the helix refinement tried in tuning after the network's own track building (``helices.refine``)
HELIX_GRID = tuple(
    {"xy_mm": x, "rz_mm": z, "min_hits": m} for x, z in ((1.0, 0.5), (2.0, 1.0), (3.0, 1.5)) for m in (2, 3)
)
#: a sectored model's window overlaps (rad on each side, ``Sectors``) tried at inference, none wider
#: than its training's: down to about the half-turn of a 0.5 GeV track across the pixel volumes
#: (0.05 rad); the narrowest within ``TIE`` of the best validation score is kept (narrower windows
#: hold fewer hits, and the attention costs their square)
OVERLAPS = (0.1, 0.08, 0.06)
#: iterative finding tried last in tuning (``Finder.assemble``): per schedule, the smallest track each
#: pass but the last keeps before the model runs again on the hits left (pixel tracks have 4-8 hits;
#: (): one pass); the fewest passes within ``TIE`` of the best validation score are kept. At most
#: five passes: each runs the model again (longer schedules, from 7 or 8 hits down, scored a little
#: more on the 200-500 validation events and cost a pass each)
PASSES = ((), (6,), (5,), (4,), (6, 5), (5, 4), (6, 5, 4), (6, 5, 4, 3))
ALGORITHM = {
    "encreg": "HDBSCAN (scikit-learn's labels) on the predictions scaled by weights (tracks.cluster)",
    "enccla": "top-1 classes, linked where their hits' top-k posteriors overlap by more than link_overlap "
    "(tracks.linked)",
}
REFINED = "; then split and merged by their helix fit within the helix tolerances (helices.refine)"
ITERATED = "; iterative: a pass's tracks of at least passes[i] hits kept, the model run again on the hits left"


def _cache() -> Path:
    return cache_dir("trackformer")


FACTORISE_CROSSINGS = 2000  #: training crossings of a factorised head (``--factorise``)
PIECE = 500  #: training crossings per store above PIECE: stores of PIECE crossings, seeds 1101, 1102, ...
BUCKET = 50  #: batches whose windows are sorted by length together (``_batches``)


def _pieces(split: str, events: int) -> list[tuple[int, int]]:
    """(crossings, seed) of each simulated store of a split of ``events`` crossings."""
    seed = SIMULATION[split][1]
    if split != "train" or events <= PIECE:
        return [(events, seed)]
    pieces = [(PIECE, 1100 + k) for k in range(1, math.ceil(events / PIECE) + 1)]
    pieces[-1] = (events - PIECE * (len(pieces) - 1), pieces[-1][1])
    return pieces


def _simulation(split: str, events: int) -> dict[str, Any]:
    """The card's description of a split's simulated stores."""
    seeds = [s for _, s in _pieces(split, events)]
    return {"events": events, "seed": seeds[0] if len(seeds) == 1 else seeds, "mu": 20}


def simulated_stores(
    folder: Path, jobs: int = 2, train_events: int | None = None, splits: tuple[str, ...] = tuple(SIMULATION)
) -> dict[str, str]:
    """The simulated stores of each split, made into ``folder`` when missing. Up to ``PIECE``
    training crossings are one store of seed 101 (its first crossings are the same for any number);
    more are stores of ``PIECE`` crossings each, seeds 1101, 1102, ... (made one by one, so a long
    simulation resumes where it stopped); the train entry then names them one per line."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split in splits:
        events = SIMULATION[split][0]
        if split == "train" and train_events:
            events = train_events
        paths = []
        for n, s in _pieces(split, events):
            suffix = "" if (n, s) == SIMULATION[split] else f"_n{n}"
            path = folder / f"{split}_mu20_seed{s}{suffix}.root"
            if not path.exists():
                simulate(path, events=n, mu=20.0, seed=s, jobs=jobs, progress=False)
            paths.append(str(path))
        out[split] = "\n".join(paths)
    return out


def _windows(samples: list[dataset.Sample], sectors: Sectors) -> list[dataset.Sample]:
    """Each event's sector windows, rotated to phi = 0 (features and targets): the training examples."""
    out = []
    for s in samples:
        for k, w in enumerate(sectors.windows(s.features[:, 0], s.features[:, 1])):
            if len(w):
                out.append(
                    dataset.Sample(
                        sectors.rotate(s.features[w], k),
                        sectors.rotate_targets(s.targets[w], k),
                        s.momentum[w],
                        s.hit_ids[w],
                        s.particle_ids[w],
                        s.weights[w],
                    )
                )
    return out


def _batches(
    windows: list[dataset.Sample],
    labels: list[np.ndarray],
    size: int,
    rng: np.random.Generator,
    norm: dict[str, np.ndarray],
):
    """Padded batches: hits, mask and the targets (EncReg: z-scored; EncCla: class ids, -1 on padding).
    The windows are shuffled, each run of ``BUCKET`` batches' windows sorted by length and cut into
    batches, and the batches shuffled: a batch is padded to its longest window, and windows of like
    length waste little on padding (one step 2.4 times faster at 300 tracks)."""
    order = rng.permutation(len(windows))
    lengths = np.array([len(w.hit_ids) for w in windows])
    cuts = []
    for first in range(0, len(order), size * BUCKET):
        run = order[first : first + size * BUCKET]
        run = run[np.argsort(lengths[run], kind="stable")]
        cuts += [run[start : start + size] for start in range(0, len(run), size)]
    for b in rng.permutation(len(cuts)):
        chosen = cuts[b]
        n = int(lengths[chosen].max())
        x = np.zeros((len(chosen), n, 3), np.float32)
        m = np.zeros((len(chosen), n), np.float32)
        y = np.zeros((len(chosen), n, 4), np.float32) if not labels else np.full((len(chosen), n), -1, np.int64)
        for row, i in enumerate(chosen):
            s = windows[i]
            k = len(s.hit_ids)
            x[row, :k] = (s.features - norm["features_mean"]) / norm["features_std"]
            y[row, :k] = labels[i] if labels else (s.targets - norm["targets_mean"]) / norm["targets_std"]
            m[row, :k] = 1.0
        yield torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)


def _datasets(
    stores: dict[str, str], *, data: str, draws: int, seed: int, max_events: int | None, cache: Path
) -> dict[str, list[dataset.Sample]]:
    """The reduced events of each split's stores (a fileset spec: several stores are reduced and
    cached one by one), built once into ``cache`` and read from there."""
    low, high = DATASETS[data]
    cache.mkdir(parents=True, exist_ok=True)
    samples = {}
    for split, spec in stores.items():
        samples[split] = []
        for store in expand(spec):
            cached = cache / f"{Path(store).stem}-{split}-{low}-{high}-d{draws}-s{seed}-n{max_events}.npz"
            if not cached.exists():
                dataset.save(
                    dataset.build(
                        store, low=low, high=high, draws=draws, seed=seed + SPLIT_SEEDS[split], max_events=max_events
                    ),
                    cached,
                )
            samples[split] += dataset.load(cached)
    return samples


def _runs(
    finder: Finder, samples: list[dataset.Sample], params: dict[str, Any], predictions: list[Prediction] | None = None
):
    """Per reduced event with weight: the finder's tracks, the truth, and the finder's seconds
    (predictions reused when given)."""
    for i, sample in enumerate(samples):
        if not len(sample.hit_ids) or sample.weights.sum() <= 0:
            continue
        t0 = time.perf_counter()
        prediction = finder.predict(sample.features) if predictions is None else predictions[i]
        found = finder.assemble(sample.features, prediction, params)
        seconds = time.perf_counter() - t0
        tracks = Tracks(hit_ids=[np.sort(sample.hit_ids[t]).tolist() for t in found.tracks])
        yield tracks, HitTruth(hit_id=sample.hit_ids, particle_id=sample.particle_ids, weight=sample.weights), seconds


def _score(finder: Finder, samples: list[dataset.Sample], params: dict[str, Any], predictions=None) -> float:
    """The mean TrackML score of the finder on reduced events (predictions reused when given)."""
    scores = [trackml_score(tracks, truth) for tracks, truth, _ in _runs(finder, samples, params, predictions)]
    return float(np.mean(scores)) if scores else math.nan


def _refined_scores(
    finder: Finder, samples: list[dataset.Sample], settings: list[dict[str, Any]], predictions: list[Prediction]
) -> list[float]:
    """``_score`` of each setting (each with a helix refinement). EncCla's smallest track is cut
    after the refinement (``Finder.assemble``), so settings that differ in min_hits alone share
    one track building: it runs once, with min_hits 1, and each min_hits keeps its tracks of as
    many hits (the same tracks as its own run)."""
    if finder.kind != "enccla":
        return [_score(finder, samples, p, predictions) for p in settings]
    built: dict[str, list] = {}
    out = []
    for p in settings:
        key = json.dumps({k: v for k, v in p.items() if k != "min_hits"}, sort_keys=True)
        if key not in built:
            built[key] = [
                (t.hit_ids.tolist(), truth) for t, truth, _ in _runs(finder, samples, {**p, "min_hits": 1}, predictions)
            ]
        scores = [
            trackml_score(Tracks(hit_ids=[h for h in hit_ids if len(h) >= p["min_hits"]]), truth)
            for hit_ids, truth in built[key]
        ]
        out.append(float(np.mean(scores)) if scores else math.nan)
    return out


def _metrics(
    finder: Finder, samples: list[dataset.Sample], params: dict[str, Any], predictions: list[Prediction] | None = None
) -> dict[str, Any]:
    """The mean TrackML score, the duplicate rate (duplicate tracks / tracks over all events, ACTS's
    ``duplicateratio_tracks``), the events and the finder's milliseconds per event."""
    scores, duplicates, found, seconds = [], 0, 0, 0.0
    for tracks, truth, t in _runs(finder, samples, params, predictions):
        scores.append(trackml_score(tracks, truth))
        duplicates += int(match_tracks(tracks, truth).duplicate.sum())
        found += len(tracks)
        seconds += t
    return {
        "trackml_score": float(np.mean(scores)) if scores else math.nan,
        "duplicate_rate": duplicates / found if found else math.nan,
        "events": len(samples),
        "ms_per_event": 1e3 * seconds / max(1, len(samples)),
    }


def tuning_grid(kind: str) -> list[dict[str, Any]]:
    """The track-building parameters tried on the validation events: EncReg's HDBSCAN
    (min_cluster_size, min_samples, and the weight of the predicted charge, ``CHARGE_WEIGHTS``);
    EncCla's smallest track (min_hits) and class linking (link_overlap, ``tracks.linked``)."""
    if kind == "encreg":
        return [
            {"min_cluster_size": c, "min_samples": s, "weights": [1.0, 1.0, 1.0, q]}
            for c in (2, 3, 4, 5)
            for s in (1, 2, 3)
            for q in CHARGE_WEIGHTS
        ]
    return [{"min_hits": h, "link_overlap": o} for h in (1, 2, 3, 4) for o in LINK_OVERLAPS]


def _cheap(params: dict[str, Any]) -> bool:
    """Whether a track-building setting takes the fast path: anything but EncReg's HDBSCAN with
    min_samples above 1 (``tracks.cluster``)."""
    return params.get("min_samples", 1) == 1


def tune(
    finder: Finder,
    samples: dict[str, list[dataset.Sample]],
    *,
    stores: dict[str, str],
    predictions: list[Prediction] | None = None,
) -> dict[str, Any]:
    """The track building tuned on ``samples["val"]`` through ``finder`` (its ``predictions`` on
    them reused when given) and scored on ``samples["test"]``: a card's ``clustering``,
    ``validation`` and ``held_out`` entries (``stores``: the stores they come from). The network's
    own track building is scored first (``tuning_grid``), then the helix refinement (``HELIX_GRID``)
    of the candidates of every one of its settings: small fragments the network's best setting
    drops may be what a refined track needs, and the refinement's merge joins what EncCla's links
    would otherwise have to (its best link_overlap with the refinement lies below the best
    without); then a sectored model's window overlap (``OVERLAPS``, the card's ``sectors``, with
    the ``trained_overlap`` the finder came with); last, the passes (``PASSES``, ``_with_passes``).

    The mean TrackML score decides; grid points within ``TIE`` of the best count as equal, and of
    those the one with the largest min_hits wins: the score gives particles of under 4 hits no
    weight, so it hardly sees the short tracks min_hits drops, which are mostly duplicates. Then
    the cheaper: HDBSCAN with min_samples 1 (single linkage in C, ``tracks.cluster``) costs a
    fraction of scikit-learn's estimator, which any other min_samples runs."""
    val = samples["val"]
    if predictions is None:
        predictions = [finder.predict(s.features) for s in val]
    grid = tuning_grid(finder.kind)
    scores = np.nan_to_num([_score(finder, val, p, predictions) for p in grid], nan=-np.inf)
    near = [(p, s) for p, s in zip(grid, scores) if s >= scores.max() - TIE]
    tuned = max(near, key=lambda ps: (ps[0].get("min_hits", 0), _cheap(ps[0]), ps[1]))[0]
    # then the helix refinement of every setting's candidates: taken where it scores more than
    # TIE above the network's own best; among equals, as above, the largest min_hits, then the
    # cheaper, then the network's better setting
    bases = [grid[k] for k in np.argsort(-scores, kind="stable")]
    refined = [{**p, "helix": h} for p in bases for h in HELIX_GRID]
    helix = np.nan_to_num(_refined_scores(finder, val, refined, predictions), nan=-np.inf)
    equal = [k for k in range(len(refined)) if helix[k] >= helix.max() - TIE]
    best = max(equal, key=lambda k: (refined[k].get("min_hits", 0), _cheap(refined[k]), -k))
    tuned = refined[best] if helix.max() > scores.max() + TIE else {**tuned, "helix": None}
    trained = finder.sectors.overlap
    finder, predictions = _overlap(finder, val, tuned, predictions)
    return _with_passes(finder, samples, tuned, predictions, stores=stores, trained_overlap=trained)


def _with_passes(
    finder: Finder,
    samples: dict[str, list[dataset.Sample]],
    tuned: dict[str, Any],
    predictions: list[Prediction],
    *,
    stores: dict[str, str],
    trained_overlap: float,
    max_passes: int | None = None,
) -> dict[str, Any]:
    """``tune``'s last step and its card entries: the track building ``tuned`` with the schedule of
    ``PASSES`` (iterative finding; with ``max_passes``, those of at most that many passes) that
    scores best on the validation events (``finder``'s ``predictions`` on them are its first pass);
    of those within ``TIE``, the fewest passes, since each pass runs the model again."""
    val = samples["val"]
    schedules = [p for p in PASSES if max_passes is None or len(p) < max_passes]
    scores = [_score(finder, val, {**tuned, "passes": list(p)}, predictions) for p in schedules]
    best = max(scores)
    tuned = {**tuned, "passes": list(min((p for p, s in zip(schedules, scores) if s >= best - TIE), key=len))}
    sectors = {"n": finder.sectors.n, "overlap": finder.sectors.overlap}
    if finder.sectors.n > 1:
        sectors["trained_overlap"] = trained_overlap
    validation = _metrics(finder, val, tuned, predictions)
    algorithm = ALGORITHM[finder.kind] + (REFINED if tuned["helix"] else "") + (ITERATED if tuned["passes"] else "")
    return {
        "clustering": {"algorithm": algorithm, **tuned},
        "sectors": sectors,
        "validation": {
            "store": Path(stores["val"]).name,
            "trackml_score": validation["trackml_score"],
            "duplicate_rate": validation["duplicate_rate"],
        },
        "held_out": {"store": Path(stores["test"]).name, **_metrics(finder, samples["test"], tuned)},
    }


def _overlap(
    finder: Finder, val: list[dataset.Sample], params: dict[str, Any], predictions: list[Prediction]
) -> tuple[Finder, list[Prediction]]:
    """The finder with the narrowest of ``OVERLAPS`` (none wider than its own) whose validation
    score is within ``TIE`` of the best, and its predictions on ``val``; an unsectored one as it is."""
    if finder.sectors.n == 1:
        return finder, predictions
    tried = {finder.sectors.overlap: (finder, predictions)}
    for overlap in OVERLAPS:
        if overlap < finder.sectors.overlap:
            other = finder.with_overlap(overlap)
            tried[overlap] = (other, [other.predict(s.features) for s in val])
    scores = {o: _score(f, val, params, p) for o, (f, p) in tried.items()}
    return tried[min(o for o, s in scores.items() if s >= max(scores.values()) - TIE)]


def retune(
    model: str | Path,
    *,
    stores: dict[str, str] | None = None,
    max_events: int | None = None,
    passes_only: bool = False,
    max_passes: int | None = None,
) -> dict[str, Any]:
    """``tune`` again for an existing TrackFormer model (ONNX + card: a shipped model's name or a
    path), with no training: the reductions of its card's data set, seeds and draws, and ONNX
    Runtime on 1 thread; with ``passes_only``, its last step alone (``_with_passes``: the card's
    track building and windows kept, the passes tuned; ``max_passes``: the most passes a schedule may
    have). ``stores``: {"val": ..., "test": ...}
    (default: the training's simulated stores, made when missing); ``max_events``: crossings per
    store (default: all). Returns the
    card entries that change (``summary``, ``clustering``, ``validation``, ``held_out``,
    ``sample_check``); nothing is written (``recotrig train trackformer --retune MODEL`` writes the
    model with its new card where a training would).
    """
    loaded = load_model(str(model), family="trackformer")
    card = loaded.card
    if stores is None:
        made = {split: card["data"]["simulation"][split]["seed"] for split in ("val", "test")}
        if made != {split: SIMULATION[split][1] for split in made}:
            raise ValueError(
                f"{loaded.onnx}: its validation and test stores have seeds {made}, not the training's "
                "defaults: give the stores"
            )
        stores = simulated_stores(_cache() / "stores", jobs=1, splits=("val", "test"))
    data = card["data"]["dataset"]
    samples = _datasets(
        stores,
        data=data,
        draws=int(card["data"]["draws_per_crossing"]),
        seed=int(card["seed"]),
        max_events=max_events,
        cache=_cache() / "work" / "datasets",
    )
    finder = Finder(Session(loaded.onnx, threads=1), card)
    trained = card["sectors"].get("trained_overlap", card["sectors"]["overlap"])
    if passes_only:  # the card's track building and windows, its passes tuned again
        predictions = [finder.predict(s.features) for s in samples["val"]]
        entries = _with_passes(
            finder, samples, params_of(card), predictions, stores=stores, trained_overlap=trained, max_passes=max_passes
        )
    else:  # its windows as in training, tuned again
        finder = finder.with_overlap(trained)
        entries = tune(finder, samples, stores=stores)
    tuned = params_of({**card, "clustering": entries["clustering"]})
    entries["sample_check"] = _sample_check(finder.with_overlap(entries["sectors"]["overlap"]), tuned, data)
    entries["summary"] = _summary(
        card["kind"], data, int(card["sectors"]["n"]), card.get("classes", {}).get("count"), entries["clustering"]
    )
    return entries


def _summary(kind: str, data: str, sectors: int, count: int | None, clustering: dict[str, Any]) -> str:
    """The card's one-paragraph description."""
    low, high = DATASETS[data]
    if kind == "encreg":
        method = (
            "a transformer encoder regresses [theta, sin phi, cos phi, q] per pixel hit, HDBSCAN groups hits "
            "into tracks"
        )
    else:
        method = (
            f"a transformer encoder classifies each pixel hit into {count} track classes (quantile bins of phi, "
            "theta, p and the charge); "
            + (
                "the hits of classes whose hits' top-k posteriors overlap are a track"
                if clustering.get("link_overlap")
                else "the hits of a class are a track"
            )
        )
    if clustering.get("helix"):
        method += ", split where they hold more than one helix from the beam line and merged where two hold one"
    if clustering.get("passes"):
        method += f"; found in {len(clustering['passes']) + 1} passes, each run on the hits the long tracks left"
    return (
        f"TrackFormer {kind}: {method}. Trained on {low}-{high}-track reductions of simulated mu = 20 crossings "
        f"(generic detector, pixel volumes 7, 8, 9), cut into {sectors} phi sector(s)."
    )


#: the quick check of a shipped model (tests/test_trackformer.py): the bundled mu = 20 sample (never
#: used in training or tuning), reduced with these settings per data set
SAMPLE_CHECK = {
    "10-50": {"low": 10, "high": 50, "draws": 5, "seed": 7},
    "200-500": {"low": 200, "high": 500, "draws": 1, "seed": 7},
}


def _sample_check(finder: Finder, params: dict[str, int], data: str) -> dict[str, Any]:
    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK[data])
    return {
        "store": SAMPLE_MU20.name,
        **SAMPLE_CHECK[data],
        "events": len(samples),
        "trackml_score": _score(finder, samples, params),
    }


def evaluate(model_path: str | Path, samples: list[dataset.Sample], card: dict[str, Any]) -> float:
    """The mean TrackML score of a model (ONNX + card) on reduced events."""
    return _score(Finder(Session(model_path, threads=1), card), samples, params_of(card))


def export(model: torch.nn.Module, path: str | Path, *, top_k: int = 0) -> None:
    """ONNX with dynamic event and hit axes; EncCla (``top_k`` > 0) ends in softmax and top-k (an
    encoder with a joint head), or is a ``FactorisedTopK`` graph already."""
    axes = {"events": 0, "hits": 1}
    names = ["output"] if not top_k else ["classes", "probabilities"]
    export_onnx(
        model if not top_k or isinstance(model, FactorisedTopK) else TopK(model, top_k),
        (torch.zeros(1, 7, 3), torch.ones(1, 7)),
        path,
        inputs=["hits", "mask"],
        outputs=names,
        dynamic_axes={n: {i: a for a, i in axes.items()} for n in ["hits", "mask", *names]},
    )


def weights_of(onnx: str | Path) -> dict[str, torch.Tensor]:
    """The ``Encoder`` state an exported model holds, read back from its ONNX file. The exporter
    names each node after its module (``/blocks.0/qkv/MatMul``; EncCla's inside ``/encoder/``) and
    shares one constant between equal parameters (through Identity nodes), so the parameters are
    found through the nodes:
    a Linear's weight is its MatMul's constant matrix, transposed, and its bias the constant its Add
    adds; a LayerNorm's are its node's second and third inputs."""
    import onnx as onnx_lib
    from onnx import numpy_helper

    graph = onnx_lib.load(str(onnx)).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # a shared constant reaches its other parameters through Identity nodes
        if node.op_type == "Identity" and node.input[0] in constants:
            constants[node.output[0]] = constants[node.input[0]]
    state = {}
    for node in graph.node:
        module = ".".join(node.name.strip("/").split("/")[:-1]).removeprefix("encoder.")
        held = [i for i in node.input if i in constants]
        if node.op_type == "LayerNormalization":
            state[f"{module}.weight"], state[f"{module}.bias"] = constants[node.input[1]], constants[node.input[2]]
        elif node.op_type == "MatMul" and held:
            state[f"{module}.weight"] = constants[held[0]].T
        elif node.op_type == "Add" and held and f"{module}.weight" in state and f"{module}.bias" not in state:
            state[f"{module}.bias"] = constants[held[0]]
    return {name: torch.from_numpy(np.array(value)) for name, value in state.items()}


def encoder_of(onnx: str | Path, card: dict[str, Any]) -> Encoder:
    """The card's encoder with the weights of its ONNX file (``weights_of``), in eval mode;
    ``ValueError`` when the file's weights do not make it (e.g. a factorised head's)."""
    hyper = card["hyper_parameters"]
    state = weights_of(onnx)
    try:
        model = Encoder(
            d=int(hyper["d"]),
            layers=int(hyper["layers"]),
            heads=int(hyper["heads"]),
            ff=int(hyper.get("ff", 128)),
            outputs=len(state["head.bias"]),
        )
        model.load_state_dict(state)
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{onnx}: its weights do not make the card's encoder ({err})") from None
    return model.eval()


def reexport(onnx: str | Path, card: dict[str, Any], out: str | Path) -> None:
    """An existing model's weights (``encoder_of``) written again through ``export``: the graph this
    version makes (e.g. ``model.softmax``'s floor), the numbers of the training."""
    export(encoder_of(onnx, card), out, top_k=TOP_K if card["kind"] == "enccla" else 0)


def _onnx_difference(a: str | Path, b: str | Path, card: dict[str, Any]) -> dict[str, Any]:
    """Two ONNX files of one model on the windows of its quick check (the bundled mu = 20 sample):
    the largest output difference (EncReg: the regression; EncCla: the top-k probabilities) and the
    share of EncCla's top-k classes that differ."""
    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK[card["data"]["dataset"]])
    x, y = (Finder(Session(path, threads=1), card) for path in (a, b))
    key = "output" if card["kind"] == "encreg" else "probabilities"
    worst, changed, total = 0.0, 0, 0
    for s in samples:
        for u, v in zip(x.predict(s.features).outputs, y.predict(s.features).outputs):
            worst = max(worst, float(np.abs(u[key] - v[key]).max()))
            if card["kind"] == "enccla":
                changed += int((u["classes"] != v["classes"]).sum())
                total += u["classes"].size
    out = {"windows_of": SAMPLE_MU20.name, "max_abs_diff": worst}
    if card["kind"] == "enccla":
        out["top_k_classes_changed"] = changed / max(1, total)
    return out


def train(
    *,
    name: str,
    kind: str = "encreg",
    data: str = "10-50",
    stores: dict[str, str],
    out: Path,
    work: Path,
    epochs: int,
    seed: int,
    draws: int,
    d: int,
    layers: int,
    heads: int,
    batch: int,
    lr: float,
    threads: int,
    sectors: tuple[int, float] | None = None,
    max_events: int | None = None,
    bins: dict[str, int] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    sectors = Sectors(*(sectors or SECTORS[data]))
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    samples = _datasets(
        stores, data=data, draws=draws, seed=seed, max_events=max_events, cache=work.parent / "datasets"
    )  # shared by the models trained on the same reductions
    windows = _windows(samples["train"], sectors)
    norm = _normalisation(windows)
    labels, class_card = _classes(windows, bins or classes.BINS, sectors) if kind == "enccla" else ([], None)
    hyper = {"d": d, "layers": layers, "heads": heads, "batch": batch, "lr": lr, "epochs": epochs}
    checkpoint = Checkpoint(work / f"{name}.checkpoint.pt")
    model, seconds, loss_value = _fit(
        kind,
        windows,
        labels,
        norm,
        outputs=4 if kind == "encreg" else class_card["count"],
        checkpoint=checkpoint,
        hyper=hyper,
        seed=seed,
        progress=progress,
    )
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    export(model, onnx_path, top_k=TOP_K if kind == "enccla" else 0)
    card = _runtime_card(name, kind, norm, sectors, class_card)
    clustering, evaluation = _evaluation(model, card, onnx_path, samples, stores, data)
    card = {
        **card,
        "summary": _summary(kind, data, sectors.n, class_card and class_card["count"], clustering),
        "clustering": clustering,
        "hyper_parameters": _hyper_parameters(kind, hyper),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "data": _data_entry(data, draws, windows, samples, stores),
        "seed": seed,
        "command": (
            f"recotrig train trackformer --model {kind} --dataset {data} --epochs {epochs} --seed {seed} "
            f"--draws {draws} --train-events {len(samples['train']) // max(1, draws)} --d {d} "
            f"--layers {layers} --heads {heads} --batch {batch} --lr {lr} --sectors {sectors.n} "
            f"--overlap {sectors.overlap}" + (f" --name {name}" if name != f"trackformer-{kind}-{data}" else "")
        ),
        "training": training_entry(seconds, threads, checkpoint.pieces, final_loss=loss_value),
        **evaluation,
        "onnx_sha256": sha256(onnx_path),
    }
    write_card(onnx_path, card)
    return card


def _normalisation(windows: list[dataset.Sample]) -> dict[str, np.ndarray]:
    """The means and standard deviations of the training windows' features and targets."""
    features = np.concatenate([s.features for s in windows])
    targets = np.concatenate([s.targets for s in windows])
    return {
        "features_mean": features.mean(0),
        "features_std": features.std(0) + 1e-6,
        "targets_mean": targets.mean(0),
        "targets_std": targets.std(0) + 1e-6,
    }


def _classes(
    windows: list[dataset.Sample], bins: dict[str, int], sectors: Sectors
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """EncCla: the class of each hit of the training windows (bin edges from the windows) and the
    card's ``classes`` entry."""
    targets = np.concatenate([s.targets for s in windows])
    edges = classes.edges(targets, np.concatenate([s.momentum for s in windows]), bins)
    labels = [classes.labels(s.targets, s.momentum, edges) for s in windows]
    return labels, {
        "parameters": ["phi", "theta", "p", "q"],
        "bins": {k: len(e) + 1 for k, e in edges.items()},
        "edges": edges,
        "count": classes.count(edges),
        "top_k": TOP_K,
        "phi": "relative to the sector centre" if sectors.n > 1 else "absolute",
    }


def _fit(
    kind: str,
    windows: list[dataset.Sample],
    labels: list[np.ndarray],
    norm: dict[str, np.ndarray],
    *,
    outputs: int,
    checkpoint: Checkpoint,
    hyper: dict[str, Any],
    seed: int,
    progress: bool,
) -> tuple[Encoder, float, float]:
    """The model, its optimiser and schedule (resumed from ``checkpoint`` when there is one), trained
    for the epochs left (``hyper``: d, layers, heads, batch, lr and epochs): the model, the
    training's seconds and its final loss."""
    d = hyper["d"]
    model = Encoder(outputs=outputs, d=d, layers=hyper["layers"], heads=hyper["heads"], ff=2 * d)
    optimiser = torch.optim.Adam(model.parameters(), lr=hyper["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=hyper["epochs"])
    start = checkpoint.resume(model, optimiser, schedule)
    rng = np.random.default_rng(seed)
    for _ in range(start[0]):  # the same shuffles as an uninterrupted run
        rng.permutation(len(windows))

    def batches(epoch: int):
        for x, y, m in _batches(windows, labels, hyper["batch"], rng, norm):
            if kind == "encreg":
                loss = (((model(x, m) - y) ** 2).sum(-1) * m).sum() / m.sum()
            else:
                loss = torch.nn.functional.cross_entropy(model(x, m).flatten(0, 1), y.flatten(), ignore_index=-1)
            yield loss, len(x)

    seconds, loss_value = run_epochs(
        model,
        optimiser,
        schedule,
        checkpoint,
        start=start,
        epochs=hyper["epochs"],
        batches=batches,
        progress=progress,
        flush_denormals=True,
    )
    return model, seconds, loss_value


def _runtime_card(
    name: str, kind: str, norm: dict[str, np.ndarray], sectors: Sectors, class_card: dict[str, Any] | None
) -> dict[str, Any]:
    """The card's entries that the finder needs to run the model."""
    card = {
        "name": name,
        "family": "trackformer",
        "kind": kind,
        "inputs": {"hits": ["events", "hits", 3], "mask": ["events", "hits"]},
        "outputs": (
            {"output": ["events", "hits", 4]}
            if kind == "encreg"
            else {"classes": ["events", "hits", TOP_K], "probabilities": ["events", "hits", TOP_K]}
        ),
        "features": dataset.FEATURES,
        "units": {"x": "mm", "y": "mm", "z": "mm"},
        "targets": dataset.TARGETS if kind == "encreg" else "classes",
        "volumes": dataset.PIXEL_VOLUMES,
        "normalisation": {k: v.astype(float).tolist() for k, v in norm.items()},
        "sectors": {"n": sectors.n, "overlap": sectors.overlap},
        "max_hits": 4000,
    }
    if class_card:
        card["classes"] = class_card
    return card


def _evaluation(
    model: torch.nn.Module,
    card: dict[str, Any],
    onnx_path: Path,
    samples: dict[str, list[dataset.Sample]],
    stores: dict[str, str],
    data: str,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The exported model checked against torch, its track building tuned and scored (``tune``) and
    checked on the bundled sample: the card's ``clustering``, and its entries from ``held_out`` to
    ``torch_float32_vs_float64_max_abs_diff``."""
    finder = Finder(Session(onnx_path, threads=1), card)
    val_pred = [finder.predict(s.features) for s in samples["val"]]
    graph = TopK(model, TOP_K) if card["kind"] == "enccla" else model
    worst, rounding = onnx_vs_torch(graph, finder, samples["val"][:20], val_pred, card["kind"])
    tuning = tune(finder, samples, stores=stores, predictions=val_pred)
    tuned = params_of({**card, "clustering": tuning["clustering"]})
    return tuning["clustering"], {
        "sectors": tuning["sectors"],
        "held_out": tuning["held_out"],
        "validation": tuning["validation"],
        "sample_check": _sample_check(finder.with_overlap(tuning["sectors"]["overlap"]), tuned, data),
        "onnx_vs_torch_max_abs_diff": worst,
        "torch_float32_vs_float64_max_abs_diff": rounding,
    }


def _hyper_parameters(kind: str, hyper: dict[str, Any]) -> dict[str, Any]:
    """The card's ``hyper_parameters`` (``hyper``: d, layers, heads, batch, lr and epochs)."""
    return {
        "d": hyper["d"],
        "layers": hyper["layers"],
        "heads": hyper["heads"],
        "ff": 2 * hyper["d"],
        "batch": hyper["batch"],
        "lr": hyper["lr"],
        "epochs": hyper["epochs"],
        "optimiser": "Adam + cosine schedule",
        "loss": "MSE" if kind == "encreg" else "cross-entropy",
    }


def _data_entry(
    data: str,
    draws: int,
    windows: list[dataset.Sample],
    samples: dict[str, list[dataset.Sample]],
    stores: dict[str, str],
) -> dict[str, Any]:
    """The card's ``data``: the data set, its stores and simulation, and the events of each split."""
    return {
        "dataset": data,
        "draws_per_crossing": draws,
        "windows": {"train": len(windows)},
        "stores": {split: [Path(path).name for path in expand(spec)] for split, spec in stores.items()},
        "simulation": {split: _simulation(split, len(samples[split]) // max(1, draws)) for split in SIMULATION},
        "events": {split: len(v) for split, v in samples.items()},
    }


def onnx_vs_torch(
    graph: torch.nn.Module, finder: Finder, samples: list[dataset.Sample], predictions: list[Any], kind: str
) -> tuple[float, float]:
    """The largest differences, on the windows of ``samples`` (their ONNX ``predictions`` given),
    between ONNX Runtime's and torch's outputs (EncReg: the z-scored regression; EncCla: the top-k
    probabilities; ``graph`` ends in its top-k, as exported), and between torch in float32 and the
    same weights in float64: the float32 rounding of the model itself, below which no two float32
    runtimes can be expected to agree."""
    import copy

    exact = copy.deepcopy(graph).double()
    worst = rounding = 0.0
    with torch.no_grad():
        for sample, prediction in zip(samples, predictions):
            for k, w, out in zip(prediction.sectors, prediction.windows, prediction.outputs):
                x = torch.from_numpy(((finder.sectors.rotate(sample.features[w], k) - finder.mean) / finder.std)[None])
                mask = torch.ones(1, len(w))
                got, ref = graph(x, mask), exact(x.double(), mask.double())
                got, ref = (got, ref) if kind == "encreg" else (got[1], ref[1])
                mine = out["output"] if kind == "encreg" else out["probabilities"]
                worst = max(worst, float(np.abs(got.numpy()[0] - mine).max()))
                rounding = max(rounding, float(np.abs(got.numpy()[0] - ref.numpy()[0]).max()))
    return worst, rounding


def main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="recotrig train trackformer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=("encreg", "enccla"), default="encreg")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="10-50")
    parser.add_argument("--name", default=None, help="model name (default trackformer-<model>-<dataset>)")
    add_output_options(parser)
    parser.add_argument(
        "--stores",
        default=None,
        help="train,val,test stores (default: simulated into the cache); --retune reads only val and test: "
        "--stores=-,VAL,TEST (with '=', since the list starts with '-')",
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: 60; with --factorise, the head's: 16")
    parser.add_argument(
        "--draws", type=int, default=None, help="reductions per crossing (default: 20 at 10-50, 4 at 200-500)"
    )
    parser.add_argument("--sectors", type=int, default=None, help="phi sectors (default: 1 at 10-50, 12 at 200-500)")
    parser.add_argument(
        "--overlap",
        type=float,
        default=None,
        help="rad added on each side of a sector (default: 0 at 10-50, 0.1 at 200-500)",
    )
    parser.add_argument(
        "--train-events",
        type=int,
        default=None,
        help="simulated training crossings (default 100: seed 101, the first ones the same for any number; "
        f"with --factorise {FACTORISE_CROSSINGS}: stores of {PIECE}, seeds 1101, 1102, ...)",
    )
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=1)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=integer(1, MAX_JOBS), default=2)
    parser.add_argument("--max-events", type=int, default=None, help="crossings per store (default: all)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--retune",
        metavar="MODEL",
        default=None,
        help="no training: tune the track building of an existing model (a shipped name or an .onnx "
        "path) again on the validation store, score it on the held-out one, and write the model "
        "with its new card (the ONNX file unchanged)",
    )
    parser.add_argument(
        "--passes-only",
        action="store_true",
        help="with --retune: keep the card's track building and windows, tune only its passes (iterative finding)",
    )
    parser.add_argument(
        "--max-passes",
        type=integer(1, len(max(PASSES, key=len)) + 1),
        default=None,
        help="with --passes-only: the most passes a schedule may have (each pass runs the model again; 1: one pass)",
    )
    parser.add_argument(
        "--reexport",
        metavar="MODEL",
        default=None,
        help="no training: write an existing model's weights (a shipped name or an .onnx path) again "
        "through this version's ONNX export, with its card (training and tuning unchanged) and the "
        "difference of the two files on the bundled sample",
    )
    parser.add_argument(
        "--factorise",
        metavar="MODEL",
        default=None,
        help="no training of the encoder: an existing EncCla (a shipped name or an .onnx path) with its "
        "joint class head replaced by a factorised one (phi, theta, p and charge apart), trained on its "
        "encoder's features of the training windows; the track building tuned again (training/trackformer/"
        "factorise.py)",
    )
    a = parser.parse_args(argv)
    if a.stores and len(a.stores.split(",")) != 3:
        raise ValueError("--stores takes three stores: train,val,test")
    if a.passes_only and not a.retune:
        raise ValueError("--passes-only tunes an existing model's passes: give it with --retune MODEL")
    if a.max_passes is not None and not a.passes_only:
        raise ValueError(
            "--max-passes bounds the schedules --passes-only tries: give it with --retune MODEL --passes-only"
        )
    if a.retune:
        return _retune_command(a, argv)
    if a.reexport:
        return _reexport_command(a, argv)
    if a.factorise:
        return _factorise_command(a, argv)
    name = a.name or f"trackformer-{a.model}-{a.dataset}"
    target = model_output(a, name)
    if a.stores:
        stores = dict(zip(("train", "val", "test"), a.stores.split(",")))
    else:
        stores = simulated_stores(_cache() / "stores", train_events=a.train_events or SIMULATION["train"][0])
    n, overlap = SECTORS[a.dataset]
    sectors = (a.sectors or n, overlap if a.overlap is None else a.overlap)
    with target.staged() as out:
        card = train(
            name=name,
            kind=a.model,
            data=a.dataset,
            stores=stores,
            out=out,
            work=_cache() / "work" / name,
            epochs=a.epochs or 60,
            seed=a.seed,
            draws=a.draws or DRAWS[a.dataset],
            sectors=sectors,
            d=a.d,
            layers=a.layers,
            heads=a.heads,
            batch=a.batch,
            lr=a.lr,
            threads=a.threads,
            max_events=a.max_events,
            progress=not a.no_progress,
        )
    print(
        json.dumps(
            {k: card[k] for k in ("name", "held_out", "validation", "onnx_vs_torch_max_abs_diff", "training")}, indent=1
        )
    )
    return 0


def _retune_command(a: argparse.Namespace, argv: list[str]) -> int:
    """``recotrig train trackformer --retune MODEL``: ``retune`` written as a model of its own (to
    the user's folder, or over the shipped model with ``--replace-shipped``)."""
    loaded = load_model(a.retune, family="trackformer")
    name = a.name or Path(loaded.onnx).name.removesuffix(".onnx")
    target = model_output(a, name)
    stores = dict(zip(("val", "test"), a.stores.split(",")[1:])) if a.stores else None
    entries = retune(
        loaded.onnx, stores=stores, max_events=a.max_events, passes_only=a.passes_only, max_passes=a.max_passes
    )
    # a card keeps the command that tuned its track building, and apart the one that tuned its passes after it
    command = "passes_command" if a.passes_only else "retune_command"
    target.write_retuned(
        loaded.onnx,
        {**loaded.card, **entries, "name": name, command: " ".join(["recotrig train trackformer", *argv])},
    )
    print(json.dumps({k: entries[k] for k in ("clustering", "validation", "held_out")}, indent=1))
    return 0


def _reexport_command(a: argparse.Namespace, argv: list[str]) -> int:
    """``recotrig train trackformer --reexport MODEL``: ``reexport`` written as a model of its own (to
    the user's folder, or over the shipped model with ``--replace-shipped``)."""
    loaded = load_model(a.reexport, family="trackformer")
    name = a.name or Path(loaded.onnx).name.removesuffix(".onnx")
    target = model_output(a, name)
    with target.staged() as out:
        onnx = out / f"{name}.onnx"
        reexport(loaded.onnx, loaded.card, onnx)
        entry = {
            "command": " ".join(["recotrig train trackformer", *argv]),
            "previous_onnx_sha256": loaded.card["onnx_sha256"],
            **_onnx_difference(loaded.onnx, onnx, loaded.card),
        }
        write_card(onnx, {**loaded.card, "name": name, "reexport": entry, "onnx_sha256": sha256(onnx)})
    print(json.dumps(entry, indent=1))
    return 0


def _factorise_command(a: argparse.Namespace, argv: list[str]) -> int:
    """``recotrig train trackformer --factorise MODEL``: ``factorise.factorise`` written as a model
    of its own (to the user's folder, or over the shipped model with ``--replace-shipped``)."""
    from recotrig.training.trackformer.factorise import factorise

    loaded = load_model(a.factorise, family="trackformer")
    name = a.name or Path(loaded.onnx).name.removesuffix(".onnx")
    target = model_output(a, name)
    with target.staged() as out:
        card = factorise(
            loaded,
            out / f"{name}.onnx",
            crossings=a.train_events or FACTORISE_CROSSINGS,
            stores=dict(zip(("train", "val", "test"), a.stores.split(","))) if a.stores else None,
            epochs=a.epochs or 16,
            seed=a.seed,
            max_events=a.max_events,
        )
        card["head"]["command"] = " ".join(["recotrig train trackformer", *argv])  # "command" made the encoder
        write_card(out / f"{name}.onnx", card)
    print(json.dumps({k: card[k] for k in ("head", "clustering", "validation", "held_out")}, indent=1))
    return 0
