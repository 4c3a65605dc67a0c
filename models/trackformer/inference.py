"""A TrackFormer model applied to one event's hits (numpy, numba, onnxruntime and scikit-learn; no torch):
what TrackFormerFinder runs and what training tunes and scores with, so both go the same way.

The hits are cut into the card's sectors (``sectors.py``), each window rotated and normalised;
each window goes through ONNX Runtime on its own (no padding), except the small windows of the
later passes, which go together (padded, with the same outputs); each window's prediction
becomes track candidates (EncReg: HDBSCAN; EncCla: the hits of a class, or of classes linked by
their top-k posteriors, ``tracks.linked``), and the sectors' tracks are merged. Where the card
gives ``clustering.helix``, the candidates are then split where they hold more than one helix and
merged where two hold one (``helices.refine``). Where it gives ``clustering.passes``, the finding
is iterative: the tracks of at least ``passes[0]`` hits are kept, the model runs again on the hits
they leave, and so on; the hits of a dense event are fewer at each pass, and fewer hits in a window
are what the model resolves best. EncCla also gives, per hit of a track, the top-k classes and
their probabilities.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recotrig.models.cards import TrackFormerCard, parse_card
from recotrig.models.runtime import Session
from recotrig.models.trackformer.helices import refine
from recotrig.models.trackformer.sectors import Sectors
from recotrig.models.trackformer.tracks import cluster, linked

__all__ = ["Finder", "Found", "Prediction", "unused", "warm_up"]

#: windows of at most this many hits are run together, padded, in one ONNX Runtime call (``Finder.predict``)
SMALL_WINDOW = 48


@dataclass
class Prediction:
    """The model's output on an event: per non-empty window, its sector, its hit indices (sorted)
    and the ONNX outputs."""

    sectors: list[int]
    windows: list[np.ndarray]
    outputs: list[dict[str, np.ndarray]]


@dataclass
class Found:
    """Tracks as index arrays into the event's hits; for EncCla, per track and hit the top-k
    classes (k, int64) and probabilities (k, float32) the track's window gave."""

    tracks: list[np.ndarray]
    classes: list[np.ndarray] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)

    def taken(self, rows: list[int], hits: np.ndarray) -> Found:
        """Tracks ``rows`` of this set, found among the event's ``hits`` (their indices there)."""
        return Found(
            [hits[self.tracks[i]] for i in rows],
            [self.classes[i] for i in rows] if self.classes else [],
            [self.probabilities[i] for i in rows] if self.probabilities else [],
        )


def unused(n: int, tracks: list[np.ndarray]) -> np.ndarray:
    """The indices in ``range(n)`` of the hits that none of ``tracks`` (index arrays) holds."""
    used = np.zeros(n, bool)
    used[np.concatenate(tracks or [np.zeros(0, np.int64)])] = True
    return np.flatnonzero(~used)


def params_of(card: TrackFormerCard | dict[str, Any]) -> dict[str, Any]:
    """The card's tuned track-building parameters (a typed card, or the raw dict a training
    writes); an EncReg card without ``weights`` (the scales of the predicted [theta, sin phi, cos
    phi, q] in the clustering) gets 1 for each; an EncCla card without ``link_overlap`` (made
    before classes were linked) gets 0: the hits of each top-1 class are a track. ``helix``: the
    tolerances of ``helices.refine`` (xy_mm, rz_mm, min_hits), None (no refinement) where the card
    has none. ``passes``: the smallest track each pass but the last keeps (``Finder.assemble``),
    empty (one pass) where the card has none. ``ValueError`` for a missing or unusable parameter."""
    if isinstance(card, TrackFormerCard):
        clustering, kind = card.clustering, card.kind
    else:
        clustering, kind = card.get("clustering"), card.get("kind")
    try:
        if kind == "encreg":
            params = {k: int(clustering[k]) for k in ("min_cluster_size", "min_samples")}
            weights = clustering.get("weights")  # cards tuned before the weights had none: all 1
            params["weights"] = [1.0] * 4 if weights is None else [float(w) for w in weights]
            if len(params["weights"]) != 4 or not all(0.0 <= w < math.inf for w in params["weights"]):
                raise ValueError(f"the card's clustering weights {weights!r} are not 4 finite numbers >= 0")
        else:
            params = {
                "min_hits": int(clustering["min_hits"]),
                "link_overlap": float(clustering.get("link_overlap") or 0),
            }
        helix = clustering.get("helix")
        params["helix"] = None if helix is None else _helix(helix)
        params["passes"] = clustering.get("passes") or []
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"the card's clustering {clustering!r} lacks or mistypes a parameter ({err})") from None
    if not 0.0 <= params.get("link_overlap", 0.0) <= 1.0:
        raise ValueError(f"the card's clustering link_overlap {params['link_overlap']} is not in [0, 1]")
    passes = params["passes"]
    if not isinstance(passes, list) or not all(type(n) is int and n >= 1 for n in passes):
        raise ValueError(
            f"the card's clustering passes {passes!r} are not a list of whole numbers >= 1 (the smallest "
            "track each pass keeps)"
        )
    return params


