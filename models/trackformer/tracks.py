"""From per-hit predictions to track candidates (numpy, scipy and scikit-learn: what inference
needs, no torch). Each function returns index arrays into the hits given, in a fixed order (by
first index).

EncReg: HDBSCAN groups the hits in the space of the z-scored predicted [theta, sin phi, cos phi, q];
each cluster is a track, HDBSCAN's noise hits are left out. With ``min_samples=1`` (every shipped
card) HDBSCAN's mutual reachability is the plain distance, so its cluster hierarchy is the single
linkage one: scipy's single linkage (C) and the excess-of-mass selection of ``_eom_labels`` give
scikit-learn's labels at a quarter of its time on a window of a few hundred hits (scikit-learn's
estimator, about 4 ms a call there, was most of EncReg's track building; fast-hdbscan measured
slower on windows this small). Other ``min_samples`` go to scikit-learn.
EncCla: the hits of one predicted (top-1) class are a track, or (``linked``) the hits of a group of
classes the top-k posteriors link: a particle's hits scatter over neighbouring classes, and their
posteriors share those classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import HDBSCAN  # imported with the module, not on the first event

__all__ = ["by_class", "cluster", "linked"]


def cluster(
    prediction: np.ndarray, *, min_cluster_size: int, min_samples: int, weights: Sequence[float] | None = None
) -> list[np.ndarray]:
    """HDBSCAN clusters of ``prediction`` (n, k), its columns scaled by ``weights`` (k; default 1):
    the z-scored charge, predicted less sharply than the angles, splits a particle's hits when it
    counts fully; ``ValueError`` for a min_cluster_size below 2 or a min_samples below 1
    (HDBSCAN's own bounds)."""
    if min_cluster_size < 2 or min_samples < 1:
        raise ValueError(
            f"HDBSCAN needs min_cluster_size >= 2 and min_samples >= 1, got {min_cluster_size}, {min_samples}"
        )
    if len(prediction) < min_cluster_size:
        return []
    prediction = np.asarray(prediction, np.float64)
    if weights is not None:
        prediction = prediction * np.asarray(weights, np.float64)
    if min_samples == 1 and len(prediction) > 1:
        return _groups(_eom_labels(linkage(prediction, "single"), min_cluster_size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit_predict(prediction)
    return _groups(labels)


def _eom_labels(tree: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN's labels (-1: noise) from a single-linkage ``tree`` (scipy's linkage matrix of n
    points; ``min_cluster_size`` >= 2): the condensed tree (a split whose sides both hold
    ``min_cluster_size`` points makes two clusters; a smaller side's points fall out of the cluster
    at that lambda = 1/distance), each cluster's stability (the sum over its points of lambda at
    leaving minus lambda at its birth), and the excess-of-mass selection without the root (scikit-learn's default)."""
    n = len(tree) + 1
    # Python lists, not numpy arrays, in the loops: an element of a list is read several times faster
    left, right = tree[:, 0].astype(np.int64).tolist(), tree[:, 1].astype(np.int64).tolist()
    size = [1] * n + tree[:, 3].astype(np.int64).tolist()
    with np.errstate(divide="ignore"):
        lam = (1.0 / tree[:, 2]).tolist()  # a distance of 0 gives inf, as in scikit-learn
    owner = [-1] * (2 * n - 1)  # the condensed cluster a node belongs to (-1: fallen out)
    owner[-1] = 0
    birth, parent, stability = [0.0], [-1], [0.0]
    fell_from = [0] * n  # the cluster each point fell out of
    for node in range(2 * n - 2, n - 1, -1):  # merges from the top: a parent before its children
        c = owner[node]
        if c < 0:
            continue
        at = lam[node - n]
        sides = (left[node - n], right[node - n])
        if all(size[s] >= min_cluster_size for s in sides):
            for s in sides:
                owner[s] = len(birth)
                birth.append(at)
                parent.append(c)
                stability.append(0.0)
                stability[c] += (at - birth[c]) * size[s]
            continue
        for s in sides:
            if size[s] >= min_cluster_size:
                owner[s] = c
                continue
            stability[c] += (at - birth[c]) * size[s]
            stack = [s]
            while stack:
                x = stack.pop()
                if x < n:
                    fell_from[x] = c
                else:
                    stack += [left[x - n], right[x - n]]
    children: list[list[int]] = [[] for _ in birth]
    for c in range(1, len(birth)):
        children[parent[c]].append(c)
    selected = [False] * len(birth)
    for c in range(len(birth) - 1, 0, -1):  # children have larger ids than their parent
        below = sum(stability[k] for k in children[c])
        if children[c] and below > stability[c]:
            stability[c] = below
            continue
        selected[c] = True
        stack = list(children[c])
        while stack:
            k = stack.pop()
            selected[k] = False
            stack += children[k]
    label = [-1] * len(birth)
    for c in range(1, len(birth)):
        label[c] = c if selected[c] else label[parent[c]]
    return np.asarray(label, np.int64)[fell_from]


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
