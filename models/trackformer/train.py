"""Training, export and evaluation of a TrackFormer model (``recotrig train trackformer``).

    recotrig train trackformer --model encreg|enccla --dataset 10-50|200-500 [--epochs 60] [--out models/shipped]

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
5. Tuning of the track building (HDBSCAN's parameters; EncCla's smallest track) on the validation
   events, through the finder itself (``inference.py``); the TrackML score on the held-out events.
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
from recotrig.models.trackformer import classes, dataset
from recotrig.models.trackformer.inference import Finder, params_of
from recotrig.models.trackformer.model import Encoder, TopK
from recotrig.models.trackformer.sectors import Sectors
from recotrig.models.training import Checkpoint, export_onnx, machine, run_epochs

__all__ = ["main", "train"]

DATASETS = {"10-50": (10, 50), "200-500": (200, 500)}
#: per data set: reductions per crossing and the phi sectors of its models (n, overlap in rad)
DRAWS = {"10-50": 20, "200-500": 4}
SECTORS = {"10-50": (1, 0.0), "200-500": (12, 0.1)}
TOP_K = 3  # EncCla: classes and probabilities per hit in the output
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


def _windows(samples: list[dataset.Sample], sectors: Sectors) -> list[dataset.Sample]:
    """Each event's sector windows, rotated to phi = 0 (features and targets): the training examples."""
    out = []
    for s in samples:
        for k, w in enumerate(sectors.windows(s.features[:, 0], s.features[:, 1])):
            if len(w):
                out.append(dataset.Sample(sectors.rotate(s.features[w], k), sectors.rotate_targets(s.targets[w], k),
                                          s.momentum[w], s.hit_ids[w], s.particle_ids[w], s.weights[w]))
    return out


def _batches(windows: list[dataset.Sample], labels: list[np.ndarray], size: int, rng: np.random.Generator,
             norm: dict[str, np.ndarray]):
    """Padded batches: hits, mask and the targets (EncReg: z-scored; EncCla: class ids, -1 on padding)."""
    order = rng.permutation(len(windows))
    for start in range(0, len(order), size):
        chosen = order[start:start + size]
        n = max(len(windows[i].hit_ids) for i in chosen)
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


def _score(finder: Finder, samples: list[dataset.Sample], params: dict[str, int], predictions=None) -> float:
    """The mean TrackML score of the finder on reduced events (predictions reused when given)."""
    scores = []
    for i, sample in enumerate(samples):
        if not len(sample.hit_ids) or sample.weights.sum() <= 0:
            continue
        prediction = finder.predict(sample.features) if predictions is None else predictions[i]
        found = finder.assemble(sample.features, prediction, params)
        tracks = Tracks(hit_ids=[np.sort(sample.hit_ids[t]).tolist() for t in found.tracks])
        truth = HitTruth(hit_id=sample.hit_ids, particle_id=sample.particle_ids, weight=sample.weights)
        scores.append(trackml_score(tracks, truth))
    return float(np.mean(scores)) if scores else math.nan


#: the quick check of a shipped model (tests/test_trackformer.py): the bundled mu = 20 sample (never
#: used in training or tuning), reduced with these settings per data set
SAMPLE_CHECK = {"10-50": {"low": 10, "high": 50, "draws": 5, "seed": 7},
                "200-500": {"low": 200, "high": 500, "draws": 1, "seed": 7}}


def _sample_check(finder: Finder, params: dict[str, int], data: str) -> dict[str, Any]:
    from recotrig.sequences.samples import SAMPLE_MU20

    samples = dataset.build(str(SAMPLE_MU20), **SAMPLE_CHECK[data])
    return {"store": SAMPLE_MU20.name, **SAMPLE_CHECK[data], "events": len(samples),
            "trackml_score": _score(finder, samples, params)}


def evaluate(model_path: str | Path, samples: list[dataset.Sample], card: dict[str, Any]) -> float:
    """The mean TrackML score of a model (ONNX + card) on reduced events."""
    return _score(Finder(Session(model_path, threads=1), card), samples, params_of(card))


def export(model: torch.nn.Module, path: str | Path, *, top_k: int = 0) -> None:
    """ONNX with dynamic event and hit axes; EncCla (``top_k`` > 0) ends in softmax and top-k."""
    axes = {"events": 0, "hits": 1}
    names = ["output"] if not top_k else ["classes", "probabilities"]
    export_onnx(model if not top_k else TopK(model, top_k), (torch.zeros(1, 7, 3), torch.ones(1, 7)), path,
                inputs=["hits", "mask"], outputs=names,
                dynamic_axes={n: {i: a for a, i in axes.items()} for n in ["hits", "mask", *names]})


