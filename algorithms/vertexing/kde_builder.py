"""KDEBuilder: kernel density estimates of fitted tracks along the beam line (PV-Finder's input).

Each track is a Gaussian in its impact parameters: at a point (x, y, z) near the beam line the
track's (d0, z0) residuals, moved there to first order (as ``impact_chi2``), are

    r1 = d0 + x sin(phi) - y cos(phi),    r2 = z0 - z + (x cos(phi) + y sin(phi)) cot(theta)

and its probability density is p = exp(-r^T C^-1 r / 2) / (2 pi sqrt(det C)) [mm^-2], with C the
track's (d0, z0) covariance: the POCA ellipsoid, flat along the track's own direction. Per z bin
(bin centre z):

* ``xmax``, ``ymax``: where the sum of the track densities peaks in (x, y) at that z, found by
  ``xy_iterations`` fixed-point (mean-shift) steps from the beam spot. The step solves the
  stationarity condition of a sum of Gaussians, X = -(sum p J^T W J)^-1 sum p J^T W a, with a
  weak pull towards the beam spot (weight sum p / xy_pull_sigma^2) that keeps it defined where
  the tracks constrain one direction only.
* ``kde_a`` = sum of p over tracks at (xmax, ymax, z); ``kde_b`` = sum of p^2 there.

A track contributes to the bins within ``n_sigma`` of its z0 (its sqrt(C_z0z0)), at least the bin
holding z0. Tracks with non-finite parameters or a (d0, z0) covariance that is not positive
definite are skipped; tracks with z0 outside [z_min, z_max) are left out; both are counted in the
second output, ``TrackUse`` (one status per input track), which ``PVFinder`` uses too.
"""

from __future__ import annotations

import numpy as np

from recotrig.edm import KDE, FittedTracks, TrackUse
from recotrig.framework import ConfigError, Option
from recotrig.framework.algorithm import Algorithm

__all__ = ["KDEBuilder", "build_kde", "usable_tracks"]


def usable_tracks(tracks: FittedTracks, z_min: float, z_max: float) -> np.ndarray:
    """Per track its ``TrackUse`` status (0 used, 1 bad parameters/covariance, 2 outside z range)."""
    d0, z0, phi, theta = (np.asarray(tracks[c], np.float64) for c in ("d0", "z0", "phi", "theta"))
    cov = np.asarray(tracks.cov, np.float64).reshape(len(tracks), 6, 6)[:, :2, :2]
    finite = np.isfinite(d0) & np.isfinite(z0) & np.isfinite(phi) & np.isfinite(theta)
    finite &= np.isfinite(cov).all(axis=(1, 2)) & (np.sin(theta) > 1e-6)
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]
    good = finite & (cov[:, 0, 0] > 0) & (det > 0)
    status = np.where(good, TrackUse.USED, TrackUse.BAD).astype(np.int8)
    outside = good & ((z0 < z_min) | (z0 >= z_max))
    status[outside] = TrackUse.OUTSIDE
    return status


