"""Truth utilities: the hit-to-particle lookup and the official TrackML hit weights.

Used by readers (weights for stores that carry none) and by metrics alike.
"""

from __future__ import annotations

import numpy as np

from recotrig.edm.tracker import Hits, HitTruth, Particles
from recotrig.framework.lookup import DuplicateIdError, group_starts, index_of

__all__ = ["NOISE_PARTICLE_ID", "TRACKML_ORDER_PROPOSAL", "hit_particles", "trackml_weights"]

#: particle id of noise hits in ``HitTruth`` (TrackML convention)
NOISE_PARTICLE_ID = 0

#: official TrackML order-weight proposal along a track, first hit to last (trackml/weights.py)
TRACKML_ORDER_PROPOSAL = (10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0)
_ORDER_MIN_HITS = 4
_ORDER_MAX_HITS = 20


def hit_particles(hits: Hits, truth: HitTruth) -> np.ndarray:
    """Particle id of each hit, in hits order; raises ``ValueError`` when a hit has no truth row
    or truth repeats a hit id."""
    try:
        rows = index_of(np.asarray(truth["hit_id"]), np.asarray(hits["hit_id"]))
    except DuplicateIdError as err:
        raise ValueError(f"HitTruth: column 'hit_id' has {err}") from None
    if (rows < 0).any():
        missing = np.asarray(hits["hit_id"])[rows < 0]
        raise ValueError(f"{len(missing)} hit(s) have no truth row, e.g. hit_id {missing[:5].tolist()}")
    return np.asarray(truth["particle_id"])[rows]


def _order_weights(nhits: int) -> np.ndarray:
    """Order weights of the hits of a particle with ``nhits`` hits (first to last), summing to 1:
    the proposal stretched linearly over the hits."""
    proposal = np.asarray(TRACKML_ORDER_PROPOSAL)
    supports = np.arange(len(proposal)) * (nhits - 1) / (len(proposal) - 1)
    w = np.interp(np.arange(nhits), supports, proposal)
    return w / w.sum()


def _pt_weight(pt: np.ndarray) -> np.ndarray:
    """0.2 up to pT = 0.5 GeV, rising linearly to 1 at 3 GeV and flat above; 0 below 0.05 GeV."""
    return np.interp(pt, [0.05, 0.5, 3.0], [0.2, 0.2, 1.0], left=0.0, right=1.0)


def _order_index(particle: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """0-based position of each hit along its particle, ranking by ``distance`` with ties given
    the mean position of the tie, rounded down (pandas ``rank()`` - 1, cast to int, as in the
    official code); hits with a NaN distance get 0."""
    index = np.zeros(len(particle), dtype=np.int64)
    ok = np.isfinite(distance)
    rows = np.flatnonzero(ok)
    order = rows[np.lexsort((distance[rows], particle[rows]))]
    p, d = particle[order], distance[order]
    particle_start = group_starts(p)
    position = np.arange(len(order)) - np.repeat(particle_start, np.diff(np.append(particle_start, len(order))))
    tie_start = group_starts(p, d)
    tie_len = np.diff(np.append(tie_start, len(order)))
    tie_mean = np.add.reduceat(position.astype(np.float64), tie_start) / tie_len if len(tie_start) else np.zeros(0)
    index[order] = np.floor(np.repeat(tie_mean, tie_len)).astype(np.int64)
    return index


def _true_z(truth: HitTruth, hits: Hits | None) -> np.ndarray:
    if "tz" in truth:
        return np.asarray(truth["tz"], dtype=np.float64)
    if hits is None:
        raise ValueError("trackml_weights: HitTruth has no 'tz' column; pass hits= to order hits by Hits.z")
    rows = index_of(np.asarray(hits["hit_id"], dtype=np.int64), np.asarray(truth["hit_id"], dtype=np.int64))
    if (rows < 0).any():
        raise ValueError(f"trackml_weights: {int((rows < 0).sum())} HitTruth.hit_id value(s) not in Hits.hit_id")
    return np.asarray(hits["z"], dtype=np.float64)[rows]


def trackml_weights(particles: Particles, truth: HitTruth, hits: Hits | None = None) -> np.ndarray:
    """Per-hit TrackML weights, one per ``truth`` row, normalised so that the event sums to 1.

    The official scheme (trackml-library ``trackml/weights.py``, ``weight_hits``; S. Amrouche et
    al., arXiv:1904.06778, section 3.2): weight = pT weight x order weight, then normalised.

    * pT weight of the hit's particle: 0.2 for 0.05 <= pT <= 0.5 GeV, rising linearly to 1.0 at
      pT = 3 GeV, 1.0 above; 0 below 0.05 GeV and for hits whose particle is not in
      ``particles`` (noise).
    * order weight: the hits of a particle are ordered by |z_hit - vz| (distance along the beam
      from the production vertex; true z ``HitTruth.tz``, or the measured ``Hits.z`` when truth
      has no ``tz``). The proposal (10, 8, 6, 5, 3, 3, 3, 5, 6) is stretched over the particle's
      nhits hits by linear interpolation and normalised to sum 1, so the first and last hits
      weigh most. Particles with fewer than 4 hits and noise (particle 0) get 0; particles with
      more than 20 hits use the 20-hit weights and their 21st and later hits get 0.

    An event whose weights are all zero returns zeros (the official code divides by zero).
    """
    particle = np.asarray(truth["particle_id"], dtype=np.int64)
    z = _true_z(truth, hits)
    try:
        row = index_of(np.asarray(particles["particle_id"], dtype=np.int64), particle)
    except DuplicateIdError as err:
        raise ValueError(f"Particles: column 'particle_id' has {err}") from None
    known = row >= 0
    row = np.where(known, row, 0)
    pid_count = len(particles)

    pt = np.hypot(np.asarray(particles["px"], np.float64), np.asarray(particles["py"], np.float64))
    w_pt = np.where(known, _pt_weight(pt[row]) if pid_count else 0.0, 0.0)
    vz = np.where(known, np.asarray(particles["vz"], np.float64)[row] if pid_count else np.nan, np.nan)

    _ids, inverse, counts = np.unique(particle, return_inverse=True, return_counts=True)
    nhits = counts[inverse]
    nhits[particle == NOISE_PARTICLE_ID] = 0
    ihit = _order_index(particle, np.abs(z - vz))
    w_order = _order_weight_lookup(nhits, ihit)

    w = w_pt * w_order
    total = w.sum()
    return w / total if total > 0 else np.zeros(len(w))


def _order_weight_lookup(nhits: np.ndarray, ihit: np.ndarray) -> np.ndarray:
    table = np.zeros((_ORDER_MAX_HITS + 1, _ORDER_MAX_HITS))
    for n in range(_ORDER_MIN_HITS, _ORDER_MAX_HITS + 1):
        table[n, :n] = _order_weights(n)
    n = np.minimum(nhits, _ORDER_MAX_HITS)
    usable = (nhits >= _ORDER_MIN_HITS) & (ihit < _ORDER_MAX_HITS) & (ihit >= 0)
    out = np.zeros(len(nhits))
    out[usable] = table[n[usable], ihit[usable]]
    return out
