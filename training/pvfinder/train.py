"""Training, export and tuning of a PV-Finder KDE-to-hist UNet (``recotrig train pvfinder``).

    recotrig train pvfinder [--epochs 40] [--output DIR]
    recotrig train pvfinder --retune MODEL [--output DIR | --replace-shipped]

The model goes to ``recotrig-models/`` (or ``--output DIR``), never over a model there without
``--force``, and into the shipped models only with ``--replace-shipped`` (``training.common``).

1. Stores: simulated tt-bar + Poisson(mu) pile-up crossings (``STORES``: training, validation and
   held-out stores, each its own seed), made with ``recotrig simulate`` into the cache folder.
2. Data: the full chain on each store (``dataset.build``: ACTS CKF tracks -> KDEBuilder, truth
   vertices with matched-track counts, AMVF's vertices for the tuning's false-positive budget).
3. Targets: the resolution curve sigma(n) fitted on the training set's CKF tracks, then one unit
   Gaussian per truth vertex with at least 2 matched tracks (``dataset.targets``).
4. Training: Adam on random crops of ``--crop`` bins (mirrored in z at random); ``--warmup``
   epochs of mean squared error, then PV-Finder's asymmetric cost. The warm-up is needed here:
   started on the cost directly, the network first learns to lower its output wherever the KDE
   is non-zero (the many track tails outweigh the few vertex bins), drives it far below the
   cost's epsilon, where softplus leaves no gradient, and predicts zero everywhere for good (seen
   with every learning rate and epsilon tried). MSE pulls the vertex bins up from the start.
   Deterministic for ``--seed``; a checkpoint after every epoch, resumed by a later run of the
   same training (a checkpoint of other data or settings is refused), so training goes in pieces.
5. Export to ONNX (dynamic batch and bin axes) and a check that ONNX Runtime gives torch's output.
6. Tuning of the peak finder on the validation set (``--retune``: again, for an existing model,
   without training), ``tune``: the shape settings (prominence, minimum integral, the area of one
   vertex by which peaks are split and the least spread of a split peak) whose threshold scan is
   best over its working range, then the threshold on the peak score (``PEAK_SCORE``) with the
   highest window efficiency whose false positives per event do not exceed
   AMVF's on the same events (the default operating point, ``mu60``); on a mu = 200 validation
   store the same way (``mu200``), and on a low pile-up (mu = 6) one at <= 0.03 false positives
   per event (``mu6``). Figures on the held-out mu = 60 store go into the card (window definitions, positions
   only); the full comparison with AMVF is ``bench/bench_pvfinder.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recotrig.algorithms.vertexing.peaks import find_peaks
from recotrig.edm import TruthVertices, Vertices
from recotrig.framework.arguments import ArgumentParser, integer
from recotrig.framework.sequencer import MAX_JOBS
from recotrig.io.samples import SAMPLE_MU60
from recotrig.metrics.vertexing import VertexMetrics, efficiency_at_fp
from recotrig.models.registry import cache_dir, sha256, write_card
from recotrig.models.registry import load as load_model
from recotrig.models.runtime import Session
from recotrig.sim.store import simulate
from recotrig.training.common import (
    Checkpoint,
    add_output_options,
    export_onnx,
    model_output,
    run_epochs,
    training_entry,
)
from recotrig.training.pvfinder import dataset
from recotrig.training.pvfinder.model import UNet, asymmetric_loss

__all__ = ["BINNING", "STORES", "main", "retune", "store", "train"]

#: KDE binning of the shipped model (KDEBuilder's defaults): 100 um bins over +-200 mm
BINNING = {"z_min": -200.0, "z_max": 200.0, "bins": 4000}
#: split -> (events, mu, seed): tt-bar on top of Poisson(mu) minimum bias
STORES = {
    "train": (800, 60, 11),
    "train_b": (1200, 60, 13),
    "train_c": (2000, 60, 14),
    "train_mu6": (1500, 6, 15),
    "train_mu200": (200, 200, 16),
    "val": (80, 60, 12),
    "val_mu6": (150, 6, 25),
    "val_mu200": (40, 200, 26),
    "test_mu60": (40, 60, 22),
    "test_mu20": (100, 20, 21),
    "test_mu200": (12, 200, 23),
    "test_mu6": (150, 6, 24),
    # second held-out seeds: the same stores simulated anew, to check that a figure generalises
    "check_mu6": (150, 6, 31),
    "check_mu60": (40, 60, 32),
    "check_mu200": (12, 200, 33),
    # larger held-out stores for what a few dozen crossings leave uncertain: the vertex-vertex
    # resolution rests on the close pairs, about a third of a truth pair per event per 0.05 mm at
    # mu = 60; at mu = 200, 12 crossings hold about 1,700 eligible vertices (+-1 point)
    "wide_mu60": (200, 60, 34),
    "wide_mu200": (60, 200, 35),
}
TRAIN_SPLITS = ("train", "train_b", "train_c", "train_mu6", "train_mu200")
#: every simulated training store (``--train-splits`` chooses among them; the default is TRAIN_SPLITS)
TRAINABLE = tuple(s for s in STORES if s.startswith("train"))
WINDOW_MIN_TRACKS = 5
#: false positives per event allowed when tuning the low pile-up operating point (LHCb's figure)
LOW_PILEUP_FP = 0.03
#: named operating points beyond the default (mu60): validation split, false-positive budget
#: (a number, or None: AMVF's window false positives per event on the same events)
OPERATING_POINTS = {"mu6": ("val_mu6", LOW_PILEUP_FP), "mu200": ("val_mu200", None)}
#: what the tuned threshold applies to (``peaks.SCORES``): sqrt(height x area) ranks the left-over
#: spikes and swells below real vertices (peaks.py), which lifts the low false-positive end
PEAK_SCORE = "height_area"
#: areas of one vertex the tuning tries for splitting peaks (``peaks.find_peaks``; 0: never): the
#: network puts about a unit area per vertex, so two vertices it cannot separate make one peak of
#: about twice that (below 1 ordinary peaks are split too; from 1.5 up hardly any is)
VERTEX_AREAS = (0.0, 1.0, 1.1, 1.2)
#: least spread [mm] of a peak that is split (``peaks.find_peaks``): a single vertex with many
#: tracks makes a narrow peak that can hold more than its unit area; two vertices a wider one
SPLIT_SPREADS = (0.0, 0.08, 0.13)
#: the tuning weighs the threshold scan's efficiency from this many false positives per event up to
#: the budget (``tune``)
CURVE_FROM = 1.0
#: scale of the warm-up MSE (per-bin targets are O(0.01-1): keeps its size near the cost's)
WARMUP_SCALE = 100.0


def store(split: str, *, jobs: int = 2, events: int | None = None) -> Path:
    """The simulated store of a split (made unless it exists in the cache)."""
    n, mu, seed = STORES[split]
    n = events or n
    path = cache_dir("pvfinder") / f"{split.split('_')[0]}_mu{mu}_ttbar_seed{seed}_n{n}.root"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        simulate(path, events=n, mu=float(mu), hard_scatter="ttbar", seed=seed, jobs=jobs, progress=False)
    return path


def _truth(data: dataset.Data, i: int) -> TruthVertices:
    z = data.truth_z[i]
    return TruthVertices(
        vertex_id=np.arange(len(z)),
        x=np.zeros(len(z)),
        y=np.zeros(len(z)),
        z=z,
        n_reconstructable=data.truth_n[i].astype(np.int32),
    )


def window_figures(data: dataset.Data, reco_z: list[np.ndarray]) -> dict[str, float]:
    """Position-only figures of vertex z lists against the truth of a data set (``VertexMetrics``
    with the truth's matched-track counts: window efficiency and false positives per event, and
    the vertex-vertex resolution)."""
    acc = VertexMetrics(window_min_tracks=WINDOW_MIN_TRACKS, bootstrap=0)  # called in the tuning's loops: no errors
    for i, z in enumerate(reco_z):
        zero = np.zeros(len(z))
        acc.add_event(Vertices(x=zero, y=zero, z=z), _truth(data, i))
    r = acc.result()
    return {
        "window_efficiency": r["window_efficiency"],
        "window_fp_per_event": r["window_fp_per_event"],
        "efficiency_position": r["efficiency"],
        "vv_resolution_mm": r["vv_resolution"],
        "window_z_sigma_core_mm": r["window_z_sigma_core"],
        "events": len(reco_z),
    }


def predict(session: Session, features: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(kde=features[i : i + 1])["hist"] for i in range(len(features))])


def _peaks_z(hists: np.ndarray, z: np.ndarray, params: dict[str, float]) -> list[np.ndarray]:
    return [find_peaks(h, z, **params).z for h in hists]


def tune(hists: np.ndarray, data: dataset.Data, fp_budget: float) -> tuple[dict[str, float], dict[str, float]]:
    """The peak-finder settings for ``fp_budget`` false positives per event, in two steps:

    1. the shape settings (prominence, minimum integral, vertex area and split spread) whose
       threshold scan has the highest mean window efficiency over the false-positive rates from
       ``CURVE_FROM`` per event (or the budget, if lower) up to the budget: the whole working range
       of the curve counts, not one point of it (splitting peaks gains at the budget and can cost
       at the curve's low end, where only the tallest peaks are kept);
    2. on that scan, the threshold with the highest efficiency within the budget, the fewest false
       positives among equals (if none is within the budget: the fewest false positives).

    By ``PEAK_SCORE`` the peaks at a threshold and minimum integral are those of threshold 0 that
    reach both (``peaks.find_peaks``), so each shape's peaks are found once."""
    shapes = [
        (p, a, s) for p in (0.02, 0.05, 0.1, 0.25) for a in VERTEX_AREAS for s in (SPLIT_SPREADS if a > 0 else (0.0,))
    ]
    thresholds = np.geomspace(1e-4, 1.0, 97)
    rates = np.geomspace(min(CURVE_FROM, fp_budget), fp_budget, 8)
    best, best_key = None, None
    for prominence, area, spread in shapes:
        floor = [
            find_peaks(
                h,
                data.z,
                threshold=0.0,
                min_prominence=prominence,
                score=PEAK_SCORE,
                vertex_area=area,
                split_spread=spread,
            )
            for h in hists
        ]
        for min_integral in (0.0, 0.1, 0.35, 0.7):
            scan = [
                window_figures(data, [f.z[(f.score >= t) & (f.integral >= min_integral)] for f in floor])
                for t in thresholds
            ]
            curve = {k: [f[f"window_{k}"] for f in scan] for k in ("efficiency", "fp_per_event")}
            mean = float(np.mean([efficiency_at_fp(curve, r) for r in rates]))
            for threshold, figures in zip(thresholds, scan):
                ok = figures["window_fp_per_event"] <= fp_budget
                key = (
                    ok,
                    mean if np.isfinite(mean) else -1.0,
                    figures["window_efficiency"] if ok else 0.0,
                    -figures["window_fp_per_event"],
                )
                if best_key is None or key > best_key:
                    params = {
                        "threshold": float(threshold),
                        "min_integral": min_integral,
                        "min_prominence": prominence,
                        "score": PEAK_SCORE,
                        "vertex_area": area,
                        "split_spread": spread,
                    }
                    best, best_key = (params, {**figures, "curve_mean_efficiency": mean}), key
    assert best is not None
    return best


def _sample_check(session: Session, params: dict[str, float], jobs: int) -> dict[str, Any]:
    """Window figures on the bundled mu = 60 sample (never used in training or tuning): what
    tests/test_pvfinder.py checks the shipped model against."""
    data = dataset.load(dataset.build(SAMPLE_MU60, BINNING, jobs=jobs))
    return {
        "store": SAMPLE_MU60.name,
        **window_figures(data, _peaks_z(predict(session, data.features), data.z, params)),
        "amvf_gaussian": window_figures(data, data.amvf_z),
    }


def export(model: torch.nn.Module, path: Path) -> None:
    """ONNX with dynamic event and bin axes."""
    export_onnx(
        model,
        (torch.zeros(1, 4, 4000),),
        path,
        inputs=["kde"],
        outputs=["hist"],
        dynamic_axes={"kde": {0: "events", 2: "bins"}, "hist": {0: "events", 1: "bins"}},
    )


def _crops(features: np.ndarray, targets: np.ndarray, crop: int, batch: int, rng: np.random.Generator):
    order = rng.permutation(len(features))
    bins = features.shape[2]
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        offsets = rng.integers(0, bins - crop + 1, len(rows))
        flips = rng.random(len(rows)) < 0.5
        x = np.stack([features[r, :, o : o + crop] for r, o in zip(rows, offsets)])
        y = np.stack([targets[r, o : o + crop] for r, o in zip(rows, offsets)])
        x[flips] = x[flips, :, ::-1]  # z -> -z: the detector and the beam spot are symmetric
        y[flips] = y[flips, ::-1]
        yield torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))


