"""TrackFormerFinder: transformer hit-to-track assignment (TrackFormers, Caron et al., EPJC 85, 460).

The model sees the pixel hits' (x, y, z) alone. EncReg regresses [theta, sin phi, cos phi, q] of
each hit's particle and HDBSCAN groups the hits in that space; EncCla classifies each hit into
track classes (quantile bins of the particle's phi, theta, p and its charge), and the hits of a
group of classes that their top-k posteriors link are a track (a particle's hits scatter over
neighbouring classes; ``models/trackformer/tracks.py: linked``). Where the card says so, the
candidates are then split where their hits draw more than one helix from the beam line and merged
where two draw one (``models/trackformer/helices.py``). Where the card gives passes, the finding is
iterative: the long tracks of a pass are kept and the model runs again on the hits they leave
(``models/trackformer/inference.py``). Events larger than one attention
window are cut into the card's overlapping phi sectors and the sectors' tracks merged
(``models/trackformer/sectors.py``). The model is an ONNX file with its card (``recotrig
models``): features, normalisation, sectors, the track building tuned on validation data and the
largest window the model may take all come from the card, which is checked at ``initialize``.

EncCla's tracks carry, per hit, the top-k classes and probabilities of the softmax
(``top1_class``, ``top1_prob``, ... jagged columns parallel to ``hit_ids``).

``prior`` (optional; e.g. ``TrackFormerFinder(prior="tracks_ckf")``) names tracks found before,
by ActsCKF say: their hits are taken out of ``hits`` before the model runs, and they lead the
output, restricted to ``hits`` (class -1, probability 0 in EncCla's columns). The classic finder
takes the clean, high-pT tracks that crowd a dense event and the model finds the rest.
"""

from __future__ import annotations

import itertools

import awkward as ak
import numpy as np

from recotrig.algorithms.ml.base import ModelAlgorithm
from recotrig.edm import Hits, Tracks
from recotrig.framework import ConfigError, Option, lists
from recotrig.framework.algorithm import Algorithm
from recotrig.framework.lookup import index_of
from recotrig.models.runtime import Session
from recotrig.models.trackformer.inference import Finder, params_of, unused, warm_up

FEATURES = ["x", "y", "z"]


