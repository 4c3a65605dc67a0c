"""Training, export and evaluation of a TrackFormer EncReg model (``recotrig train trackformer``).

    recotrig train trackformer --model encreg --dataset 10-50 [--epochs 60] [--out models/shipped]

1. Stores: three simulated stores at mu = 20 with different seeds (training, validation, held-out
   test), made with ``recotrig simulate`` into the cache folder unless given (``--stores``).
2. Data sets: reductions of each crossing (``dataset.py``).
3. Training: Adam, MSE on the z-scored targets of real hits, batches of events padded with a mask;
   deterministic for ``--seed``; a checkpoint after every epoch, and a run that finds one resumes
   from it (so a long training goes in pieces); a progress bar with the loss and events/s.
4. Export to ONNX (dynamic batch and hit axes) and a check that ONNX Runtime gives torch's output.
5. Tuning of HDBSCAN on the validation set; the TrackML score on the held-out test set.
6. The card (JSON, and Markdown beside it) with everything needed to remake and use the model.
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
from recotrig.metrics.tracking import trackml_score
from recotrig.models.registry import SHIPPED, cache_dir, sha256, write_card
from recotrig.models.runtime import Session
from recotrig.models.trackformer import dataset
from recotrig.models.trackformer.model import Encoder
from recotrig.models.trackformer.tracks import cluster
from recotrig.models.training import Checkpoint, export_onnx, machine, run_epochs

__all__ = ["main", "train"]

DATASETS = {"10-50": (10, 50)}
SIMULATION = {"train": (100, 101), "val": (20, 202), "test": (20, 303)}  # events, seed (mu = 20)
SPLIT_SEEDS = {"train": 0, "val": 1000, "test": 2000}  # reduction seeds per split


def _cache() -> Path:
    return cache_dir("trackformer")


def simulated_stores(folder: Path, jobs: int = 2, train_events: int | None = None) -> dict[str, str]:
    from recotrig.sequences.simulate_cmd import main as simulate

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, (events, seed) in SIMULATION.items():
        if split == "train" and train_events:
            events = train_events
        suffix = "" if events == SIMULATION[split][0] else f"_n{events}"
        path = folder / f"{split}_mu20_seed{seed}{suffix}.root"
        if not path.exists():
            simulate(["-o", str(path), "-n", str(events), "--mu", "20", "--seed", str(seed), "-j", str(jobs),
                      "--no-progress"])
        out[split] = str(path)
    return out


def _batches(samples: list[dataset.Sample], size: int, rng: np.random.Generator, norm: dict[str, np.ndarray]):
    order = rng.permutation(len(samples))
    for start in range(0, len(order), size):
        chosen = [samples[i] for i in order[start:start + size]]
        n = max(len(s.hit_ids) for s in chosen)
        x = np.zeros((len(chosen), n, 3), np.float32)
        y = np.zeros((len(chosen), n, 4), np.float32)
        m = np.zeros((len(chosen), n), np.float32)
        for i, s in enumerate(chosen):
            k = len(s.hit_ids)
            x[i, :k] = (s.features - norm["features_mean"]) / norm["features_std"]
            y[i, :k] = (s.targets - norm["targets_mean"]) / norm["targets_std"]
            m[i, :k] = 1.0
        yield torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)


def _predict(session: Session, sample: dataset.Sample, norm: dict[str, np.ndarray]) -> np.ndarray:
    x = ((sample.features - norm["features_mean"]) / norm["features_std"]).astype(np.float32)[None]
    return session.run(hits=x, mask=np.ones(x.shape[:2], np.float32))["output"][0]


def _score(samples: list[dataset.Sample], predictions: list[np.ndarray], params: dict[str, Any]) -> float:
    scores = []
    for sample, prediction in zip(samples, predictions):
        if not len(sample.hit_ids) or sample.weights.sum() <= 0:
            continue
        tracks = Tracks(hit_ids=[t.tolist() for t in cluster(prediction, sample.hit_ids, **params)] or [])
        truth = HitTruth(hit_id=sample.hit_ids, particle_id=sample.particle_ids, weight=sample.weights)
        scores.append(trackml_score(tracks, truth))
    return float(np.mean(scores)) if scores else math.nan


#: the quick check of a shipped model (tests/test_trackformer.py): the bundled mu = 20 sample (never
#: used in training or tuning), reduced with these settings
SAMPLE_CHECK = {"low": 10, "high": 50, "draws": 5, "seed": 7}


def _sample_check(session: Session, norm: dict[str, np.ndarray], params: dict[str, Any]) -> dict[str, Any]:
    from recotrig.sequences.samples import SAMPLE_MU20

    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK)
    score = _score(samples, [_predict(session, s, norm) for s in samples], params)
    return {"store": SAMPLE_MU20.name, **SAMPLE_CHECK, "events": len(samples), "trackml_score": score}


def evaluate(model_path: str | Path, samples: list[dataset.Sample], card: dict[str, Any]) -> float:
    """The mean TrackML score of a model (ONNX + card) on reduced events."""
    norm = {k: np.asarray(v, np.float32) for k, v in card["normalisation"].items()}
    params = {k: card["clustering"][k] for k in ("min_cluster_size", "min_samples")}
    session = Session(model_path, threads=1)
    return _score(samples, [_predict(session, s, norm) for s in samples], params)


def export(model: torch.nn.Module, path: str | Path) -> None:
    """ONNX with dynamic event and hit axes."""
    export_onnx(model, (torch.zeros(1, 7, 3), torch.ones(1, 7)), path, inputs=["hits", "mask"], outputs=["output"],
                dynamic_axes={"hits": {0: "events", 1: "hits"}, "mask": {0: "events", 1: "hits"},
                              "output": {0: "events", 1: "hits"}})


def train(*, name: str, low: int, high: int, stores: dict[str, str], out: Path, work: Path, epochs: int, seed: int,
          draws: int, d: int, layers: int, heads: int, batch: int, lr: float, threads: int,
          max_events: int | None = None, progress: bool = True) -> dict[str, Any]:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, store in stores.items():
        cached = work / f"{Path(store).stem}-{split}-{low}-{high}-d{draws}-s{seed}-n{max_events}.npz"
        if not cached.exists():
            dataset.save(dataset.build(store, low=low, high=high, draws=draws, seed=seed + SPLIT_SEEDS[split],
                                       max_events=max_events), cached)
        data[split] = dataset.load(cached)
    train_set = data["train"]
    features = np.concatenate([s.features for s in train_set])
    targets = np.concatenate([s.targets for s in train_set])
    norm = {"features_mean": features.mean(0), "features_std": features.std(0) + 1e-6,
            "targets_mean": targets.mean(0), "targets_std": targets.std(0) + 1e-6}
    model = Encoder(d=d, layers=layers, heads=heads, ff=2 * d)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    checkpoint = Checkpoint(work / f"{name}.checkpoint.pt")
    start = checkpoint.resume(model, optimiser, schedule)
    rng = np.random.default_rng(seed)
    for _ in range(start[0]):  # the same shuffles as an uninterrupted run
        rng.permutation(len(train_set))

    def batches(epoch: int):
        for x, y, m in _batches(train_set, batch, rng, norm):
            error = ((model(x, m) - y) ** 2).sum(-1)
            yield (error * m).sum() / m.sum(), len(x)

    seconds, loss_value = run_epochs(model, optimiser, schedule, checkpoint, start=start, epochs=epochs,
                                     batches=batches, progress=progress)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    export(model, onnx_path)
    session = Session(onnx_path, threads=1)
    worst = 0.0
    with torch.no_grad():
        for sample in data["val"][:20]:
            x = ((sample.features - norm["features_mean"]) / norm["features_std"]).astype(np.float32)[None]
            mask = np.ones(x.shape[:2], np.float32)
            reference = model(torch.from_numpy(x), torch.from_numpy(mask)).numpy()[0]
            worst = max(worst, float(np.abs(reference - _predict(session, sample, norm)).max()))
    val_pred = [_predict(session, s, norm) for s in data["val"]]
    grid = [{"min_cluster_size": c, "min_samples": s} for c in (2, 3, 4, 5) for s in (1, 2, 3)]
    tuned = max(grid, key=lambda p: _score(data["val"], val_pred, p))
    t0 = time.perf_counter()
    test_pred = [_predict(session, s, norm) for s in data["test"]]
    test_score = _score(data["test"], test_pred, tuned)
    ms = 1e3 * (time.perf_counter() - t0) / max(1, len(data["test"]))
    sample = _sample_check(session, norm, tuned)
    card = {
        "name": name,
        "family": "trackformer",
        "kind": "encreg",
        "summary": (f"TrackFormer EncReg: a transformer encoder regresses [theta, sin phi, cos phi, q] per pixel "
                    f"hit, HDBSCAN groups hits into tracks. Trained on {low}-{high}-track reductions of simulated "
                    "mu = 20 crossings (generic detector, pixel volumes 7, 8, 9)."),
        "inputs": {"hits": ["events", "hits", 3], "mask": ["events", "hits"]},
        "outputs": {"output": ["events", "hits", 4]},
        "features": dataset.FEATURES,
        "units": {"x": "mm", "y": "mm", "z": "mm"},
        "targets": dataset.TARGETS,
        "volumes": dataset.PIXEL_VOLUMES,
        "normalisation": {k: v.astype(float).tolist() for k, v in norm.items()},
        "clustering": {"algorithm": "sklearn.cluster.HDBSCAN", **tuned},
        "max_hits": 4000,
        "hyper_parameters": {"d": d, "layers": layers, "heads": heads, "ff": 2 * d, "batch": batch, "lr": lr,
                             "epochs": epochs, "optimiser": "Adam + cosine schedule", "loss": "MSE"},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "data": {"dataset": f"{low}-{high}", "draws_per_crossing": draws,
                 "stores": {split: Path(path).name for split, path in stores.items()},
                 "simulation": {split: {"events": len(data[split]) // max(1, draws), "seed": s, "mu": 20}
                                for split, (_, s) in SIMULATION.items()},
                 "events": {split: len(v) for split, v in data.items()}},
        "seed": seed,
        "command": (f"recotrig train trackformer --model encreg --dataset {low}-{high} --epochs {epochs} --seed {seed} "
                    f"--draws {draws} --train-events {len(data['train']) // max(1, draws)}"),
        "training": {"seconds": round(seconds, 1), "final_loss": loss_value, "machine": machine(threads)},
        "held_out": {"trackml_score": test_score, "events": len(data["test"]), "ms_per_event_onnx_and_hdbscan": ms},
        "validation": {"trackml_score": _score(data["val"], val_pred, tuned)},
        "sample_check": sample,
        "onnx_vs_torch_max_abs_diff": worst,
        "onnx_sha256": sha256(onnx_path),
    }
    write_card(onnx_path, card)
    return card


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="recotrig train trackformer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("encreg",), default="encreg")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="10-50")
    parser.add_argument("--name", default=None, help="model name (default trackformer-<model>-<dataset>)")
    parser.add_argument("--out", default=str(SHIPPED), help="where the ONNX file and card go")
    parser.add_argument("--stores", default=None, help="train,val,test stores (default: simulated into the cache)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--draws", type=int, default=20, help="reductions per crossing")
    parser.add_argument("--train-events", type=int, default=SIMULATION["train"][0],
                        help="simulated training crossings (seed 101; the first ones are the same for any number)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-events", type=int, default=None, help="crossings per store (default: all)")
    parser.add_argument("--no-progress", action="store_true")
    a = parser.parse_args(argv)
    low, high = DATASETS[a.dataset]
    name = a.name or f"trackformer-{a.model}-{a.dataset}"
    if a.stores:
        parts = a.stores.split(",")
        if len(parts) != 3:
            raise ValueError("--stores takes three stores: train,val,test")
        stores = dict(zip(("train", "val", "test"), parts))
    else:
        stores = simulated_stores(_cache() / "stores", train_events=a.train_events)
    card = train(name=name, low=low, high=high, stores=stores, out=Path(a.out), work=_cache() / "work" / name,
                 epochs=a.epochs, seed=a.seed, draws=a.draws, d=a.d, layers=a.layers, heads=a.heads, batch=a.batch,
                 lr=a.lr, threads=a.threads, max_events=a.max_events, progress=not a.no_progress)
    print(json.dumps({k: card[k] for k in ("name", "held_out", "validation", "onnx_vs_torch_max_abs_diff",
                                           "training")}, indent=1))
    return 0
