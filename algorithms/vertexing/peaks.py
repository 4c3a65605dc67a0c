"""The peak finder of PV-Finder: vertices from a predicted vertex-density histogram.

Peaks are the local maxima of the histogram whose prominence is at least ``min_prominence`` times
their height (``scipy.signal.find_peaks``); neighbouring peaks are separated at the lowest bin
between them. A peak's extent is the run of bins around its maximum that stay above
``edge_fraction`` of its height, within those separations; it must be at least ``min_width`` bins
wide and hold at least ``min_integral`` (the sum of the histogram over the extent; a target
Gaussian has area 1). A peak is kept when its ``score`` is at least ``threshold``; the score is
its ``height`` (``score="height"``) or ``"height_area"``, the geometric mean sqrt(height x
integral) of its height and area. A real vertex makes a tall peak of area near 1; what is left
over is a narrow spike (tall, little area) or a broad swell (area, little height), and the
geometric mean ranks both below vertices where either alone lets one of them through (the
threshold scan's low false-positive end: docs/models/pvfinder.md). The vertex z is the
histogram-weighted mean of the bin centres over the extent, sigma_z the weighted standard
deviation (at least bin / sqrt(12)).

The network is trained to put a unit area per vertex, so a peak's area counts the vertices in it:
with ``vertex_area`` > 0 a peak of integral I is round(I / vertex_area) vertices (at least one),
its mass cut in z into that many equal parts (a bin on a cut shared between two), each a peak of
its own: its z, spread, integral, height (its tallest bin's share) and score are those of its part
of the histogram, and the threshold and minimum integral apply to it. Two vertices closer than the
network can separate make one peak of about twice the area (docs/models/pvfinder.md); a peak
narrower than ``split_spread`` (its weighted standard deviation, mm) is not split: a vertex of many
tracks makes a narrow peak that may hold more than its area. ``vertex_area=0`` (the default)
never splits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.signal import find_peaks as _scipy_find_peaks

__all__ = ["SCORES", "Peaks", "find_peaks"]

#: what a peak's score is (its ``threshold`` applies to it)
SCORES = ("height", "height_area")


@dataclass
class Peaks:
    z: np.ndarray
    sigma_z: np.ndarray
    integral: np.ndarray
    height: np.ndarray
    bin: np.ndarray  # bin of the maximum
    score: np.ndarray  # what ``threshold`` was applied to (the module docstring)

    def take(self, index: np.ndarray) -> Peaks:
        """The peaks at ``index`` (a mask or positions), in its order."""
        return Peaks(*(getattr(self, f.name)[index] for f in fields(self)))

    def join(self, other: Peaks) -> Peaks:
        """These peaks and ``other``'s, in z."""
        both = Peaks(*(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)))
        return both.take(np.argsort(both.z, kind="stable"))


def _moments(w: np.ndarray, zc: np.ndarray, total: float) -> tuple[float, float]:
    """Weighted mean and variance of the bin centres ``zc``, ``total`` = sum of ``w``."""
    mean = float((w * zc).sum() / total)
    return mean, float((w * (zc - mean) ** 2).sum() / total)


def find_peaks(
    hist: np.ndarray,
    centres: np.ndarray,
    *,
    threshold: float,
    min_prominence: float = 0.25,
    edge_fraction: float = 0.05,
    min_width: int = 1,
    min_integral: float = 0.0,
    score: str = "height",
    vertex_area: float = 0.0,
    split_spread: float = 0.0,
) -> Peaks:
    if score not in SCORES:
        raise ValueError(f"peak score {score!r} is not one of {SCORES}")
    h = np.asarray(hist, np.float64)
    centres = np.asarray(centres, np.float64)
    width = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
    padded = np.concatenate([[0.0], h, [0.0]])  # maxima at the ends count
    # by height, only maxima that tall are looked at; by height x area every maximum is, so that the
    # separations between peaks, and the peaks kept at a threshold, are those of any lower one with
    # the lower scores left out (each step of a threshold scan keeps a subset of its floor's peaks)
    top, props = _scipy_find_peaks(padded, height=threshold if score == "height" else 0.0, prominence=0.0)
    top = top - 1
    keep = props["prominences"] >= min_prominence * h[top]
    top = top[keep]
    out: list[tuple[float, float, float, float, int, float]] = []
    for i, t in enumerate(top):
        left_limit = 0 if i == 0 else top[i - 1] + int(np.argmin(h[top[i - 1] : t + 1]))
        right_limit = len(h) - 1 if i == len(top) - 1 else t + int(np.argmin(h[t : top[i + 1] + 1]))
        edge = edge_fraction * h[t]
        lo = t
        while lo > left_limit and h[lo - 1] > edge:
            lo -= 1
        hi = t
        while hi < right_limit and h[hi + 1] > edge:
            hi += 1
        if i > 0 and lo == left_limit and left_limit != 0:
            lo += 1  # the separating bin goes to neither side
        w = h[lo : hi + 1]
        integral = float(w.sum())
        if hi - lo + 1 < min_width or integral <= 0:
            continue
        zc = centres[lo : hi + 1]
        parts = max(1, int(np.floor(integral / vertex_area + 0.5))) if vertex_area > 0 else 1
        if parts > 1 and np.sqrt(_moments(w, zc, integral)[1]) < split_spread:  # only a peak wider than that
            parts = 1
        # part j of the peak: the histogram's mass between j and j + 1 parts of its area, along z
        cum = np.cumsum(w) * (parts / integral)
        before = cum - w * (parts / integral)
        for j in range(parts):
            wj = (
                w
                if parts == 1
                else np.clip(np.minimum(cum, j + 1) - np.maximum(before, j), 0.0, None) * (integral / parts)
            )
            area, top_bin = float(wj.sum()), int(np.argmax(wj))
            value = float(wj[top_bin]) if score == "height" else float(np.sqrt(wj[top_bin] * area))
            if area < min_integral or value < threshold:
                continue
            mean, var = _moments(wj, zc, area)
            out.append((mean, float(np.sqrt(max(var, width**2 / 12))), area, float(wj[top_bin]), lo + top_bin, value))
    if not out:
        empty = np.zeros(0)
        return Peaks(empty, empty, empty, empty, np.zeros(0, np.int64), empty)
    z, s, a, ht, b, v = (np.asarray(x) for x in zip(*out))
    return Peaks(z, s, a, ht, b.astype(np.int64), v)