def build_kde(
    tracks: FittedTracks,
    use: np.ndarray,
    *,
    z_min: float,
    z_max: float,
    bins: int,
    n_sigma: float = 4.0,
    beam: tuple[float, float] = (0.0, 0.0),
    xy_pull_sigma: float = 0.1,
    xy_iterations: int = 2,
) -> dict[str, np.ndarray]:
    """The KDE columns (z, kde_a, kde_b, xmax, ymax) of the tracks with ``use`` status 0."""
    width = (z_max - z_min) / bins
    centres = z_min + (np.arange(bins) + 0.5) * width
    rows = np.flatnonzero(use == TrackUse.USED)
    d0, z0, phi, theta = (np.asarray(tracks[c], np.float64)[rows] for c in ("d0", "z0", "phi", "theta"))
    cov = np.asarray(tracks.cov, np.float64).reshape(len(tracks), 6, 6)[rows, :2, :2]
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    w00, w11, w01 = cov[:, 1, 1] / det, cov[:, 0, 0] / det, -cov[:, 0, 1] / det
    norm = 1.0 / (2 * np.pi * np.sqrt(det))
    s, c, k = np.sin(phi), np.cos(phi), np.cos(theta) / np.sin(theta)
    # J = d r / d(x, y): rows (s, -c) and (c k, s k);  M = J^T W J, A = J^T W (per track)
    j = np.stack([np.stack([s, -c], -1), np.stack([c * k, s * k], -1)], 1)  # (m, 2, 2)
    wm = np.stack([np.stack([w00, w01], -1), np.stack([w01, w11], -1)], 1)
    a_mat = np.einsum("mji,mjk->mik", j, wm)  # J^T W
    m_mat = np.einsum("mij,mjk->mik", a_mat, j)  # J^T W J

    # (track, bin) pairs: the bins within n_sigma of z0
    half = n_sigma * np.sqrt(cov[:, 1, 1])
    first = np.clip(np.floor((z0 - half - z_min) / width), 0, bins - 1).astype(np.int64)
    last = np.clip(np.floor((z0 + half - z_min) / width), 0, bins - 1).astype(np.int64)
    counts = last - first + 1
    track = np.repeat(np.arange(len(rows)), counts)
    starts = np.cumsum(counts) - counts
    b = first[track] + (np.arange(len(track)) - starts[track])
    dz = z0[track] - centres[b]  # r2 at the beam line's origin

    x = np.full(bins, float(beam[0]))
    y = np.full(bins, float(beam[1]))

    def density(x_at: np.ndarray, y_at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xb, yb = x_at[b], y_at[b]
        r1 = d0[track] + s[track] * xb - c[track] * yb
        r2 = dz + k[track] * (c[track] * xb + s[track] * yb)
        chi2 = w00[track] * r1 * r1 + 2 * w01[track] * r1 * r2 + w11[track] * r2 * r2
        return norm[track] * np.exp(-0.5 * chi2), r1, r2

    prior = 1.0 / xy_pull_sigma**2
    for _ in range(xy_iterations):
        p, _, _ = density(x, y)
        total = np.bincount(b, p, bins)
        # residual at X = 0 is a = (d0, dz); X_new = (sum p M + lam)^-1 (lam X_bs - sum p A a)
        h = [
            np.bincount(b, p * m_mat[track, i, jj], bins) + total * prior * (i == jj)
            for i, jj in ((0, 0), (0, 1), (1, 1))
        ]
        g = [
            -np.bincount(b, p * (a_mat[track, i, 0] * d0[track] + a_mat[track, i, 1] * dz), bins)
            + total * prior * beam[i]
            for i in (0, 1)
        ]
        hdet = h[0] * h[2] - h[1] ** 2
        ok = (total > 0) & (hdet > 0)
        safe = np.where(ok, hdet, 1.0)
        x = np.where(ok, (h[2] * g[0] - h[1] * g[1]) / safe, beam[0])
        y = np.where(ok, (h[0] * g[1] - h[1] * g[0]) / safe, beam[1])
    p, _, _ = density(x, y)
    return {
        "z": centres.astype(np.float32),
        "kde_a": np.bincount(b, p, bins).astype(np.float32),
        "kde_b": np.bincount(b, p * p, bins).astype(np.float32),
        "xmax": x.astype(np.float32),
        "ymax": y.astype(np.float32),
    }


class KDEBuilder(Algorithm):
    """Builds PV-Finder's KDE (kde_a, kde_b, xmax, ymax per z bin) from fitted tracks; see the
    module docstring for the definitions. Output ``kde`` (``KDE``, one row per bin) and
    ``kde_tracks`` (``TrackUse``: per input track, used, skipped as bad, or outside the range)."""

    outputs = ("kde", "kde_tracks")

    z_min = Option(-200.0, "lower edge of the z range [mm] (beam spot sigma_z = 45 mm: 4.4 sigma)")
    z_max = Option(200.0, "upper edge of the z range [mm]")
    bins = Option(4000, "number of z bins (default 100 um wide)", low=10, high=1_000_000)
    n_sigma = Option(4.0, "a track fills the bins within this many sigma(z0) of its z0", low=0.5, high=20.0)
    beam_x = Option(0.0, "beam spot x [mm]")
    beam_y = Option(0.0, "beam spot y [mm]")
    xy_pull_sigma = Option(
        0.1,
        "width [mm] of the (x, y) search's Gaussian pull towards the beam spot (keeps it "
        "defined where the tracks constrain one direction only)",
        low=1e-6,
    )
    xy_iterations = Option(
        2, "fixed-point steps of the (x, y) maximum search per z bin (0: at the beam spot)", low=0, high=20
    )

    def initialize(self) -> None:
        if not self.z_max > self.z_min:
            raise ConfigError(f"{self.name}: z_max ({self.z_max}) must be above z_min ({self.z_min})")

    @property
    def binning(self) -> dict[str, float | int]:
        """The z binning, as a model card records it."""
        return {"z_min": self.z_min, "z_max": self.z_max, "bins": self.bins}

    def execute(self, tracks: FittedTracks) -> tuple[KDE, TrackUse]:
        use = usable_tracks(tracks, self.z_min, self.z_max)
        columns = build_kde(
            tracks,
            use,
            z_min=self.z_min,
            z_max=self.z_max,
            bins=self.bins,
            n_sigma=self.n_sigma,
            beam=(self.beam_x, self.beam_y),
            xy_pull_sigma=self.xy_pull_sigma,
            xy_iterations=self.xy_iterations,
        )
        return KDE(**columns), TrackUse(status=use)
