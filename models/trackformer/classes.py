"""EncCla's track classes (numpy only): quantile bins of the particle's phi, theta and p, and its
charge (TrackFormers, section 3.3.2: bins holding about equal numbers of hits; 30 x 30 x 3 x 2 =
5,400 classes at 200-500 tracks). The interior bin edges come from the training hits and ship in
the card; a class id is ((i_phi * n_theta + i_theta) * n_p + i_p) * 2 + (q > 0)."""

from __future__ import annotations

import numpy as np

__all__ = ["BINS", "count", "edges", "labels"]

BINS = {"phi": 30, "theta": 30, "p": 3}


def _values(targets: np.ndarray, momentum: np.ndarray) -> dict[str, np.ndarray]:
    return {"phi": np.arctan2(targets[:, 1], targets[:, 2]), "theta": targets[:, 0], "p": momentum}


def edges(targets: np.ndarray, momentum: np.ndarray, bins: dict[str, int]) -> dict[str, list[float]]:
    """Interior quantile edges per parameter, from per-hit targets ([theta, sin phi, cos phi, q])."""
    values = _values(targets, momentum)
    return {k: np.quantile(values[k], np.linspace(0, 1, n + 1)[1:-1]).astype(float).tolist() for k, n in bins.items()}


def count(edges: dict[str, list[float]]) -> int:
    return 2 * int(np.prod([len(e) + 1 for e in edges.values()]))


def labels(targets: np.ndarray, momentum: np.ndarray, edges: dict[str, list[float]]) -> np.ndarray:
    """The class id of each hit's particle."""
    values = _values(targets, momentum)
    label = np.zeros(len(targets), np.int64)
    for k in ("phi", "theta", "p"):
        label = label * (len(edges[k]) + 1) + np.searchsorted(edges[k], values[k], side="right")
    return label * 2 + (targets[:, 3] > 0)
