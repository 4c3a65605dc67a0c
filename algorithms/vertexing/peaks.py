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
"""

from __future__ import annotations

from dataclasses import dataclass

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
        value = float(h[t]) if score == "height" else float(np.sqrt(h[t] * max(integral, 0.0)))
        if hi - lo + 1 < min_width or integral < min_integral or integral <= 0 or value < threshold:
            continue
        zc = centres[lo : hi + 1]
        mean = float((w * zc).sum() / integral)
        spread = float(np.sqrt(max((w * (zc - mean) ** 2).sum() / integral, width**2 / 12)))
        out.append((mean, spread, integral, float(h[t]), int(t), value))
    if not out:
        empty = np.zeros(0)
        return Peaks(empty, empty, empty, empty, np.zeros(0, np.int64), empty)
    z, s, a, ht, b, v = (np.asarray(x) for x in zip(*out))
    return Peaks(z, s, a, ht, b.astype(np.int64), v)
