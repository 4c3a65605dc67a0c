"""EncReg's track building: the single-linkage HDBSCAN of ``tracks.cluster`` (min_samples 1) gives
scikit-learn's HDBSCAN clusters, noise included, on clustered data like a window's predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.cluster import HDBSCAN

from recotrig.models.trackformer.tracks import _groups, cluster


def _window(seed: int) -> np.ndarray:
    """Predictions of a window: tracks of 1-12 hits around their parameters, spread hits, and a few
    hits predicted alike (distance 0)."""
    rng = np.random.default_rng(seed)
    tracks = [
        rng.normal(0, 1, 4) + rng.normal(0, rng.uniform(0.005, 0.08), (rng.integers(1, 13), 4)) for _ in range(40)
    ]
    x = np.concatenate([*tracks, rng.normal(0, 1.5, (15, 4))])
    return np.concatenate([x, x[rng.integers(0, len(x), 3)]])


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("min_cluster_size", [2, 3, 4, 6])
def test_single_linkage_hdbscan_equals_scikit_learn(seed: int, min_cluster_size: int) -> None:
    x = _window(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=1).fit_predict(x)
    expected = [g.tolist() for g in _groups(labels)]
    found = [g.tolist() for g in cluster(x, min_cluster_size=min_cluster_size, min_samples=1)]
    assert found == expected
    assert len(found) > 5


def test_hdbscan_bounds() -> None:
    x = _window(0)
    with pytest.raises(ValueError, match="min_cluster_size >= 2"):
        cluster(x, min_cluster_size=1, min_samples=1)
    assert cluster(x[:3], min_cluster_size=4, min_samples=1) == []
    assert cluster(np.array([[0.0, 0, 0, 0], [1, 0, 0, 0]]), min_cluster_size=2, min_samples=1) == []  # no root
    two = np.array([[0.0, 0, 0, 0], [0.1, 0, 0, 0], [5, 0, 0, 0], [5.1, 0, 0, 0]])
    assert [g.tolist() for g in cluster(two, min_cluster_size=2, min_samples=1)] == [[0, 1], [2, 3]]
