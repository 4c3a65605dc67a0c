"""From per-hit predictions to tracks (numpy and scikit-learn: what inference needs, no torch).

EncReg: HDBSCAN (scikit-learn's) groups the hits in the space of the z-scored predicted
[theta, sin phi, cos phi, q]; each cluster is a track, HDBSCAN's noise hits are left out.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import HDBSCAN  # imported with the module, not on the first event

__all__ = ["cluster"]


def cluster(prediction: np.ndarray, hit_ids: np.ndarray, *, min_cluster_size: int,
            min_samples: int) -> list[np.ndarray]:
    """The hit ids of each track found in ``prediction`` (n, k), in a fixed order (by first hit)."""
    n = len(hit_ids)
    if n < min_cluster_size:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                         copy=True).fit_predict(np.asarray(prediction, np.float64))
    tracks = [np.sort(hit_ids[labels == label]) for label in np.unique(labels[labels >= 0])]
    tracks.sort(key=lambda t: int(t[0]))
    return tracks
