"""EncCla with a factorised class head (``recotrig train trackformer --factorise MODEL``).

A trained EncCla's encoder is kept as it is (its weights read back from its ONNX file,
``train.weights_of``). A ``model.FactorisedHead`` learns, from the encoder's features of the
training windows, the phi bin, the theta bin and the (p bin, charge) of each hit's particle, with
the card's class edges; a class's probability is the product of its three factors'. The exported
graph (``model.FactorisedTopK``) gives what the joint head's gives, the top-k classes per hit and
their probabilities, so TrackFormerFinder runs it unchanged. The training windows are the card's
data set, reduction seed and draws on the training's simulated stores (the first
``--train-events`` crossings, made when missing). The track building is then tuned again on the
validation events and scored on the held-out ones (``train.retune``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recotrig.models.registry import Model, sha256, write_card
from recotrig.models.runtime import Session
from recotrig.models.trackformer import classes
from recotrig.models.trackformer.inference import Finder
from recotrig.models.trackformer.sectors import Sectors
from recotrig.training.common import PIECE, training_entry
from recotrig.training.trackformer import train
from recotrig.training.trackformer.model import Encoder, FactorisedHead, FactorisedTopK

__all__ = ["factorise"]

#: training examples (hits) per step of the head's training
BATCH = 4096


def _examples(model: Model, encoder: Encoder, store: str, max_events: int | None):
    """The encoder's features of every hit of the training windows of ``store`` (a fileset spec)
    and its three factor labels."""
    card = model.card
    samples = train._datasets(
        {"train": store},
        data=card["data"]["dataset"],
        draws=int(card["data"]["draws_per_crossing"]),
        seed=int(card["seed"]),
        max_events=max_events,
        cache=train._cache() / "work" / "datasets",
    )["train"]
    sectors = card["sectors"]  # windows as in the encoder's training
    windows = train._windows(samples, Sectors(sectors["n"], sectors.get("trained_overlap", sectors["overlap"])))
    mean, std = (np.asarray(card["normalisation"][k], np.float32) for k in ("features_mean", "features_std"))
    with torch.no_grad():
        features = torch.cat(
            [
                encoder.features(torch.from_numpy((w.features - mean) / std)[None], torch.ones(1, len(w.hit_ids)))[0]
                for w in windows
            ]
        )
    bins = card["classes"]["bins"]
    n_theta, n_pq = bins["theta"], 2 * bins["p"]
    labels = np.concatenate([classes.labels(w.targets, w.momentum, card["classes"]["edges"]) for w in windows])
    factors = [labels // (n_theta * n_pq), labels // n_pq % n_theta, labels % n_pq]
    return features, [torch.from_numpy(f) for f in factors], len(windows)


def _fit(
    head: FactorisedHead, features: torch.Tensor, labels: list[torch.Tensor], *, epochs: int, lr: float, seed: int
) -> float:
    """Adam with a cosine schedule on the summed cross-entropies of the three factors; the mean
    loss of the last epoch."""
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    steps = epochs * -(-len(features) // BATCH)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    for _ in range(epochs):
        total = 0.0
        for rows in torch.randperm(len(features), generator=generator).split(BATCH):
            loss = sum(
                torch.nn.functional.nll_loss(f, y[rows]) for f, y in zip(head(features[rows]), labels, strict=True)
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(rows)
    return total / len(features)


def factorise(
    model: Model,
    onnx: Path,
    *,
    crossings: int,
    stores: dict[str, str] | None = None,
    width: int = 128,
    epochs: int = 16,
    lr: float = 3e-3,
    seed: int = 1,
    max_events: int | None = None,
) -> dict[str, Any]:
    """``model`` (an EncCla with a joint head) with a factorised head trained on its encoder,
    written to ``onnx`` with its card: the card's entries as they were, ``head`` (the head and its
    training), and the track building tuned again (``train.retune``). ``stores``: {"train", "val",
    "test"} (default: the training's simulated stores, the first ``crossings`` of its training
    ones). ``ValueError`` for a model that is no EncCla or already factorised. Returns the card."""
    card = model.card
    if card["kind"] != "enccla" or "head" in card:
        raise ValueError(f"{model.onnx}: --factorise takes an EncCla with a joint class head")
    torch.manual_seed(seed)
    encoder = train.encoder_of(model.onnx, card)
    start = time.perf_counter()
    if stores is None:
        made = train.simulated_stores(train._cache() / "stores", jobs=1, train_events=crossings, splits=("train",))
        store, tuning = made["train"], None
    else:
        store, tuning = stores["train"], {k: stores[k] for k in ("val", "test")}
    features, labels, windows = _examples(model, encoder, store, max_events)
    bins = card["classes"]["bins"]
    head = FactorisedHead(int(card["hyper_parameters"]["d"]), width, (bins["phi"], bins["theta"], 2 * bins["p"]))
    loss = _fit(head, features, labels, epochs=epochs, lr=lr, seed=seed)
    graph = FactorisedTopK(encoder, head.eval(), train.TOP_K).eval()
    train.export(graph, onnx, top_k=train.TOP_K)
    used = [p for name, p in graph.named_parameters() if not name.startswith("encoder.head.")]
    finder = Finder(Session(onnx, threads=1), card)
    probe = train.dataset.build(str(train.SAMPLE_MU20), **train.SAMPLE_CHECK[card["data"]["dataset"]])[:5]
    worst, rounding = train.onnx_vs_torch(graph, finder, probe, [finder.predict(s.features) for s in probe], "enccla")
    out = {k: v for k, v in card.items() if k not in ("reexport", "retune_command", "passes_command")}
    out |= {
        "name": onnx.name.removesuffix(".onnx"),
        "head": {
            "kind": "factorised",
            "factors": {"phi": bins["phi"], "theta": bins["theta"], "p_charge": 2 * bins["p"]},
            "width": width,
            "epochs": epochs,
            "lr": lr,
            "seed": seed,
            "data": {"stores": [Path(s).name for s in store.split("\n")], "windows": windows},
            "hits": len(features),
            "training": training_entry(time.perf_counter() - start, torch.get_num_threads(), [PIECE], final_loss=loss),
        },
        "parameters": sum(p.numel() for p in used),
        "onnx_vs_torch_max_abs_diff": worst,
        "torch_float32_vs_float64_max_abs_diff": rounding,
        "onnx_sha256": sha256(onnx),
    }
    write_card(onnx, out)
    out |= train.retune(onnx, stores=tuning, max_events=max_events)
    out["summary"] += (
        " Its class head is factorised: the phi bin, the theta bin and the (p bin, charge) are predicted"
        " apart, and a class's probability is their product."
    )
    write_card(onnx, out)
    return out