class TrackFormerFinder(ModelAlgorithm):
    """Finds tracks in a hit collection with a TrackFormer model (ONNX): EncReg + HDBSCAN or EncCla."""

    requires = ("onnxruntime", "scikit-learn", "numba")
    family = "trackformer"
    outputs = ("tracks",)
    model = Option(
        "trackformer-encreg-10-50",
        "a shipped model's name, or the path of an .onnx file (card beside it)",
        role="model",
    )
    threads = Option(1, "ONNX Runtime intra-op threads (never more than the process's thread budget)", low=1, high=64)
    sectors = Option(0, "phi sectors an event is cut into (0: the card's)", low=0, high=256)
    min_cluster_size = Option(0, "EncReg: HDBSCAN min_cluster_size (0: the card's tuned value)", low=0)
    min_samples = Option(0, "EncReg: HDBSCAN min_samples (0: the card's tuned value)", low=0)
    link_overlap = Option(
        -1.0,
        "EncCla: link classes whose hits' top-k posteriors overlap by more than this (0: no "
        "links, each top-1 class a track; -1: the card's tuned value)",
        low=-1.0,
        high=1.0,
    )
    helix = Option(
        True,
        "split and merge the candidates by their helix fit where the card gives its tolerances "
        "(clustering.helix); False: the network's candidates as they are",
    )
    passes = Option(
        True,
        "find iteratively where the card gives its passes (clustering.passes): a pass's long tracks "
        "kept, the model run again on the hits they leave; False: one pass",
    )

    def initialize(self) -> None:
        model = self.load_model(features=FEATURES)
        card = model.typed_card
        if card.kind not in ("encreg", "enccla"):
            raise ConfigError(f"{self.name}: {model.onnx}: the card's kind {card.kind!r} is neither encreg nor enccla")
        if card.kind == "enccla" and card.classes is None:
            raise ConfigError(f"{self.name}: {model.onnx}: an enccla card needs the field 'classes.top_k'")
        try:
            self._params = params_of(card)
        except ValueError as err:
            raise ConfigError(f"{self.name}: {model.onnx}: {err}") from None
        for key in ("min_cluster_size", "min_samples"):
            if getattr(self, key) and key in self._params:
                self._params[key] = getattr(self, key)
        if self._params.get("min_cluster_size", 2) < 2 or self._params.get("min_samples", 1) < 1:
            raise ConfigError(
                f"{self.name}: HDBSCAN needs min_cluster_size >= 2 and min_samples >= 1, got "
                f"{self._params['min_cluster_size']} and {self._params['min_samples']}"
            )
        if self.link_overlap >= 0 and "link_overlap" in self._params:
            self._params["link_overlap"] = self.link_overlap
        if not self.helix:
            self._params["helix"] = None
        if not self.passes:
            self._params["passes"] = []
        self._path = model.onnx
        self._top_k = card.classes.top_k if card.classes is not None and card.kind == "enccla" else 0
        self._finder = Finder(
            Session(model.onnx, threads=min(self.threads, self.context.threads)), card, sectors=self.sectors
        )
        warm_up()

    def check_upstream(self, upstream: dict[str, Algorithm]) -> None:
        """``prior`` bound to a key that no algorithm gives is a mistake, not an absent input."""
        if self.key("prior") != "prior" and "prior" not in upstream:
            raise ConfigError(
                f"{self.name}: input 'prior' reads key {self.key('prior')!r}, which no algorithm produces "
                "(it names the tracks whose hits are taken out before the model runs, e.g. tracks_ckf)"
            )

    def execute(self, hits: Hits, prior: Tracks | None = None) -> Tracks:
        x = np.stack([np.asarray(hits[c], np.float32) for c in FEATURES], axis=1)
        hit_ids = np.asarray(hits.hit_id)
        known = [] if prior is None else _rows_of(prior, hit_ids)
        left = unused(len(hits), known)
        try:
            found = self._finder(x[left], self._params)
        except ValueError as err:  # a window larger than the model's capacity
            raise ValueError(f"{self.name}: {len(left)} hits: model {self._path.name}: {err}") from None
        tracks = known + [left[t] for t in found.tracks]
        sizes = np.asarray([len(t) for t in tracks], np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        index = np.concatenate(tracks) if tracks else np.zeros(0, np.int64)
        order = np.lexsort((hit_ids[index], np.repeat(np.arange(len(sizes)), sizes)))  # each track by hit id

        def jagged(rows: list[np.ndarray], dtype: type) -> ak.Array:
            """One list per track, from the tracks' rows concatenated in hit-id order (numpy: a list
            of Python lists costs awkward ten times more)."""
            return lists((np.concatenate(rows)[order] if rows else np.zeros(0)).astype(dtype), offsets)

        extra = {}
        for j in range(self._top_k):  # a prior track's hits have no class posterior: class -1, probability 0
            classes = [np.full(len(t), -1) for t in known] + [c[:, j] for c in found.classes]
            probabilities = [np.zeros(len(t)) for t in known] + [p[:, j] for p in found.probabilities]
            extra[f"top{j + 1}_class"] = ("var*i8", jagged(classes, np.int64))
            extra[f"top{j + 1}_prob"] = ("var*f4", jagged(probabilities, np.float32))
        return Tracks(hit_ids=lists(hit_ids[index[order]].astype(np.int64), offsets), extra=extra)


def _rows_of(prior: Tracks, hit_ids: np.ndarray) -> list[np.ndarray]:
    """Per prior track, the rows of ``hit_ids`` holding its hits (sorted): a hit not in them is left
    out, a hit on two tracks goes to the first, and a track left with no hit is dropped."""
    counts = np.asarray(ak.num(prior.hit_ids), np.int64)
    rows = index_of(hit_ids, np.asarray(ak.flatten(prior.hit_ids), np.int64))
    track = np.repeat(np.arange(len(counts)), counts)
    rows, track = rows[rows >= 0], track[rows >= 0]
    first = np.sort(np.unique(rows, return_index=True)[1])  # the hits are in track order
    rows, track = rows[first], track[first]
    bounds = np.searchsorted(track, np.arange(len(counts) + 1))
    return [np.sort(rows[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
