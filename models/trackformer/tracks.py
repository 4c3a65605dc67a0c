"""From per-hit predictions to track candidates (numpy, scipy and scikit-learn: what inference
needs, no torch). Each function returns index arrays into the hits given, in a fixed order (by
first index).

EncReg: HDBSCAN (scikit-learn's) groups the hits in the space of the z-scored predicted
[theta, sin phi, cos phi, q]; each cluster is a track, HDBSCAN's noise hits are left out.
EncCla: the hits of one predicted (top-1) class are a track, or (``linked``) the hits of a group of
classes the top-k posteriors link: a particle's hits scatter over neighbouring classes, and their
posteriors share those classes.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import HDBSCAN  # imported with the module, not on the first event

__all__ = ["by_class", "cluster", "linked"]


def cluster(prediction: np.ndarray, *, min_cluster_size: int, min_samples: int) -> list[np.ndarray]:
    """HDBSCAN clusters of ``prediction`` (n, k)."""
    if len(prediction) < min_cluster_size:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit_predict(
            np.asarray(prediction, np.float64)
        )
    return _groups(labels)


def by_class(classes: np.ndarray) -> list[np.ndarray]:
    """The hits of each top-1 class (``classes`` (n,) class ids)."""
    return _groups(np.asarray(classes, np.int64))


def linked(classes: np.ndarray, probabilities: np.ndarray, *, overlap: float | None) -> list[np.ndarray]:
    """The hits of each group of linked classes (``classes`` (n, k) top-k class ids, ``probabilities``
    (n, k) theirs, in decreasing order per hit).

    A hit belongs to its top-1 class. The overlap of two classes a and b is the mean, over the hits
    whose top-1 class is a or b, of the probability the hit gives the other class (0 outside its
    top-k) divided by its top-1 probability: 0 when no hit hesitates between them, 1 when every
    such hit rates both alike. Classes whose overlap exceeds ``overlap`` are linked (a class no hit
    has first counts too, with no hits of its own, so it may join the classes around it), and each
    connected group of classes is a track. ``overlap`` None or 0: no links, ``by_class``."""
    classes = np.asarray(classes, np.int64)
    if not overlap or not len(classes):
        return by_class(classes[:, 0])
    n, k = classes.shape
    ids, index = np.unique(classes, return_inverse=True)  # the classes of the window, renumbered 0..m-1
    index = index.reshape(n, k)
    m = len(ids)
    first, other = np.repeat(index[:, 0], k - 1), index[:, 1:].ravel()
    p = np.asarray(probabilities, np.float64)
    ratio = (p[:, 1:] / p[:, :1]).ravel()
    pairs, of_pair = np.unique(np.minimum(first, other) * m + np.maximum(first, other), return_inverse=True)
    a, b = pairs // m, pairs % m
    hits = np.bincount(index[:, 0], minlength=m)
    link = np.bincount(of_pair, weights=ratio, minlength=len(pairs)) > overlap * (hits[a] + hits[b])
    graph = coo_matrix((np.ones(int(link.sum())), (a[link], b[link])), shape=(m, m))
    return _groups(connected_components(graph, directed=False)[1][index[:, 0]])


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    values, starts = np.unique(labels[order], return_index=True)
    groups = np.split(order, starts[1:])
    groups = [g for g, v in zip(groups, values) if v >= 0]
    groups.sort(key=lambda g: int(g[0]))
    return groups
