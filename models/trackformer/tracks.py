"""From per-hit predictions to track candidates (numpy and scikit-learn: what inference needs, no
torch). Both return index arrays into the hits given, in a fixed order (by first index).

EncReg: HDBSCAN (scikit-learn's) groups the hits in the space of the z-scored predicted
[theta, sin phi, cos phi, q]; each cluster is a track, HDBSCAN's noise hits are left out.
EncCla: the hits of one predicted (top-1) class are a track.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import HDBSCAN  # imported with the module, not on the first event

__all__ = ["by_class", "cluster"]


def cluster(prediction: np.ndarray, *, min_cluster_size: int, min_samples: int) -> list[np.ndarray]:
    """HDBSCAN clusters of ``prediction`` (n, k)."""
    if len(prediction) < min_cluster_size:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                         copy=True).fit_predict(np.asarray(prediction, np.float64))
    return _groups(labels)


def by_class(classes: np.ndarray) -> list[np.ndarray]:
    """The hits of each top-1 class (``classes`` (n,) class ids)."""
    return _groups(np.asarray(classes, np.int64))


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    values, starts = np.unique(labels[order], return_index=True)
    groups = np.split(order, starts[1:])
    groups = [g for g, v in zip(groups, values) if v >= 0]
    groups.sort(key=lambda g: int(g[0]))
    return groups
