"""TrackFormer data sets, built from our simulated stores (numpy only; no torch here).

Each crossing of a store is read with ``HitReader`` on the pixel volumes (noise dropped), and
``draws`` independent reductions are taken from it: N particles chosen at random among those with
pixel hits (N uniform in ``[low, high]``, low-pT particles included — HitReader's
``tracks_per_event`` reduction), all their hits kept. Per hit: the features (x, y, z) in mm and
the targets of the particle that made it: theta, sin(phi), cos(phi), charge (EncReg), and its
momentum p in GeV (with the others, what EncCla's classes are made of). Every
random number comes from (seed, event id, draw), so a data set is remade exactly by its command.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recotrig.edm import Hits, HitTruth, Particles
from recotrig.edm.truth import hit_particles, trackml_weights
from recotrig.framework.lookup import index_of
from recotrig.io.hit_reader import HitReader

__all__ = ["FEATURES", "PIXEL_VOLUMES", "TARGETS", "Sample", "build", "load", "save", "targets_of"]

FEATURES = ["x", "y", "z"]
TARGETS = ["theta", "sin_phi", "cos_phi", "q"]
PIXEL_VOLUMES = [7, 8, 9]
FIELDS = ("features", "targets", "momentum", "hit_ids", "particle_ids", "weights")


@dataclass
class Sample:
    """One reduced event: hits (features), per-hit targets, hit ids, particle ids and TrackML weights."""

    features: np.ndarray  # (n, 3) float32, mm
    targets: np.ndarray  # (n, 4) float32
    momentum: np.ndarray  # (n,) float32, GeV
    hit_ids: np.ndarray  # (n,) int64
    particle_ids: np.ndarray  # (n,) int64
    weights: np.ndarray  # (n,) float64, official TrackML weights of the reduced event


def targets_of(hits: Hits, truth: HitTruth, particles: Particles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per hit: its particle id, [theta, sin phi, cos phi, q] and p of that particle."""
    pid = hit_particles(hits, truth)
    rows = index_of(np.asarray(particles.particle_id), pid)
    px, py, pz = (np.asarray(particles[c], np.float64)[rows] for c in ("px", "py", "pz"))
    phi = np.arctan2(py, px)
    theta = np.arctan2(np.hypot(px, py), pz)
    q = np.asarray(particles.q, np.float64)[rows]
    targets = np.stack([theta, np.sin(phi), np.cos(phi), q], axis=1).astype(np.float32)
    return pid, targets, np.sqrt(px**2 + py**2 + pz**2).astype(np.float32)


def build(store: str, *, low: int, high: int, draws: int, seed: int, max_events: int | None = None) -> list[Sample]:
    """Reduced events from ``store`` (see the module docstring)."""
    reader = HitReader(input=store, volumes=PIXEL_VOLUMES, drop_noise=True)
    n = reader.n_events() if max_events is None else min(max_events, reader.n_events())
    reader.prepare(0, n)
    out: list[Sample] = []
    for entry in range(n):
        hits, particles, truth, _ = reader.read(entry)
        event_id = reader.event_id(entry)
        pid, targets, momentum = targets_of(hits, truth, particles)
        candidates = np.unique(pid)
        for draw in range(draws):
            rng = np.random.default_rng([seed, event_id, draw])
            k = min(int(rng.integers(low, high + 1)), len(candidates))
            chosen = rng.choice(candidates, size=k, replace=False)
            keep = np.isin(pid, chosen)
            sub_hits, sub_truth = hits.select(keep), truth.select(keep)
            sub_particles = particles.select(np.isin(particles.particle_id, chosen))
            weights = trackml_weights(sub_particles, sub_truth, sub_hits)
            features = np.stack([np.asarray(sub_hits[c], np.float32) for c in FEATURES], axis=1)
            out.append(Sample(features, targets[keep], momentum[keep], np.asarray(sub_hits.hit_id), pid[keep], weights))
    return out


def save(samples: list[Sample], path: str | Path) -> None:
    counts = np.asarray([len(s.hit_ids) for s in samples], np.int64)
    np.savez_compressed(
        path,
        counts=counts,
        **{f: np.concatenate([getattr(s, f) for s in samples]) if samples else np.zeros(0) for f in FIELDS},
    )


def load(path: str | Path) -> list[Sample]:
    with np.load(path) as data:  # each array read once (an NpzFile decompresses on every access)
        missing = [f for f in FIELDS if f not in data]
        if missing:
            raise ValueError(f"{path}: a data set of an older format (no {missing}); remove it to rebuild it")
        arrays = {f: data[f] for f in ("counts", *FIELDS)}
    bounds = np.concatenate([[0], np.cumsum(arrays["counts"])])
    return [Sample(*(arrays[f][a:b] for f in FIELDS)) for a, b in itertools.pairwise(bounds)]
