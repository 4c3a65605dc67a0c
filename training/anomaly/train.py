"""Training of the L1 anomaly-detection models (``recotrig train anomaly``).

    recotrig train anomaly [--dataset zerobias-mu60] [--kind vae|ae] [--epochs 20 --qat-epochs 10] [--output DIR]

1. Data: the named data set's training and validation backgrounds (``dataset.background``).
2. Input scaling: per feature a power-of-two shift (standard deviation near 1, the 99.99 %
   quantile inside the input type) and an offset on the input grid (the mean), chosen on the
   training set (``input_scaling``). The fraction of
   saturated training inputs per feature is reported and written to the card; above
   ``--max-saturation`` the training stops with the offending features named.
3. Float training (Adam, ``--epochs``) of the AE or VAE, then quantisation-aware fine-tuning
   (``--qat-epochs``) of a copy with fake quantisation on (weights, biases, layer results, inputs).
   The float model is the baseline the quantised figures are compared with. A ``student`` (an
   encoder alone, score ``sum y**2``) learns instead to reproduce ``--teacher``'s float score,
   as ``log(1 + score / median)`` of the teacher's score on the training set (``teacher_targets``);
   ``--weight-bits`` narrows the weights (the firmware's LUTs follow their non-zero bits).
4. Export: the float model's score graph to ONNX (raw 57 features in, score out; checked against
   torch in ONNX Runtime), the quantised model's fixed-point spec (``<name>.fixed.json``: shifts,
   types, integer weights), and the card with the held-out figures of both.

Deterministic for ``--seed`` and ``--threads`` (torch's sums follow the thread count, so the card's
command names both); checkpoints after every epoch of each phase, resumed by a rerun.
The model goes to ``recotrig-models/`` (or ``--output DIR``), never over a model there without
``--force``, and into the shipped models only with ``--replace-shipped`` (``training.common``).
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recotrig.edm.trigger import SIGNALS, l1_feature_names
from recotrig.framework.arguments import ArgumentParser, integer
from recotrig.framework.sequencer import MAX_JOBS
from recotrig.metrics.trigger import RATES_KHZ, efficiency_at_fpr, fpr_of_rate, trigger_figures
from recotrig.models import registry
from recotrig.models.anomaly.fixedpoint import FixedType, Spec, saturation_report
from recotrig.models.registry import cache_dir, sha256, write_card
from recotrig.models.runtime import Session
from recotrig.training.anomaly import dataset
from recotrig.training.anomaly.model import AnomalyNet, ScoreModel
from recotrig.training.common import (
    MODEL_SUFFIXES,
    Checkpoint,
    add_output_options,
    export_onnx,
    model_output,
    run_epochs,
    training_entry,
)

#: the fixed-point types: inputs ap_fixed<14,5> (|x| < 16 after the shift), weights <8,2>,
#: biases <12,4>, layer results <16,7>; rounding to nearest for the constants, truncation for the
#: results, saturation everywhere
TYPES = {
    "input": FixedType(14, 5, "TRN", "SAT"),
    "weight": FixedType(8, 2, "RND", "SAT"),
    "bias": FixedType(12, 4, "RND", "SAT"),
    "result": FixedType(16, 7, "TRN", "SAT"),
}


def input_scaling(x: np.ndarray, input_type: FixedType, quantile: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, a power-of-two standardisation a firmware does with a shift and a subtraction:
    the shift that brings the standard deviation nearest to 1, but at least the one that keeps the
    ``quantile`` of |x - mean| over the crossings where the feature is non-zero inside the input
    type (a rare object, a third muon, must not saturate), and the mean, rounded to the input grid,
    as the offset (in LSBs)."""
    x = np.asarray(x, np.float64)
    limit = 2.0 ** (input_type.integer - 1) * (1 - 2.0**-input_type.width)
    mean, std = x.mean(axis=0), x.std(axis=0)
    shift = np.round(np.log2(np.maximum(std, 2.0**-4))).astype(int)
    for j in range(x.shape[1]):
        present = x[:, j] != 0
        if present.any():
            q = np.quantile(np.abs(x[present, j] - mean[j]), quantile)
            shift[j] = max(shift[j], int(np.ceil(np.log2(max(q, 1e-12) / limit))))
    offsets = np.round(mean * 2.0 ** (input_type.fraction - shift)).astype(int)
    return shift, offsets


