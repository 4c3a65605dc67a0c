"""PV-Finder data sets, built from our simulated stores through the full chain (numpy; no torch).

``build`` runs one recotrig sequence over a simulated store —

    HitReader -> ActsCKF -> KDEBuilder -> TruthVertexTracks, ActsAMVF (Gaussian seeder)

— and writes the KDE, the truth vertices with their matched-track counts and promised z
resolution, and AMVF's vertices into ``<store>.pvdata.<binning>.root`` in the cache folder (``-j``
processes, output identical
for any number). ``load`` reads it back as arrays: the KDE features (events, 4, bins) and, per
event, the truth vertices (z, n_reconstructable, sigma_z_tracks) and AMVF's z positions.
Training, validation and evaluation therefore see full-chain CKF tracks only.

``targets`` makes PV-Finder's target histograms: per truth vertex with at least
``min_tracks`` matched tracks, a Gaussian of unit area centred at its z, of width the expected
resolution for its number of tracks (``resolution_curve``, fitted on the training set's own CKF
tracks), integrated over each bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CHANNELS", "Data", "build", "concat", "load", "resolution_curve", "targets"]

CHANNELS = ("kde_a", "kde_b", "xmax", "ymax")


@dataclass
class Data:
    """A data set: features (n, 4, bins) float32; per event truth z, n_reconstructable and
    sigma_z_tracks (lists of arrays); AMVF's vertex z per event; the bin centres."""

    features: np.ndarray
    truth_z: list[np.ndarray]
    truth_n: list[np.ndarray]
    truth_sigma: list[np.ndarray]
    amvf_z: list[np.ndarray]
    z: np.ndarray
    event_ids: np.ndarray


def sequence(store: str, output: str, binning: dict[str, float | int]) -> list:
    from recotrig.algorithms.acts.amvf import ActsAMVF
    from recotrig.algorithms.acts.ckf import ActsCKF
    from recotrig.algorithms.vertexing.kde_builder import KDEBuilder
    from recotrig.io.hit_reader import HitReader
    from recotrig.io.writers import StoreWriter
    from recotrig.sim.store import acts_options
    from recotrig.training.pvfinder.truth_tracks import TruthVertexTracks

    acts = acts_options(store)
    return [
        HitReader(input=store),
        ActsCKF(tracks="tracks_ckf", **acts),
        KDEBuilder(tracks="tracks_ckf", **binning),
        TruthVertexTracks(tracks="tracks_ckf"),
        ActsAMVF(tracks="tracks_ckf", vertices="vertices_amvf", **acts),
        StoreWriter(path=output, collections=["kde", "vertex_tracks", "vertices_amvf"]),
    ]


def build(store: str | Path, binning: dict[str, float | int], *, jobs: int = 2, events: int | None = None) -> Path:
    """The data file of ``store`` (made unless it exists), in the cache folder beside the
    simulated stores: ``<store>.pvdata.<binning>.root``."""
    from recotrig.framework import Sequencer
    from recotrig.framework.files import transaction
    from recotrig.models.registry import cache_dir

    store = Path(store)
    tag = f"z{binning['z_min']:g}_{binning['z_max']:g}_b{binning['bins']}" + (f"_n{events}" if events else "")
    output = cache_dir("pvfinder") / f"{store.stem}.pvdata.{tag}.root"
    output.parent.mkdir(parents=True, exist_ok=True)
    if not output.exists():
        with transaction():
            Sequencer(sequence(str(store), str(output), binning)).run(jobs=jobs, n_events=events, progress=False)
    return output


def load(path: str | Path) -> Data:
    from recotrig.io.store import open_store

    store = open_store(path)
    features, tz, tn, ts, az = [], [], [], [], []
    for event in store.read(collections=["kde", "vertex_tracks", "vertices_amvf"]):
        kde, truth, amvf = event["kde"], event["vertex_tracks"], event["vertices_amvf"]
        features.append(np.stack([np.asarray(kde[c], np.float32) for c in CHANNELS]))
        tz.append(np.asarray(truth.z, np.float64))
        tn.append(np.asarray(truth.n_reconstructable, np.int64))
        ts.append(np.asarray(truth.sigma_z_tracks, np.float64))
        az.append(np.asarray(amvf.z, np.float64))
        z = np.asarray(kde.z, np.float64)
    ids = np.asarray(store.event_ids)
    store.close()
    return Data(np.stack(features), tz, tn, ts, az, z, ids)


def concat(parts: list[Data]) -> Data:
    """One data set of several (the same binning)."""
    if len(parts) == 1:
        return parts[0]
    return Data(
        np.concatenate([p.features for p in parts]),
        [z for p in parts for z in p.truth_z],
        [n for p in parts for n in p.truth_n],
        [s for p in parts for s in p.truth_sigma],
        [z for p in parts for z in p.amvf_z],
        parts[0].z,
        np.concatenate([p.event_ids for p in parts]),
    )


def resolution_curve(data: Data, *, min_tracks: int = 2, max_tracks: int = 60) -> dict[str, float]:
    """sigma(n) = a * n^-b [mm]: a least-squares fit in log-log of the median promised z
    resolution of the truth vertices with n matched tracks, n in [min_tracks, max_tracks]."""
    n = np.concatenate(data.truth_n)
    s = np.concatenate(data.truth_sigma)
    ns, medians, weights = [], [], []
    for k in range(min_tracks, max_tracks + 1):
        chosen = (n == k) & np.isfinite(s)
        if chosen.sum() >= 5:
            ns.append(k)
            medians.append(np.median(s[chosen]))
            weights.append(math.sqrt(chosen.sum()))
    if len(ns) < 2:
        raise ValueError("too few truth vertices with matched tracks to fit the resolution curve")
    slope, intercept = np.polyfit(np.log(ns), np.log(medians), 1, w=weights)
    return {"a_mm": float(math.exp(intercept)), "b": float(-slope), "fitted_n": [int(ns[0]), int(ns[-1])]}


def resolution(curve: dict[str, float], n: np.ndarray, floor: float) -> np.ndarray:
    return np.maximum(curve["a_mm"] * np.maximum(np.asarray(n, np.float64), 1.0) ** -curve["b"], floor)


def targets(
    data: Data, curve: dict[str, float], *, min_tracks: int = 2, floor: float = 0.01, scale: float = 1.0
) -> np.ndarray:
    """Target histograms (n, bins) float32 (see the module docstring); ``scale`` multiplies the
    widths."""
    from scipy.special import erf

    width = float(data.z[1] - data.z[0])
    edges = np.append(data.z - width / 2, data.z[-1] + width / 2)
    out = np.zeros((len(data.truth_z), len(data.z)), np.float32)
    for i, (z, n) in enumerate(zip(data.truth_z, data.truth_n)):
        chosen = n >= min_tracks
        z, sigma = z[chosen], scale * resolution(curve, n[chosen], floor / scale)
        for zv, sv in zip(z, sigma):
            lo = np.searchsorted(edges, zv - 6 * sv) - 1
            hi = np.searchsorted(edges, zv + 6 * sv) + 1
            lo, hi = max(lo, 0), min(hi, len(edges) - 1)
            if hi <= lo:
                continue
            cdf = 0.5 * (1 + erf((edges[lo : hi + 1] - zv) / (sv * math.sqrt(2))))
            out[i, lo:hi] += np.diff(cdf).astype(np.float32)
    return out
