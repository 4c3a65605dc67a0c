"""Track-to-vertex compatibility and soft assignment, shared by the vertex finders (``ActsAMVF``
recomputes AMVF's final weights with it; ``PVFinder`` assigns its tracks with it)."""

from __future__ import annotations

import numpy as np

from recotrig.edm import Tracks

__all__ = ["ANNEALING_CUTOFF", "annealed_weights", "impact_chi2"]

#: AMVF's deterministic annealing ends at temperature 1 with a chi2 cut-off of 9 (ACTS defaults)
ANNEALING_CUTOFF = 9.0


def impact_chi2(
    tracks: Tracks, rows: np.ndarray, vertices: np.ndarray, vertex_var_z: np.ndarray | None = None
) -> np.ndarray:
    """(n_vertices, n_rows) chi2 of each track's transverse and longitudinal impact parameters
    with respect to each vertex position, from the perigee parameters at the origin moved to the
    vertex to first order (straight line over the vertex's transverse offset) and the track's
    (d0, z0) covariance. ``vertex_var_z`` (mm^2, one per vertex) adds the vertex's z variance to
    the track's z0 variance; without it the vertex position uncertainty is neglected."""
    d0, z0, phi, theta = (np.asarray(tracks[c], dtype=float)[rows] for c in ("d0", "z0", "phi", "theta"))
    cov = np.asarray(tracks.cov, dtype=float)[rows][:, :2, :2]
    if len(vertices) == 0 or len(rows) == 0:
        return np.zeros((len(vertices), len(rows)))
    vx, vy, vz = (vertices[:, k][:, None] for k in range(3))
    cphi, sphi, cot = np.cos(phi)[None], np.sin(phi)[None], (1.0 / np.tan(theta))[None]
    dd = d0[None] - (vy * cphi - vx * sphi)
    dz = z0[None] - vz + (vx * cphi + vy * sphi) * cot
    c00, c01 = cov[None, :, 0, 0], cov[None, :, 0, 1]
    c11 = cov[None, :, 1, 1] + (0.0 if vertex_var_z is None else np.asarray(vertex_var_z, float)[:, None])
    det = c00 * c11 - c01**2
    return (dd**2 * c11 + dz**2 * c00 - 2 * dd * dz * c01) / det


def annealed_weights(chi2: np.ndarray, *, cutoff: float = ANNEALING_CUTOFF, temperature: float = 1.0) -> np.ndarray:
    """AMVF's soft assignment: w_ij = exp(-chi2_ij/2T) / (sum_k exp(-chi2_kj/2T) + exp(-cutoff/2T))."""
    if chi2.size == 0:
        return np.zeros_like(chi2)
    scaled = -0.5 * chi2 / temperature
    shift = np.maximum(scaled.max(axis=0, keepdims=True), -0.5 * cutoff / temperature)
    numerator = np.exp(scaled - shift)
    denominator = numerator.sum(axis=0, keepdims=True) + np.exp(-0.5 * cutoff / temperature - shift)
    return numerator / denominator