def _helix(helix: dict[str, Any]) -> dict[str, Any]:
    """``helices.refine``'s tolerances from a card: positive distances in mm, min_hits >= 1."""
    out = {"xy_mm": float(helix["xy_mm"]), "rz_mm": float(helix["rz_mm"]), "min_hits": int(helix["min_hits"])}
    if not (0.0 < out["xy_mm"] < math.inf and 0.0 < out["rz_mm"] < math.inf and out["min_hits"] >= 1):
        raise ValueError(f"helix {helix!r}: the distances must be positive and finite, min_hits >= 1")
    return out


def warm_up() -> None:
    """The track building's compiled loops loaded (``compiled``: the first call in a process loads
    their machine code, about half a second), so that the first event does not pay for it: a
    clustering, and a refinement that fits, splits and merges, on a few made-up hits."""
    cluster(np.arange(24.0).reshape(6, 4) % 5, min_cluster_size=2, min_samples=1)
    angle = np.r_[0.1, 0.1, 0.1, 0.1, 2.0, 2.0, 2.0, 2.0]
    radius, z = np.tile([30.0, 70.0, 110.0, 170.0], 2), np.r_[1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0]
    hits = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), z]).astype(np.float32)
    refine(hits, [np.arange(8), np.arange(4, 6), np.arange(6, 8)], xy_mm=1.0, rz_mm=1.0, min_hits=2)


