"""Domain decomposition of an event into overlapping phi sectors (numpy only).

One attention window cannot hold a full crossing on a CPU, so an event is cut into ``n`` sectors
in the azimuth phi of the hits. Sector k's core is [c_k - pi/n, c_k + pi/n) around its centre c_k;
its window adds ``overlap`` rad on each side, so that a track bending out of its core still has
all its hits in one window (a 0.5 GeV track turns by about 0.1 rad across the pixel volumes). The
hits of a window are rotated by -c_k, so that every sector looks like the one at phi = 0 and one
model serves all of them. A track found in a window is kept only by the sector whose core holds
its mean phi; a hit claimed by two kept tracks stays with the longer one. ``n = 1`` is the whole
event with no rotation (the 10-50 models). The paper does not split events; its follow-up talk
names domain decomposition as the plan for full events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Sectors"]


@dataclass(frozen=True)
class Sectors:
    n: int = 1
    overlap: float = 0.0  # rad on each side of a core

    def __post_init__(self) -> None:
        if self.n < 1 or not 0.0 <= self.overlap < math.pi:
            raise ValueError(f"sectors: n must be >= 1 and overlap in [0, pi), got n={self.n}, overlap={self.overlap}")

    @property
    def centres(self) -> np.ndarray:
        return -math.pi + (np.arange(self.n) + 0.5) * (2 * math.pi / self.n)

    def windows(self, x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        """Per sector, the indices of the hits in its window."""
        if self.n == 1:
            return [np.arange(len(x))]
        phi = np.arctan2(y, x)
        half = math.pi / self.n + self.overlap
        return [np.flatnonzero(np.abs(_wrap(phi - c)) <= half) for c in self.centres]

    def owner(self, phi: np.ndarray) -> np.ndarray:
        """The sector whose core holds each phi."""
        return np.minimum(((np.asarray(phi) + math.pi) * (self.n / (2 * math.pi))).astype(np.int64), self.n - 1)

    def rotate(self, features: np.ndarray, k: int) -> np.ndarray:
        """(x, y, z) rows turned by -c_k about the beam line."""
        return self._turn(features, 0, 1, k)

    def rotate_targets(self, targets: np.ndarray, k: int) -> np.ndarray:
        """[theta, sin phi, cos phi, q] rows with phi -> phi - c_k: (cos phi, sin phi) turned like (x, y)."""
        return self._turn(targets, 2, 1, k)

    def _turn(self, rows: np.ndarray, i: int, j: int, k: int) -> np.ndarray:
        """A copy of ``rows`` with the vector (column i, column j) turned by -c_k."""
        if self.n == 1:
            return rows
        c, s = math.cos(self.centres[k]), math.sin(self.centres[k])
        out = rows.copy()
        out[:, i] = c * rows[:, i] + s * rows[:, j]
        out[:, j] = -s * rows[:, i] + c * rows[:, j]
        return out

    def merge(
        self, candidates: list[tuple[int, np.ndarray]], x: np.ndarray, y: np.ndarray, min_hits: int
    ) -> list[tuple[int, np.ndarray]]:
        """The tracks of all windows made one set: ``candidates`` are (sector, event hit indices);
        those whose mean phi lies in their own sector's core are kept, longest first, each losing
        the hits a longer one took; what keeps ``min_hits`` is returned as (sector, indices)."""
        if self.n == 1:
            return [(k, t) for k, t in candidates if len(t) >= min_hits]
        if not candidates:
            return []
        hits = np.concatenate([t for _, t in candidates])
        starts = np.cumsum([0] + [len(t) for _, t in candidates[:-1]])
        phi = np.arctan2(np.add.reduceat(y[hits], starts), np.add.reduceat(x[hits], starts))  # of each mean
        home = self.owner(phi) == np.asarray([k for k, _ in candidates])
        kept = [kt for kt, keep in zip(candidates, home) if keep]
        kept.sort(key=lambda kt: (-len(kt[1]), kt[0]))
        used = np.zeros(len(x), bool)
        out = []
        for k, t in kept:
            t = t[~used[t]]
            if len(t) >= min_hits:
                used[t] = True
                out.append((k, t))
        return out


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + math.pi) % (2 * math.pi) - math.pi