def train(
    *,
    name: str,
    out: Path,
    epochs: int,
    seed: int,
    channels: tuple[int, ...],
    kernels: tuple[int, ...],
    asymmetry: float,
    crop: int,
    batch: int,
    lr: float,
    threads: int,
    warmup: int = 10,
    target_scale: float = 1.0,
    jobs: int = 2,
    events: dict[str, int] | None = None,
    stores: dict[str, str | Path] | None = None,
    train_splits: tuple[str, ...] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    work = cache_dir("pvfinder") / "work" / name
    work.mkdir(parents=True, exist_ok=True)
    train_splits = train_splits or (("train",) if stores else TRAIN_SPLITS)
    paths, data = _data_sets(stores, events or {}, train_splits, jobs)
    curve = dataset.resolution_curve(data["train"])
    targets = dataset.targets(data["train"], curve, scale=target_scale)
    model = UNet(channels=channels, kernels=kernels)
    config = {  # the training a checkpoint belongs to
        "stores": sorted(paths[s].name for s in train_splits),
        "channels": list(channels),
        "kernels": list(kernels),
        "asymmetry": asymmetry,
        "crop": crop,
        "batch": batch,
        "lr": lr,
        "epochs": epochs,
        "warmup": warmup,
        "target_scale": target_scale,
        "seed": seed,
    }
    checkpoint = Checkpoint(work / "checkpoint.pt", config)
    seconds, loss_value = _fit(model, data["train"].features, targets, checkpoint, config, progress)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    export(model, onnx_path)
    session = Session(onnx_path, threads=1)
    worst, params, validation, operating_points = _validation(model, session, data, paths)
    held_out = _held_out(session, data["test_mu60"], params, paths["test_mu60"].name)
    sample = _sample_check(session, params, jobs)
    card = {
        **_runtime_card(name, model, curve, target_scale, held_out, _pileup(train_splits, stores)),
        "peak_finder": params,
        "operating_points": operating_points,
        "hyper_parameters": _hyper_parameters(config),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "data": _data_entry(paths, data, stores),
        "seed": seed,
        "command": (
            f"recotrig train pvfinder --epochs {epochs} --warmup {warmup} --lr {lr} --seed {seed} "
            f"--asymmetry {asymmetry} --target-scale {target_scale} --channels {','.join(map(str, channels))}"
            + ("" if stores or train_splits == TRAIN_SPLITS else f" --train-splits {','.join(train_splits)}")
        ),
        "training": training_entry(seconds, threads, checkpoint.pieces, final_loss=loss_value),
        "validation": validation,
        "held_out": held_out,
        "sample_check": sample,
        "onnx_vs_torch_max_abs_diff": worst,
        "onnx_sha256": sha256(onnx_path),
    }
    write_card(onnx_path, card)
    return card


def _pileup(train_splits: tuple[str, ...], stores: dict[str, str | Path] | None) -> str:
    """The training crossings' pile-up, in words: "Poisson(60)", "Poisson(6, 60 and 200)"."""
    if stores:
        return "Poisson(mu of the given store)"
    mus = sorted({STORES[s][1] for s in train_splits})
    return f"Poisson({', '.join(map(str, mus[:-1]))}{' and ' if len(mus) > 1 else ''}{mus[-1]})"


def _data_sets(
    stores: dict[str, str | Path] | None, events: dict[str, int], train_splits: tuple[str, ...], jobs: int
) -> tuple[dict[str, Path], dict[str, dataset.Data]]:
    """The store and the data set of each split (the simulated stores unless ``stores`` are given),
    the training splits' data sets joined into one, ``train``."""
    extra_val = tuple(split for split, _ in OPERATING_POINTS.values()) if stores is None else ()
    splits = (*train_splits, "val", "test_mu60", *extra_val)
    if stores is None:
        paths = {s: store(s, jobs=jobs, events=events.get(s)) for s in splits}
    else:
        paths = {s: Path(stores[s]) for s in splits}
    data = {s: dataset.load(dataset.build(p, BINNING, jobs=jobs)) for s, p in paths.items()}
    data["train"] = dataset.concat([data.pop(s) for s in train_splits])
    return paths, data


def _fit(
    model: UNet,
    features: np.ndarray,
    targets: np.ndarray,
    checkpoint: Checkpoint,
    config: dict[str, Any],
    progress: bool,
) -> tuple[float, float]:
    """The model trained with its optimiser and schedule (resumed from ``checkpoint`` when there is
    one) for the epochs left, as ``config`` says: the training's seconds and its final loss."""
    optimiser = torch.optim.Adam(model.parameters(), lr=config["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config["epochs"])

    def batches(epoch: int):
        rng = np.random.default_rng([config["seed"], epoch])  # the same crops whether or not a run resumed
        for x, y in _crops(features, targets, config["crop"], config["batch"], rng):
            prediction = model(x)
            if epoch < config["warmup"]:  # see the module docstring: MSE first, then PV-Finder's cost
                yield WARMUP_SCALE * ((prediction - y) ** 2).mean(), len(x)
            else:
                yield asymmetric_loss(prediction, y, asymmetry=config["asymmetry"]), len(x)

    return run_epochs(
        model,
        optimiser,
        schedule,
        checkpoint,
        epochs=config["epochs"],
        batches=batches,
        start=checkpoint.resume(model, optimiser, schedule),
        progress=progress,
    )


def _validation(
    model: torch.nn.Module, session: Session, data: dict[str, dataset.Data], paths: dict[str, Path]
) -> tuple[float, dict[str, float], dict[str, Any], dict[str, Any]]:
    """ONNX Runtime against torch on the first validation events, and the peak finder tuned at each
    operating point: the largest difference, the default point's settings, the card's
    ``validation`` and its ``operating_points``."""
    val = data["val"]
    with torch.no_grad():
        reference = model(torch.from_numpy(val.features[:10])).numpy()
    worst = float(np.abs(reference - predict(session, val.features[:10])).max())
    return (worst, *_tuning(session, data, paths))


def _tuning(
    session: Session, data: dict[str, dataset.Data], paths: dict[str, Path]
) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
    """The peak finder tuned on each validation set there is: the default point's settings, the
    card's ``validation`` and its ``operating_points``."""
    val = data["val"]
    hists = predict(session, val.features)
    amvf_val = window_figures(val, val.amvf_z)
    params, val_figures = tune(hists, val, amvf_val["window_fp_per_event"])
    operating_points = {
        "mu60": {
            **params,
            "kde_scale": kde_scale(val),
            "tuned_on": paths["val"].name,
            "fp_budget": f"AMVF's window false positives per event there, {amvf_val['window_fp_per_event']:.3f}",
            "validation": val_figures,
        }
    }
    for point, (split, budget) in OPERATING_POINTS.items():
        if split in data:
            operating_points[point] = _operating_point(session, data[split], paths[split].name, budget)
    return params, {"pvfinder": val_figures, "amvf_gaussian": amvf_val}, operating_points


def kde_scale(data: dataset.Data) -> float:
    """Where an operating point sits for PVFinder's per-event choice: the 90th percentile over the
    events of the KDE's sum (``kde_a``, channel 0, over z), so that nearly every event of the
    pile-up it was tuned at gets its settings."""
    return float(np.quantile(data.features[:, 0].astype(np.float64).sum(axis=1), 0.9))


def _operating_point(session: Session, other: dataset.Data, store_name: str, budget: float | None) -> dict[str, Any]:
    """The peak finder tuned on another validation set at ``budget`` false positives per event
    (None: AMVF's there): the card's entry of a named operating point."""
    amvf_fp = window_figures(other, other.amvf_z)["window_fp_per_event"]
    limit = amvf_fp if budget is None else budget
    point_params, point_figures = tune(predict(session, other.features), other, limit)
    return {
        **point_params,
        "kde_scale": kde_scale(other),
        "tuned_on": store_name,
        "fp_budget": (
            f"AMVF's window false positives per event there, {amvf_fp:.3f}"
            if budget is None
            else f"{budget} window false positives per event"
        ),
        "validation": point_figures,
    }


def _held_out(session: Session, test: dataset.Data, params: dict[str, float], store_name: str) -> dict[str, Any]:
    """The card's ``held_out``: the figures of the tuned model and of AMVF on the held-out set."""
    t0 = time.perf_counter()
    test_hists = predict(session, test.features)
    ms = 1e3 * (time.perf_counter() - t0) / len(test_hists)
    return {
        "store": store_name,
        "pvfinder": window_figures(test, _peaks_z(test_hists, test.z, params)),
        "amvf_gaussian": window_figures(test, test.amvf_z),
        "ms_per_event_onnx_one_thread": ms,
        "definitions": f"window match 0.5 mm, truth vertices with >= {WINDOW_MIN_TRACKS} matched "
        "CKF tracks eligible; positions only (bench/bench_pvfinder.py: ACTS definitions)",
    }


def _runtime_card(
    name: str, model: UNet, curve: dict[str, float], target_scale: float, held_out: dict[str, Any], pileup: str
) -> dict[str, Any]:
    """The card's entries from ``name`` to ``targets``: what the model is and how to run it."""
    return {
        "name": name,
        "family": "pvfinder",
        "summary": (
            "PV-Finder KDE-to-hist UNet: the KDE of a crossing's CKF tracks along the beam line (kde_a, "
            "kde_b, xmax, ymax per 100 um z bin) -> a vertex-density histogram; the peak finder turns it "
            f"into vertices. Trained on full-chain CKF tracks of simulated tt-bar + {pileup} pile-up "
            "crossings (generic detector, 2 T)."
        ),
        "headline": _headline(held_out),
        "inputs": {"kde": ["events", 4, "bins"]},
        "outputs": {"hist": ["events", "bins"]},
        "features": list(dataset.CHANNELS),
        "binning": dict(BINNING),
        "units": {"kde_a": "mm^-2", "kde_b": "mm^-4", "xmax": "mm", "ymax": "mm", "hist": "vertices per bin"},
        "normalisation": {
            "in_model": "log1p(kde_a), log1p(kde_b), xmax / xy_scale, ymax / xy_scale",
            "xy_scale_mm": model.xy_scale,
        },
        "targets": {
            "resolution_curve": curve,
            "min_tracks": 2,
            "floor_mm": 0.01,
            "width_scale": target_scale,
            "definition": "unit-area Gaussian per truth vertex with >= 2 matched CKF tracks, "
            "sigma = width_scale * max(a_mm * n^-b, floor_mm)",
        },
    }


def _headline(held_out: dict[str, Any]) -> str:
    ours, amvf = held_out["pvfinder"], held_out["amvf_gaussian"]
    return (
        f"held-out mu=60 window efficiency {ours['window_efficiency']:.3f} at "
        f"{ours['window_fp_per_event']:.2f} FP/event (AMVF {amvf['window_efficiency']:.3f} at "
        f"{amvf['window_fp_per_event']:.2f})"
    )


def retune(model: str | Path, *, jobs: int = 2, stores: dict[str, str | Path] | None = None) -> dict[str, Any]:
    """The peak finder of an existing model (a shipped name or an .onnx path with its card) tuned
    again, with no training, on the simulated validation stores (made when missing) and scored on
    the held-out mu = 60 store and the bundled sample, as a training does (``PEAK_SCORE``, module
    docstring item 6); ``stores`` ({"val": ..., "test_mu60": ...}) replace the simulated ones, as
    in ``train``. Returns the card entries that change; nothing is written (``recotrig train
    pvfinder --retune MODEL`` writes the model with its new card where a training would)."""
    loaded = load_model(str(model), family="pvfinder")
    if loaded.card["binning"] != BINNING:
        raise ValueError(f"{loaded.onnx}: binning {loaded.card['binning']}; the tuning stores' KDE bins {BINNING}")
    if stores is None:
        splits = ("val", "test_mu60", *(split for split, _ in OPERATING_POINTS.values()))
        paths = {s: store(s, jobs=jobs) for s in splits}
    else:
        paths = {s: Path(stores[s]) for s in ("val", "test_mu60")}
    data = {s: dataset.load(dataset.build(p, BINNING, jobs=jobs)) for s, p in paths.items()}
    session = Session(loaded.onnx, threads=1)
    params, validation, operating_points = _tuning(session, data, paths)
    held_out = _held_out(session, data["test_mu60"], params, paths["test_mu60"].name)
    return {
        "headline": _headline(held_out),
        "peak_finder": params,
        "operating_points": operating_points,
        "validation": validation,
        "held_out": held_out,
        "sample_check": _sample_check(session, params, jobs),
    }


def _retune_command(a: argparse.Namespace, argv: list[str]) -> int:
    """``recotrig train pvfinder --retune MODEL``: ``retune`` written as a model of its own (to the
    user's folder, or over the shipped model with ``--replace-shipped``)."""
    loaded = load_model(a.retune, family="pvfinder")
    target = model_output(a, Path(loaded.onnx).name.removesuffix(".onnx"))
    stores = dict(zip(("val", "test_mu60"), a.stores.split(",")[1:])) if a.stores else None
    entries = retune(loaded.onnx, jobs=a.jobs, stores=stores)
    target.write_retuned(
        loaded.onnx, {**loaded.card, **entries, "retune_command": " ".join(["recotrig train pvfinder", *argv])}
    )
    print(json.dumps({k: entries[k] for k in ("peak_finder", "validation", "held_out")}, indent=1))
    return 0


def _hyper_parameters(hyper: dict[str, Any]) -> dict[str, Any]:
    """The card's ``hyper_parameters`` (``hyper``: the training's checkpoint configuration)."""
    return {
        "channels": hyper["channels"],
        "kernels": hyper["kernels"],
        "asymmetry": hyper["asymmetry"],
        "crop_bins": hyper["crop"],
        "batch": hyper["batch"],
        "lr": hyper["lr"],
        "epochs": hyper["epochs"],
        "warmup_epochs_mse": hyper["warmup"],
        "optimiser": "Adam + cosine schedule",
        "loss": "PV-Finder asymmetric: -log(2r/(1+r^2)) (1 + asymmetry exp(-r)), r = (x + 1e-3)/(y + 1e-3)",
    }


def _data_entry(
    paths: dict[str, Path], data: dict[str, dataset.Data], stores: dict[str, str | Path] | None
) -> dict[str, Any]:
    """The card's ``data``: the stores, the events of each data set and how the stores were made."""
    return {
        "stores": {s: p.name for s, p in paths.items()},
        "events": {s: len(d.features) for s, d in data.items()},
        "simulation": {s: {"mu": STORES[s][1], "seed": STORES[s][2]} for s in paths}
        if stores is None
        else "given stores",
        "tracks": "ACTS CKF (recotrig ActsCKF defaults) on the full simulation; no fast generator",
    }


def main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="recotrig train pvfinder", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", default="pvfinder-unet-mu60")
    add_output_options(parser)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=1)
    parser.add_argument("--channels", default="16,32,64", help="UNet channels per level")
    parser.add_argument("--kernels", default="9,7,5", help="UNet kernel size per level")
    parser.add_argument("--asymmetry", type=float, default=2.5, help="cost: weight of under-prediction")
    parser.add_argument("--crop", type=int, default=1024, help="training crop [bins], a multiple of 2^levels")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=10, help="epochs of MSE before the asymmetric cost")
    parser.add_argument("--target-scale", type=float, default=1.0, help="multiplies the target Gaussians' widths")
    parser.add_argument("--threads", type=integer(1, MAX_JOBS), default=2)
    parser.add_argument(
        "-j", "--jobs", type=integer(1, MAX_JOBS), default=2, help="processes for simulation and the data sets"
    )
    parser.add_argument(
        "--events", default=None, help="events per split, e.g. train=50,val=10,test_mu60=5 (default: STORES)"
    )
    parser.add_argument("--stores", default=None, help="train,val,test stores (default: simulated into the cache)")
    parser.add_argument(
        "--train-splits",
        default=",".join(TRAIN_SPLITS),
        help=f"the simulated training stores to train on, joined (of {', '.join(TRAINABLE)})",
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument(
        "--retune",
        metavar="MODEL",
        default=None,
        help="no training: tune the peak finder of an existing model (a shipped name or an .onnx path) "
        "again on the validation stores, score it on the held-out one, and write the model with its "
        "new card (the ONNX file unchanged)",
    )
    a = parser.parse_args(argv)
    if a.stores and len(a.stores.split(",")) != 3:
        raise ValueError("--stores takes three stores: train,val,test")
    train_splits = tuple(a.train_splits.split(","))
    if unknown := sorted(set(train_splits) - set(TRAINABLE)):
        raise ValueError(f"--train-splits: no training store {', '.join(unknown)}; there are {', '.join(TRAINABLE)}")
    if a.stores and train_splits != TRAIN_SPLITS:
        raise ValueError("--train-splits chooses among the simulated stores; with --stores the first store trains")
    if a.retune:
        return _retune_command(a, argv)
    events = {k: int(v) for k, v in (p.split("=") for p in a.events.split(","))} if a.events else None
    stores = None
    if a.stores:
        stores = dict(zip(("train", "val", "test_mu60"), a.stores.split(",")))
    channels = tuple(int(c) for c in a.channels.split(","))
    kernels = tuple(int(k) for k in a.kernels.split(","))
    with model_output(a, a.name).staged() as out:
        card = train(
            name=a.name,
            out=out,
            epochs=a.epochs,
            seed=a.seed,
            channels=channels,
            kernels=kernels,
            asymmetry=a.asymmetry,
            crop=a.crop,
            batch=a.batch,
            lr=a.lr,
            threads=a.threads,
            warmup=a.warmup,
            target_scale=a.target_scale,
            jobs=a.jobs,
            events=events,
            stores=stores,
            train_splits=None if stores else train_splits,
            progress=not a.no_progress,
        )
    print(
        json.dumps(
            {
                k: card[k]
                for k in ("name", "held_out", "validation", "peak_finder", "onnx_vs_torch_max_abs_diff", "training")
            },
            indent=1,
        )
    )
    return 0