def check_saturation(spec: Spec, x: np.ndarray, max_fraction: float) -> dict[str, float]:
    """The fraction of saturated training inputs per feature; ``ValueError`` naming the features
    above ``max_fraction``."""
    saturated = saturation_report(spec, x)
    worst = {k: round(v, 6) for k, v in saturated.items() if v > max_fraction}
    if worst:
        raise ValueError(
            f"the input type {spec.input} with shifts {spec.shifts} saturates on the training inputs "
            f"above the allowed fraction {max_fraction}: {worst}"
        )
    return saturated


def weight_type(bits: int) -> FixedType:
    """The weights' type: ``bits`` wide with the default's integer part (|w| < 2)."""
    return FixedType(bits, TYPES["weight"].integer, TYPES["weight"].rounding, TYPES["weight"].overflow)


#: ``--score``: the features (by name ending) of the AE's reconstruction error, loss and score
SCORE_FEATURES = {"all": ("_pt", "_eta", "_phi"), "no-phi": ("_pt", "_eta"), "pt": ("_pt",)}


def make_net(
    kind: str,
    scaling: tuple[np.ndarray, np.ndarray],
    sizes: tuple[int, ...] = (57, 32, 16, 8),
    score: str = "all",
    weight_bits: int = TYPES["weight"].width,
    seed: int = 0,
) -> AnomalyNet:
    """``score``: the features of the reconstruction error: "all", "no-phi" (pT and eta) or "pt".
    ``seed``: the initial weights' (the same seed, the same net)."""
    shifts, offsets = scaling
    torch.manual_seed(seed)
    names = l1_feature_names()
    features = [i for i, n in enumerate(names) if n.endswith(SCORE_FEATURES[score])]
    return AnomalyNet(
        kind=kind,
        shifts=shifts,
        offsets=offsets,
        sizes=sizes,
        input_type=TYPES["input"],
        weight=weight_type(weight_bits),
        bias=TYPES["bias"],
        result=TYPES["result"],
        feature_names=names,
        score_features=features,
    )


def loss_of(
    net: AnomalyNet, out: dict[str, torch.Tensor], beta: float, target: torch.Tensor | None = None
) -> torch.Tensor:
    if net.kind == "student":
        return ((out["score"] - target) ** 2).mean()
    reco = (((out["reco"] - out["inputs"]) ** 2) * net.score_mask).sum(dim=1)
    if net.kind == "vae":
        kl = -0.5 * (1 + out["logvar"] - out["mu"] ** 2 - out["logvar"].exp()).sum(dim=1)
        return (reco + beta * kl).mean()
    return reco.mean()


def teacher_targets(teacher: str, x: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, float]:
    """A student's targets: ``log(1 + s / scale)`` of the teacher's float score ``s`` (its ONNX
    graph; a shipped name or path, checked as an anomaly model), ``scale`` the median of ``s`` on ``x``
    unless given. Returns the targets and the scale."""
    session = Session(registry.load(teacher, family="anomaly").onnx, threads=torch.get_num_threads())
    s = np.concatenate(
        [session.run(l1_inputs=np.array(x[i : i + 65536], np.float32))["score"] for i in range(0, len(x), 65536)]
    ).astype(np.float64)
    scale = float(np.median(s)) if scale is None else scale
    return np.log1p(np.maximum(s, 0.0) / scale).astype(np.float32), scale