def train(*, name: str, kind: str = "encreg", data: str = "10-50", stores: dict[str, str], out: Path, work: Path,
          epochs: int, seed: int, draws: int, d: int, layers: int, heads: int, batch: int, lr: float, threads: int,
          sectors: tuple[int, float] | None = None, max_events: int | None = None, bins: dict[str, int] | None = None,
          progress: bool = True) -> dict[str, Any]:
    low, high = DATASETS[data]
    sectors = Sectors(*(sectors or SECTORS[data]))
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    cache = work.parent / "datasets"  # shared by the models trained on the same reductions
    cache.mkdir(parents=True, exist_ok=True)
    samples = {}
    for split, store in stores.items():
        cached = cache / f"{Path(store).stem}-{split}-{low}-{high}-d{draws}-s{seed}-n{max_events}.npz"
        if not cached.exists():
            dataset.save(dataset.build(store, low=low, high=high, draws=draws, seed=seed + SPLIT_SEEDS[split],
                                       max_events=max_events), cached)
        samples[split] = dataset.load(cached)
    windows = _windows(samples["train"], sectors)
    features = np.concatenate([s.features for s in windows])
    targets = np.concatenate([s.targets for s in windows])
    norm = {"features_mean": features.mean(0), "features_std": features.std(0) + 1e-6,
            "targets_mean": targets.mean(0), "targets_std": targets.std(0) + 1e-6}
    labels, class_card = [], None
    if kind == "enccla":
        edges = classes.edges(targets, np.concatenate([s.momentum for s in windows]), bins or classes.BINS)
        labels = [classes.labels(s.targets, s.momentum, edges) for s in windows]
        class_card = {"parameters": ["phi", "theta", "p", "q"], "bins": {k: len(e) + 1 for k, e in edges.items()},
                      "edges": edges, "count": classes.count(edges), "top_k": TOP_K,
                      "phi": "relative to the sector centre" if sectors.n > 1 else "absolute"}
    outputs = 4 if kind == "encreg" else class_card["count"]
    model = Encoder(outputs=outputs, d=d, layers=layers, heads=heads, ff=2 * d)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs)
    checkpoint = Checkpoint(work / f"{name}.checkpoint.pt")
    start = checkpoint.resume(model, optimiser, schedule)
    rng = np.random.default_rng(seed)
    for _ in range(start[0]):  # the same shuffles as an uninterrupted run
        rng.permutation(len(windows))

    def batches(epoch: int):
        for x, y, m in _batches(windows, labels, batch, rng, norm):
            if kind == "encreg":
                loss = (((model(x, m) - y) ** 2).sum(-1) * m).sum() / m.sum()
            else:
                loss = torch.nn.functional.cross_entropy(model(x, m).flatten(0, 1), y.flatten(), ignore_index=-1)
            yield loss, len(x)

    seconds, loss_value = run_epochs(model, optimiser, schedule, checkpoint, start=start, epochs=epochs,
                                     batches=batches, progress=progress)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    onnx_path = out / f"{name}.onnx"
    export(model, onnx_path, top_k=TOP_K if kind == "enccla" else 0)
    card = {
        "name": name,
        "family": "trackformer",
        "kind": kind,
        "inputs": {"hits": ["events", "hits", 3], "mask": ["events", "hits"]},
        "outputs": ({"output": ["events", "hits", 4]} if kind == "encreg" else
                    {"classes": ["events", "hits", TOP_K], "probabilities": ["events", "hits", TOP_K]}),
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
    session = Session(onnx_path, threads=1)
    finder = Finder(session, card)
    val_pred = [finder.predict(s.features) for s in samples["val"]]
    worst, rounding = _onnx_vs_torch(model, finder, samples["val"][:20], val_pred, kind)
    if kind == "encreg":
        grid = [{"min_cluster_size": c, "min_samples": s} for c in (2, 3, 4, 5) for s in (1, 2, 3)]
    else:
        grid = [{"min_hits": h} for h in (1, 2, 3, 4)]
    tuned = max(grid, key=lambda p: _score(finder, samples["val"], p, val_pred))
    t0 = time.perf_counter()
    test_score = _score(finder, samples["test"], tuned)
    ms = 1e3 * (time.perf_counter() - t0) / max(1, len(samples["test"]))
    method = ("a transformer encoder regresses [theta, sin phi, cos phi, q] per pixel hit, HDBSCAN groups hits into "
              "tracks" if kind == "encreg" else
              f"a transformer encoder classifies each pixel hit into {outputs} track classes (quantile bins of phi, "
              "theta, p and the charge); the hits of a class are a track")
    card = {
        **card,
        "summary": (f"TrackFormer {kind}: {method}. Trained on {low}-{high}-track reductions of simulated mu = 20 "
                    f"crossings (generic detector, pixel volumes 7, 8, 9), cut into {sectors.n} phi sector(s)."),
        "clustering": {"algorithm": "sklearn.cluster.HDBSCAN" if kind == "encreg" else "top-1 class", **tuned},
        "hyper_parameters": {"d": d, "layers": layers, "heads": heads, "ff": 2 * d, "batch": batch, "lr": lr,
                             "epochs": epochs, "optimiser": "Adam + cosine schedule",
                             "loss": "MSE" if kind == "encreg" else "cross-entropy"},
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "data": {"dataset": data, "draws_per_crossing": draws, "windows": {"train": len(windows)},
                 "stores": {split: Path(path).name for split, path in stores.items()},
                 "simulation": {split: {"events": len(samples[split]) // max(1, draws), "seed": s, "mu": 20}
                                for split, (_, s) in SIMULATION.items()},
                 "events": {split: len(v) for split, v in samples.items()}},
        "seed": seed,
        "command": (f"recotrig train trackformer --model {kind} --dataset {data} --epochs {epochs} --seed {seed} "
                    f"--draws {draws} --train-events {len(samples['train']) // max(1, draws)} --d {d} "
                    f"--layers {layers} --heads {heads} --batch {batch} --lr {lr} --sectors {sectors.n} "
                    f"--overlap {sectors.overlap}" + (f" --name {name}" if name != f"trackformer-{kind}-{data}" else "")),
        "training": {"seconds": round(seconds, 1), "final_loss": loss_value, "machine": machine(threads)},
        "held_out": {"trackml_score": test_score, "events": len(samples["test"]), "ms_per_event": ms},
        "validation": {"trackml_score": _score(finder, samples["val"], tuned, val_pred)},
        "sample_check": _sample_check(finder, tuned, data),
        "onnx_vs_torch_max_abs_diff": worst,
        "torch_float32_vs_float64_max_abs_diff": rounding,
        "onnx_sha256": sha256(onnx_path),
    }
    write_card(onnx_path, card)
    return card


def _onnx_vs_torch(model: torch.nn.Module, finder: Finder, samples: list[dataset.Sample],
                   predictions: list[Any], kind: str) -> tuple[float, float]:
    """The largest differences, on the windows of ``samples`` (their ONNX ``predictions`` given),
    between ONNX Runtime's and torch's outputs (EncReg: the z-scored regression; EncCla: the top-k
    probabilities), and between torch in
    float32 and the same weights in float64: the float32 rounding of the model itself, below which
    no two float32 runtimes can be expected to agree."""
    import copy

    exact = copy.deepcopy(model).double()
    if kind == "enccla":
        model, exact = TopK(model, TOP_K), TopK(exact, TOP_K)
    worst = rounding = 0.0
    with torch.no_grad():
        for sample, prediction in zip(samples, predictions):
            for k, w, out in zip(prediction.sectors, prediction.windows, prediction.outputs):
                x = torch.from_numpy(((finder.sectors.rotate(sample.features[w], k) - finder.mean) / finder.std)[None])
                mask = torch.ones(1, len(w))
                got, ref = model(x, mask), exact(x.double(), mask.double())
                got, ref = (got, ref) if kind == "encreg" else (got[1], ref[1])
                mine = out["output"] if kind == "encreg" else out["probabilities"]
                worst = max(worst, float(np.abs(got.numpy()[0] - mine).max()))
                rounding = max(rounding, float(np.abs(got.numpy()[0] - ref.numpy()[0]).max()))
    return worst, rounding


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="recotrig train trackformer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("encreg", "enccla"), default="encreg")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="10-50")
    parser.add_argument("--name", default=None, help="model name (default trackformer-<model>-<dataset>)")
    parser.add_argument("--out", default=str(SHIPPED), help="where the ONNX file and card go")
    parser.add_argument("--stores", default=None, help="train,val,test stores (default: simulated into the cache)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--draws", type=int, default=None, help="reductions per crossing (default: 20 at 10-50, "
                        "4 at 200-500)")
    parser.add_argument("--sectors", type=int, default=None, help="phi sectors (default: 1 at 10-50, 12 at 200-500)")
    parser.add_argument("--overlap", type=float, default=None, help="rad added on each side of a sector (default: "
                        "0 at 10-50, 0.1 at 200-500)")
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
    name = a.name or f"trackformer-{a.model}-{a.dataset}"
    if a.stores:
        parts = a.stores.split(",")
        if len(parts) != 3:
            raise ValueError("--stores takes three stores: train,val,test")
        stores = dict(zip(("train", "val", "test"), parts))
    else:
        stores = simulated_stores(_cache() / "stores", train_events=a.train_events)
    n, overlap = SECTORS[a.dataset]
    sectors = (a.sectors or n, overlap if a.overlap is None else a.overlap)
    card = train(name=name, kind=a.model, data=a.dataset, stores=stores, out=Path(a.out), work=_cache() / "work" / name,
                 epochs=a.epochs, seed=a.seed, draws=a.draws or DRAWS[a.dataset], sectors=sectors, d=a.d, layers=a.layers, heads=a.heads, batch=a.batch,
                 lr=a.lr, threads=a.threads, max_events=a.max_events, progress=not a.no_progress)
    print(json.dumps({k: card[k] for k in ("name", "held_out", "validation", "onnx_vs_torch_max_abs_diff",
                                           "training")}, indent=1))
    return 0