class Finder:
    def __init__(self, session: Session, card: TrackFormerCard | dict[str, Any], *, sectors: int = 0):
        if not isinstance(card, TrackFormerCard):  # a card a training just wrote, as a dict
            card = parse_card(card)
            if not isinstance(card, TrackFormerCard):
                raise ValueError(f"a {card.family} card, not a trackformer card")
        self.session = session
        self.kind = card.kind
        self.mean = np.asarray(card.normalisation.features_mean, np.float32)
        self.std = np.asarray(card.normalisation.features_std, np.float32)
        self.sectors = Sectors(n=sectors or card.sectors.n, overlap=card.sectors.overlap)
        self.max_hits = card.max_hits

    def with_overlap(self, overlap: float) -> Finder:
        """The same model and session, its windows ``overlap`` rad wide on each side of their core."""
        other = copy.copy(self)
        other.sectors = Sectors(n=self.sectors.n, overlap=overlap)
        return other

    def predict(self, features: np.ndarray) -> Prediction:
        """``features`` (n, 3) float32 in mm (n may be 0); ``ValueError`` when a window exceeds the
        card's max_hits."""
        sector_of, windows = [], []
        for k, w in enumerate(self.sectors.windows(features[:, 0], features[:, 1])):
            if len(w):
                sector_of.append(k)
                windows.append(w)
        if not windows:
            return Prediction([], [], [])
        longest = max(len(w) for w in windows)
        if longest > self.max_hits:
            raise ValueError(
                f"{longest} hits in one window exceed the {self.max_hits} the model takes (its card's "
                f"max_hits; {self.sectors.n} sector(s)): use more sectors or reduce the event"
            )
        # one ONNX Runtime call per window, unpadded: a batch padded to its longest window spends
        # the attention's n^2 on padding (the windows of a 300-track event hold 170 to 410 hits;
        # one padded batch took twice the time of the twelve calls) and holds all their attention
        # matrices at once. Windows of at most SMALL_WINDOW hits (the later passes') go in one
        # padded call: there the call costs more than the arithmetic. A padding key's weight is
        # e^-SCORE_SPAN of its row's largest, below float32's rounding of the sums: the outputs
        # are those of the unpadded calls, bit for bit (tests/test_trackformer_passes.py)
        small = [i for i, w in enumerate(windows) if len(w) <= SMALL_WINDOW]
        calls = [[i] for i, w in enumerate(windows) if len(w) > SMALL_WINDOW] + ([small] if small else [])
        outputs: list[dict[str, np.ndarray]] = [{} for _ in windows]
        for call in calls:
            for i, out in zip(call, self._run(features, [windows[i] for i in call], [sector_of[i] for i in call])):
                outputs[i] = out
        return Prediction(sector_of, windows, outputs)

    def _run(self, features: np.ndarray, windows: list[np.ndarray], sectors: list[int]) -> list[dict[str, np.ndarray]]:
        """The ONNX outputs of windows (each rotated and normalised) in one call, padded to the
        longest."""
        longest = max(len(w) for w in windows)
        x = np.zeros((len(windows), longest, features.shape[1]), np.float32)
        mask = np.zeros((len(windows), longest), np.float32)
        for i, (w, k) in enumerate(zip(windows, sectors)):
            x[i, : len(w)] = (self.sectors.rotate(features[w], k) - self.mean) / self.std
            mask[i, : len(w)] = 1.0
        out = self.session.run(hits=x, mask=mask)
        return [{k: v[i, : len(w)] for k, v in out.items()} for i, w in enumerate(windows)]

    def assemble(self, features: np.ndarray, prediction: Prediction, params: dict[str, Any]) -> Found:
        """The event's tracks from the model's ``prediction`` on all its hits. With ``params["passes"]``
        (iterative finding) the tracks of at least ``passes[0]`` hits are kept, the model predicts
        again on the hits left and the tracks of at least ``passes[1]`` hits among them are kept,
        and so on; the last pass keeps all its tracks. Tracks in the order of their first hit."""
        found = self._found(features, prediction, params)
        left = np.arange(len(features))
        kept = []
        for least in params.get("passes") or ():
            rows = [i for i, t in enumerate(found.tracks) if len(t) >= least]
            kept.append(found.taken(rows, left))
            left = unused(len(features), [t for f in kept for t in f.tracks])
            if not len(left):
                found = Found([])
                break
            found = self._found(features[left], self.predict(features[left]), params)
        kept.append(found.taken(list(range(len(found.tracks))), left))
        tracks = [t for f in kept for t in f.tracks]
        order = sorted(range(len(tracks)), key=lambda i: int(tracks[i][0]))
        out = Found([tracks[i] for i in order])
        if self.kind == "enccla":
            classes = [c for f in kept for c in f.classes]
            probabilities = [p for f in kept for p in f.probabilities]
            out.classes, out.probabilities = [classes[i] for i in order], [probabilities[i] for i in order]
        return out

    def _found(self, features: np.ndarray, prediction: Prediction, params: dict[str, Any]) -> Found:
        """One pass: track candidates per window, merged across sectors (refined by their helices)."""
        candidates = []
        for k, w, out in zip(prediction.sectors, prediction.windows, prediction.outputs):
            if self.kind == "encreg":
                local = cluster(
                    out["output"],
                    min_cluster_size=params["min_cluster_size"],
                    min_samples=params["min_samples"],
                    weights=params.get("weights"),
                )
            else:
                local = linked(out["classes"], out["probabilities"], overlap=params.get("link_overlap"))
            candidates += [(k, w[t]) for t in local]
        min_hits = params.get("min_hits", params.get("min_cluster_size", 1))
        helix = params.get("helix")
        # with the helix refinement, EncCla's smallest track (min_hits) is cut after it, since a
        # fragment may complete a track; the pieces of a cut HDBSCAN cluster may be smaller than it
        merged = self.sectors.merge(candidates, features[:, 0], features[:, 1], min_hits=1 if helix else min_hits)
        tracks = [np.sort(t) for _, t in merged]
        if helix:
            tracks = [t for t in refine(features, tracks, **helix) if len(t) >= params.get("min_hits", 1)]
        tracks.sort(key=lambda t: int(t[0]))
        found = Found(tracks)
        if self.kind == "enccla":  # per hit, the top-k of the window whose track kept it
            window_of = {k: i for i, k in enumerate(prediction.sectors)}
            k_top = prediction.outputs[0]["classes"].shape[1] if prediction.outputs else 0
            classes = np.zeros((len(features), k_top), np.int64)
            probabilities = np.zeros((len(features), k_top), np.float32)
            for k, t in merged:
                i = window_of[k]
                rows = np.searchsorted(prediction.windows[i], t)  # windows hold sorted event indices
                classes[t] = prediction.outputs[i]["classes"][rows]
                probabilities[t] = prediction.outputs[i]["probabilities"][rows]
            found.classes = [classes[t] for t in tracks]
            found.probabilities = [probabilities[t] for t in tracks]
        return found

    def __call__(self, features: np.ndarray, params: dict[str, Any]) -> Found:
        return self.assemble(features, self.predict(features), params)