def fit(
    net: AnomalyNet,
    x: np.ndarray,
    x_val: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch: int,
    seed: int,
    beta: float,
    checkpoint: Checkpoint,
    targets: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Adam with a cosine schedule (``training.run_epochs``); returns the per-epoch train and
    validation losses of the epochs run here (``history``) and the training seconds of all epochs,
    resumed ones included. ``targets``: a student's training and validation targets."""
    torch.manual_seed(seed)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1))
    xt = torch.from_numpy(np.array(x, np.float32))
    xv = torch.from_numpy(np.array(x_val, np.float32))
    tt, tv = (torch.from_numpy(np.asarray(t, np.float32)) for t in targets) if targets else (None, None)

    def batches(epoch: int):
        order = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for i in range(0, len(xt), batch):
            rows = order[i : i + batch]
            yield loss_of(net, net(xt[rows]), beta, None if tt is None else tt[rows]), len(rows)

    history: list[dict[str, float]] = []

    def validate(epoch: int, loss: float) -> None:
        net.eval()
        with torch.no_grad():
            history.append({"epoch": epoch, "train": loss, "val": float(loss_of(net, net(xv), beta, tv))})

    seconds, _ = run_epochs(
        net,
        optimiser,
        schedule,
        checkpoint,
        start=checkpoint.resume(net, optimiser, schedule),
        epochs=epochs,
        batches=batches,
        progress=progress,
        after_epoch=validate,
    )
    return {"history": history, "seconds": seconds, "epochs": epochs, "pieces": checkpoint.pieces}


