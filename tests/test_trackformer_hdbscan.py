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


def test_weights_scale_the_clustering_space() -> None:
    from recotrig.models.trackformer.inference import params_of

    rng = np.random.default_rng(3)
    angles = np.repeat(rng.normal(0, 1, (1, 3)), 12, axis=0) + rng.normal(0, 0.01, (12, 3))
    charge = np.where(np.arange(12) < 6, -0.4, 0.4)[:, None]  # one particle whose charge prediction wavers
    other = np.concatenate([angles[:8] + 3.0, np.full((8, 1), 0.4)], axis=1)  # a second particle, far off
    x = np.concatenate([np.concatenate([angles, charge], axis=1), other])
    assert [len(g) for g in cluster(x, min_cluster_size=4, min_samples=1)] == [6, 6, 8]
    assert [len(g) for g in cluster(x, min_cluster_size=4, min_samples=1, weights=[1, 1, 1, 0.01])] == [12, 8]
    card = {"kind": "encreg", "clustering": {"min_cluster_size": 4, "min_samples": 1}}
    assert params_of(card)["weights"] == [1.0] * 4  # a card tuned before the weights
    card["clustering"]["weights"] = [1, 1, 1, 0.1]
    assert params_of(card)["weights"] == [1.0, 1.0, 1.0, 0.1]
    for bad in ([1, 1, 1], [1, 1, 1, -1], [1, 1, 1, float("nan")], "heavy"):
        card["clustering"]["weights"] = bad
        with pytest.raises(ValueError, match="weights"):
            params_of(card)
