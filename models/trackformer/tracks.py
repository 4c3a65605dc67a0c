"""From per-hit predictions to track candidates (numpy, numba, scipy and scikit-learn: what
inference needs, no torch). Each function returns index arrays into the hits given, in a fixed order (by
first index).

EncReg: HDBSCAN groups the hits in the space of the z-scored predicted [theta, sin phi, cos phi, q];
each cluster is a track, HDBSCAN's noise hits are left out. With ``min_samples=1`` (every shipped
card) HDBSCAN's mutual reachability is the plain distance, so its cluster hierarchy is the single
linkage one: a compiled Prim's tree (``_single_linkage``, scipy's linkage matrix) and the
excess-of-mass selection of ``_eom_labels`` give scikit-learn's labels in 0.2 ms on a window of 230
hits (scikit-learn's estimator took about 4 ms a call there; scipy's linkage and the selection in
Python loops, 0.4 ms; fast-hdbscan measured slower on windows this small). Other ``min_samples`` go
to scikit-learn.
EncCla: the hits of one predicted (top-1) class are a track, or (``linked``) the hits of a group of
classes the top-k posteriors link: a particle's hits scatter over neighbouring classes, and their
posteriors share those classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import HDBSCAN  # imported with the module, not on the first event

from recotrig.models.trackformer.compiled import compiled

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
        return _groups(_eom_labels(_single_linkage(prediction), min_cluster_size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit_predict(prediction)
    return _groups(labels)


@compiled
def _single_linkage(points):  # pragma: no cover (compiled)
    """The single-linkage tree of ``points`` (n >= 2, k) under the Euclidean distance, as scipy's
    linkage matrix (merge m: the two nodes it joins, smaller id first, points 0..n-1 and merges
    n + m; their distance; its points): Prim's minimum spanning tree from point 0 (each step the
    nearest point not yet in, the first among equals), its edges sorted by length (stable), joined
    in that order."""
    n, k = points.shape
    edges = np.empty((n - 1, 3))
    nearest = np.full(n, np.inf)  # squared distances to the tree so far
    outside = np.arange(1, n)  # the points not in the tree yet: outside[:left]
    left, at = n - 1, 0
    for m in range(n - 1):
        best, step, slot = np.inf, -1, -1
        for t in range(left):
            i = outside[t]
            square = 0.0
            for c in range(k):
                square += (points[i, c] - points[at, c]) ** 2
            nearest[i] = min(nearest[i], square)
            if step < 0 or nearest[i] < best or (nearest[i] == best and i < step):
                best, step, slot = nearest[i], i, t
        edges[m, 0], edges[m, 1], edges[m, 2] = at, step, np.sqrt(best)
        left -= 1
        outside[slot] = outside[left]
        at = step
    tree = np.empty((n - 1, 4))
    root = np.arange(2 * n - 1)  # union-find: each node's parent towards its merge's root
    size = np.ones(2 * n - 1, np.int64)
    for m, e in enumerate(np.argsort(edges[:, 2], kind="mergesort")):
        a, b = _root(root, int(edges[e, 0])), _root(root, int(edges[e, 1]))
        root[a] = root[b] = n + m
        size[n + m] = size[a] + size[b]
        tree[m, 0], tree[m, 1], tree[m, 2], tree[m, 3] = min(a, b), max(a, b), edges[e, 2], size[n + m]
    return tree


@compiled
def _root(root, node):  # pragma: no cover (compiled)
    """The merge that holds ``node`` now (union-find with path halving)."""
    while root[node] != node:
        root[node] = root[root[node]]
        node = root[node]
    return node


def _eom_labels(tree: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN's labels (-1: noise) from a single-linkage ``tree`` (scipy's linkage matrix of n
    points; ``min_cluster_size`` >= 2): the condensed tree (a split whose sides both hold
    ``min_cluster_size`` points makes two clusters; a smaller side's points fall out of the cluster
    at that lambda = 1/distance), each cluster's stability (the sum over its points of lambda at
    leaving minus lambda at its birth), and the excess-of-mass selection without the root (scikit-learn's default)."""
    with np.errstate(divide="ignore"):
        lam = 1.0 / tree[:, 2]  # a distance of 0 gives inf, as in scikit-learn
    n = len(tree) + 1
    size = np.concatenate([np.ones(n, np.int64), tree[:, 3].astype(np.int64)])
    return _eom_kernel(tree[:, 0].astype(np.int64), tree[:, 1].astype(np.int64), size, lam, min_cluster_size)


@compiled
def _eom_kernel(left, right, size, lam, min_cluster_size):  # pragma: no cover (compiled)
    """``_eom_labels`` on the tree's columns: merge m joins nodes left[m] and right[m] (points
    0..n-1, merges n..2n-2) at lambda lam[m]; size[node] its points. A cluster splits into two
    consecutive ids (``child``: the first, -1 for a leaf cluster), always after its parent."""
    n = len(left) + 1
    owner = np.full(2 * n - 1, -1, np.int64)  # the condensed cluster a node belongs to (-1: fallen out)
    owner[2 * n - 2] = 0
    birth, stability = np.zeros(n), np.zeros(n)
    parent, child = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    clusters = 1
    fell_from = np.zeros(n, np.int64)  # the cluster each point fell out of
    stack = np.empty(2 * n, np.int64)
    for node in range(2 * n - 2, n - 1, -1):  # merges from the top: a parent before its children
        c = owner[node]
        if c < 0:
            continue
        at = lam[node - n]
        sides = (left[node - n], right[node - n])
        if size[sides[0]] >= min_cluster_size and size[sides[1]] >= min_cluster_size:
            child[c] = clusters
            for s in sides:
                owner[s] = clusters
                birth[clusters] = at
                parent[clusters] = c
                stability[c] += (at - birth[c]) * size[s]
                clusters += 1
            continue
        for s in sides:
            if size[s] >= min_cluster_size:
                owner[s] = c
                continue
            stability[c] += (at - birth[c]) * size[s]
            stack[0], top = s, 1
            while top:
                top -= 1
                x = stack[top]
                if x < n:
                    fell_from[x] = c
                else:
                    stack[top], stack[top + 1] = left[x - n], right[x - n]
                    top += 2
    selected = np.zeros(clusters, np.bool_)
    for c in range(clusters - 1, 0, -1):  # children have larger ids than their parent
        k = child[c]
        if k >= 0 and stability[k] + stability[k + 1] > stability[c]:
            stability[c] = stability[k] + stability[k + 1]
            continue
        selected[c] = True
        stack[0], top = c, 1
        while top:  # no cluster below a selected one stays selected
            top -= 1
            k = child[stack[top]]
            if k >= 0:
                selected[k] = selected[k + 1] = False
                stack[top], stack[top + 1] = k, k + 1
                top += 2
    label = np.full(clusters, -1, np.int64)
    for c in range(1, clusters):
        label[c] = c if selected[c] else label[parent[c]]
    return label[fell_from]


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
    ends = [*starts[1:].tolist(), len(order)]
    groups = [order[s:e] for s, e, v in zip(starts.tolist(), ends, values.tolist()) if v >= 0]  # np.split's cost, less
    groups.sort(key=lambda g: int(g[0]))
    return groups