def float_scores(net: AnomalyNet, x: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        out = []
        for i in range(0, len(x), 65536):
            out.append(net(torch.from_numpy(np.array(x[i : i + 65536], np.float32)))["score"].double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def spec_scores(spec: Spec, x: np.ndarray) -> np.ndarray:
    return np.concatenate([spec.score(np.asarray(x[i : i + 65536])) for i in range(0, len(x), 65536)])


def evaluate(score, background: np.ndarray, signals: dict[str, np.ndarray], *, rates: bool) -> dict[str, Any]:
    """Per signal: AUC and the efficiencies of ``metrics.trigger.trigger_figures``."""
    b = score(background)
    return {
        "n_background": len(b),
        **{name: {"n_signal": len(x), **trigger_figures(b, score(x), zero_bias=rates)} for name, x in signals.items()},
    }


def headline(figures: dict[str, Any]) -> str:
    """The card's one line: held-out AUC of A -> 4 leptons, quantised and float."""
    q, f = figures["quantised"]["ato4l"]["auc"], figures["float"]["ato4l"]["auc"]
    return f"held-out AUC(A->4l) {q:.3f} quantised ({f:.3f} float)"


def layer_saturation(spec: Spec, x: np.ndarray) -> list[float]:
    """Per layer, the fraction of results at the edge of the result type (saturated)."""
    values = list(spec.layer_values(spec.hw_words(x)))[1:]
    return [float(np.mean((k == layer.result.lo) | (k == layer.result.hi))) for layer, k in zip(spec.layers, values)]


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="recotrig train anomaly", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="zerobias-mu60", choices=sorted(dataset.DATASETS))
    parser.add_argument("--kind", default="vae", choices=("vae", "ae", "student"))
    parser.add_argument("--sizes", default="57,32,16,8", help="layer widths of the encoder (the decoder mirrors it)")
    parser.add_argument("--teacher", default=None, help="a student's teacher: a model name or .onnx path")
    parser.add_argument(
        "--weight-bits", type=integer(3, 16), default=TYPES["weight"].width, help="width of the weights' type"
    )
    parser.add_argument(
        "--score",
        default="all",
        choices=tuple(SCORE_FEATURES),
        help="features of the reconstruction loss and the AE score: all, pT and eta only, or pT only",
    )
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--qat-epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--beta", type=float, default=1.0, help="weight of the VAE's KL term")
    parser.add_argument("--seed", type=integer(0, 2**32 - 1), default=5)
    parser.add_argument("--threads", type=integer(1, MAX_JOBS), default=2)
    parser.add_argument("--jobs", type=integer(1, MAX_JOBS), default=2, help="processes for data generation")
    parser.add_argument(
        "--max-saturation",
        type=float,
        default=1e-3,
        help="largest fraction of saturated training inputs allowed per feature",
    )
    parser.add_argument("--name", default=None, help="model name (default anomaly-<kind>-<dataset>)")
    add_output_options(parser)
    return parser


@dataclass
class _Trained:
    """What the two training phases leave: the float and the quantised nets, the data they saw,
    the input scaling, and the histories."""

    net: AnomalyNet
    spec: Spec
    x_train: np.ndarray
    meta_train: dict[str, Any]
    x_val: np.ndarray
    shifts: np.ndarray
    offsets: np.ndarray
    saturated: Any
    config: dict[str, Any]
    history: dict[str, Any]
    history_q: dict[str, Any]


def _train(args: argparse.Namespace, sizes: tuple[int, ...], work: Path) -> _Trained:
    """Float training, then quantisation-aware fine-tuning of a copy (each checkpointed, resumable)."""
    x_train, meta_train = dataset.background(args.dataset, "train", jobs=args.jobs)
    x_val, _ = dataset.background(args.dataset, "val", jobs=args.jobs)
    print(f"{args.dataset}: {len(x_train)} training and {len(x_val)} validation background events")
    shifts, offsets = input_scaling(x_train, TYPES["input"])
    net = make_net(args.kind, (shifts, offsets), sizes, args.score, args.weight_bits, args.seed)
    print("input shifts:", dict(zip(l1_feature_names(), shifts.tolist())))
    saturated = check_saturation(net.to_spec(), x_train, args.max_saturation)
    config = {
        k: v
        for k, v in vars(args).items()
        if k not in ("threads", "jobs", "output", "force", "replace_shipped", "name")
    }
    config["input_scaling"] = "pow2-std, non-zero 99.9 % range, v2"  # checkpoints of another rule are refused
    config["data"] = dataset.DATASETS[args.dataset].key()  # and checkpoints trained on another recipe's data
    targets = None
    if args.kind == "student":
        t_train, config["teacher_scale"] = teacher_targets(args.teacher, x_train)
        config["teacher_sha256"] = registry.load(args.teacher).card["onnx_sha256"]
        targets = (t_train, teacher_targets(args.teacher, x_val, config["teacher_scale"])[0])
    history = fit(
        net,
        x_train,
        x_val,
        epochs=args.epochs,
        lr=args.lr,
        batch=args.batch,
        seed=args.seed,
        beta=args.beta,
        checkpoint=Checkpoint(work / "float.pt", {**config, "phase": "float"}),
        targets=targets,
    )
    qnet = copy.deepcopy(net)
    qnet.set_quantised(True)
    history_q = fit(
        qnet,
        x_train,
        x_val,
        epochs=args.qat_epochs,
        lr=args.lr / 4,
        batch=args.batch,
        seed=args.seed + 1,
        beta=args.beta,
        checkpoint=Checkpoint(work / "qat.pt", {**config, "phase": "qat"}),
        targets=targets,
    )
    return _Trained(
        net, qnet.to_spec(), x_train, meta_train, x_val, shifts, offsets, saturated, config, history, history_q
    )


def _export(t: _Trained, out: Path, name: str) -> tuple[Path, Path, float]:
    """The ONNX file and the fixed-point spec in ``out``, each checked: the spec round-trips, and
    ONNX Runtime's score matches torch's (the largest relative difference is returned)."""
    onnx_path = out / f"{name}.onnx"
    export_onnx(
        ScoreModel(t.net).eval(),
        (torch.zeros(2, 57),),
        onnx_path,
        inputs=["l1_inputs"],
        outputs=["score"],
        dynamic_axes={"l1_inputs": {0: "events"}, "score": {0: "events"}},
    )
    spec_path = out / f"{name}.fixed.json"
    t.spec.save(spec_path)
    check = Spec.load(spec_path)
    if not np.array_equal(check.score_int(t.x_val[:5000]), t.spec.score_int(t.x_val[:5000])):
        raise RuntimeError(f"{spec_path}: the spec does not round-trip")

    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    sample = np.asarray(t.x_val[:4096], np.float32)
    ort_score = session.run(None, {"l1_inputs": sample})[0]
    torch_score = float_scores(t.net, sample)
    return onnx_path, spec_path, float(np.max(np.abs(ort_score - torch_score) / np.maximum(np.abs(torch_score), 1e-6)))


def _held_out(args: argparse.Namespace, t: _Trained) -> dict[str, Any]:
    """Float and quantised figures on the test split and the signals, the quantised score's
    thresholds at fixed zero-bias rates (for AnomalyTrigger), and the quantised/float ratios."""
    x_test, meta_test = dataset.background(args.dataset, "test", jobs=args.jobs)
    signals = {p: dataset.signal(args.dataset, p, jobs=args.jobs)[0] for p in SIGNALS}
    rates = args.dataset.startswith("zerobias")
    figures = {
        "float": evaluate(lambda x: float_scores(t.net, x), x_test, signals, rates=rates),
        "quantised": evaluate(lambda x: spec_scores(t.spec, x), x_test, signals, rates=rates),
    }
    thresholds = {}
    if rates:
        b_q = spec_scores(t.spec, x_test)
        thresholds = {f"{r:g}": efficiency_at_fpr(b_q, b_q[:0], fpr_of_rate(r))["threshold"] for r in RATES_KHZ}
    ratios = {
        p: {
            "auc": figures["quantised"][p]["auc"] / figures["float"][p]["auc"],
            "tpr_at_fpr_1e-5": (
                figures["quantised"][p]["at_fpr_1e-5"]["efficiency"] / figures["float"][p]["at_fpr_1e-5"]["efficiency"]
                if figures["quantised"][p]["at_fpr_1e-5"]["measured"]
                and figures["float"][p]["at_fpr_1e-5"]["efficiency"] > 0
                else None
            ),
        }
        for p in SIGNALS
    }
    return {"figures": figures, "thresholds": thresholds, "ratios": ratios, "meta_test": meta_test}


def _card(
    args: argparse.Namespace, name: str, sizes: tuple[int, ...], t: _Trained, held: dict[str, Any], spec_path: Path
) -> dict[str, Any]:
    """The model card (without the ONNX file's own entries)."""
    figures = held["figures"]
    return {
        "name": name,
        "family": "anomaly",
        "summary": (
            f"L1 anomaly-detection {args.kind.upper()} trained on {len(t.x_train)} {args.dataset} background "
            f"crossings with quantisation-aware fine-tuning; score = {SCORES[args.kind]}"
            + (f" {args.teacher}'s score" if args.kind == "student" else "")
            + "."
        ),
        "headline": headline(figures),
        "kind": args.kind,
        "parameters": sum(p.numel() for p in t.net.parameters()),
        "inputs": {
            "l1_inputs": {
                "shape": ["events", 57],
                "dtype": "float32",
                "layout": "MET, 4 e/gamma, 4 muons, 10 jets, each (pT [GeV], eta, phi), zero-padded",
            }
        },
        "outputs": {"score": {"shape": ["events"], "dtype": "float32"}},
        "features": l1_feature_names(),
        "normalisation": {
            "input_shifts": t.shifts.tolist(),
            "input_offsets_lsb": t.offsets.tolist(),
            "rule": "x * 2**-shift - offset * 2**-(input fraction bits), then the input type",
            "input_type": str(TYPES["input"]),
            "saturated_training_fraction": t.saturated,
        },
        "fixed_point": {
            "spec": spec_path.name,
            "spec_sha256": sha256(spec_path),
            "types": {k: str(v) for k, v in {**TYPES, "weight": weight_type(args.weight_bits)}.items()},
            "layer_result_saturation": layer_saturation(t.spec, np.asarray(t.x_val[:20000])),
        },
        "quantisation_choice": QUANTISATION_CHOICE,
        "architecture": {
            "kind": args.kind,
            "sizes": list(sizes),
            "parameters": sum(p.numel() for p in t.net.parameters()),
        },
        "training": {
            "command": (
                f"recotrig train anomaly --dataset {args.dataset} --kind {args.kind} --sizes {args.sizes} "
                f"--score {args.score} --beta {args.beta:g} --epochs {args.epochs} --qat-epochs "
                f"{args.qat_epochs} --batch {args.batch} --lr {args.lr:g} --seed {args.seed} --threads {args.threads}"
                + (f" --teacher {args.teacher}" if args.teacher else "")
                + (f" --weight-bits {args.weight_bits}" if args.weight_bits != TYPES["weight"].width else "")
                + (f" --name {name}" if args.name else "")
            ),
            "data": {
                "train": t.meta_train,
                "test": held["meta_test"],
                "signals": {p: dataset.signal(args.dataset, p)[1] for p in SIGNALS},
            },
            "float_last_epochs": t.history["history"][-3:],
            "qat_last_epochs": t.history_q["history"][-3:],
            **training_entry(
                t.history["seconds"] + t.history_q["seconds"], args.threads, t.history["pieces"] + t.history_q["pieces"]
            ),
            "config": t.config,
        },
        "held_out": figures,
        "thresholds_khz": held["thresholds"],
        "quantised_over_float": held["ratios"],
    }


#: the card's words for each kind's score
SCORES = {
    "vae": "sum of mu^2 of the encoder",
    "ae": "squared reconstruction error",
    "student": "sum of y^2 of an encoder trained to give log(1 + s / median s) of",
}

#: why the quantisation is written here (the card's ``quantisation_choice``)
QUANTISATION_CHOICE = (
    "Fake quantisation written here (training/anomaly/model.py, about 60 lines) on per-layer ap_fixed "
    "types, with an exact integer reference (fixedpoint.Spec): the same rounding/overflow semantics as "
    "ap_fixed, one framework (torch) for training, and a direct path to hls4ml's PyTorch frontend with "
    "per-layer precisions (the bit-exact route in shared facts). HGQ2's per-weight widths would lower "
    "the LUT count further; not evaluated in this round."
)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sizes = tuple(int(v) for v in args.sizes.split(","))
    if sizes[0] != 57:
        raise ValueError(f"--sizes must start with the 57 inputs, got {args.sizes}")
    if (args.kind == "student") != (args.teacher is not None):
        raise ValueError("--teacher goes with --kind student, and a student needs its --teacher")
    if args.teacher:
        registry.load(args.teacher, family="anomaly")  # a wrong teacher is named before the data are read
    name = args.name or f"anomaly-{args.kind}-{args.dataset}"
    target = model_output(args, name, (*MODEL_SUFFIXES, ".fixed.json"))
    torch.set_num_threads(args.threads)
    work = cache_dir("anomaly") / "runs" / name
    work.mkdir(parents=True, exist_ok=True)
    trained = _train(args, sizes, work)
    with target.staged() as out:
        onnx_path, spec_path, ort_diff = _export(trained, out, name)
        held = _held_out(args, trained)
        card = {
            **_card(args, name, sizes, trained, held, spec_path),
            "onnx_runtime_vs_torch_max_rel": ort_diff,
            "onnx_sha256": sha256(onnx_path),
        }
        write_card(onnx_path, card)
    print(
        json.dumps(
            {"model": str(target.directory / onnx_path.name), "headline": card["headline"], "ratios": held["ratios"]},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
