"""The helix refinement of track candidates (models/trackformer/helices.py) on exact helices."""

import warnings

import numpy as np
import pytest

from recotrig.models.trackformer.helices import fit, refine
from recotrig.models.trackformer.inference import params_of

BARREL_MM = (32.0, 72.0, 116.0, 172.0)
TOLERANCES = {"xy_mm": 1.0, "rz_mm": 0.5, "min_hits": 2}


def helix(pt: float, phi: float, cot_theta: float, z0: float, charge: int, radii=BARREL_MM) -> np.ndarray:
    """The (x, y, z) where a particle from (0, 0, z0) crosses the given radii in a 2 T field."""
    radius = pt / (0.3 * 2.0) * 1e3  # mm
    centre = radius * np.array([np.cos(phi + charge * np.pi / 2), np.sin(phi + charge * np.pi / 2)])
    start = phi + charge * np.pi / 2 + np.pi  # the origin, seen from the centre
    r = np.asarray(radii)
    s = 2 * radius * np.arcsin(r / (2 * radius))
    angle = start - charge * s / radius
    x, y = centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle)
    return np.column_stack([x, y, z0 + s * cot_theta])


def test_a_helix_fits_itself_and_a_straight_track_fits_too():
    track = helix(0.8, 1.0, 0.5, -20.0, +1)
    assert np.allclose(np.hypot(track[:, 0], track[:, 1]), BARREL_MM)
    dxy, drz, params = fit(track, [np.arange(4)])
    assert dxy[0] < 1e-6 and drz[0] < 1e-6
    assert params[0, 2] == pytest.approx(-20.0) and params[0, 3] == pytest.approx(0.5)
    straight = np.column_stack([np.asarray(BARREL_MM) * np.cos(0.3), np.asarray(BARREL_MM) * np.sin(0.3), BARREL_MM])
    dxy, drz, _ = fit(straight, [np.arange(4)])
    assert np.isfinite(dxy).all() and dxy[0] < 1e-6 and drz[0] < 1e-6


def test_two_particles_in_one_candidate_are_split_and_one_particle_in_two_is_merged():
    a = helix(1.5, 0.4, 0.3, 10.0, +1)
    b = helix(1.2, 0.42, 0.31, -25.0, -1)  # the same direction, 35 mm away along the beam
    c = helix(3.0, -2.0, -1.0, 0.0, +1)
    hits = np.concatenate([a, b, c])
    ia, ib, ic = np.arange(0, 4), np.arange(4, 8), np.arange(8, 12)
    together = refine(hits, [np.concatenate([ia, ib]), ic], **TOLERANCES)
    assert sorted(map(tuple, together)) == sorted(map(tuple, [ia, ib, ic]))
    fragments = refine(hits, [ia[:2], ia[2:], ib, ic], **TOLERANCES)
    assert sorted(map(tuple, fragments)) == sorted(map(tuple, [ia, ib, ic]))  # b is near a but another helix
    assert [t.tolist() for t in refine(hits, [ia, ib, ic], **TOLERANCES)] == [ia.tolist(), ib.tolist(), ic.tolist()]
    assert refine(hits, [], **TOLERANCES) == []


def test_a_stray_hit_is_no_cut_and_min_hits_bounds_a_cut():
    a = helix(2.0, 0.0, 0.0, 0.0, -1)
    stray = np.array([[0.0, 116.0, 40.0]])
    hits = np.concatenate([a, stray])
    # one side would keep a single hit: the candidate stays whole
    assert [t.tolist() for t in refine(hits, [np.arange(5)], **TOLERANCES)] == [list(range(5))]
    b = helix(2.0, 0.05, 0.0, 30.0, +1, radii=BARREL_MM[:2])
    hits = np.concatenate([a, b])
    assert len(refine(hits, [np.arange(6)], **TOLERANCES)) == 2
    assert len(refine(hits, [np.arange(6)], **{**TOLERANCES, "min_hits": 3})) == 1


def test_a_hit_on_the_beam_line_stays_on_a_track_without_warnings():
    a, b = helix(1.5, 0.4, 0.3, 10.0, +1), helix(1.2, 0.42, 0.31, -25.0, -1)
    hits = np.concatenate([a, b, [[0.0, 0.0, 5.0]]])  # r = 0: no helix goes through it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for tracks in ([np.arange(9)], [np.arange(4), np.arange(4, 9)]):
            out = refine(hits, tracks, **TOLERANCES)
            assert sorted(np.concatenate(out).tolist()) == list(range(9))
            assert [0, 1, 2, 3] in [t.tolist() for t in out]


def test_the_card_gives_the_tolerances_and_bad_ones_are_refused():
    card = {
        "kind": "encreg",
        "clustering": {"min_cluster_size": 4, "min_samples": 1, "helix": {"xy_mm": 2, "rz_mm": 1, "min_hits": 2}},
    }
    assert params_of(card)["helix"] == {"xy_mm": 2.0, "rz_mm": 1.0, "min_hits": 2}
    assert params_of({"kind": "enccla", "clustering": {"min_hits": 3}})["helix"] is None
    for bad in (
        {"xy_mm": 0, "rz_mm": 1, "min_hits": 2},
        {"xy_mm": 1, "rz_mm": float("inf"), "min_hits": 2},
        {"xy_mm": 1},
    ):
        with pytest.raises(ValueError, match="clustering"):
            params_of({**card, "clustering": {**card["clustering"], "helix": bad}})


def test_the_refinement_gives_the_same_tracks_in_small_chunks(monkeypatch):
    """The merge's unions are evaluated ENTRIES hits at a time (a full mu = 200 crossing took 2 GB
    at once): chunks of a few hits give the same tracks."""
    from recotrig.models.trackformer import helices

    rng = np.random.default_rng(5)
    particles = [
        helix(
            rng.uniform(0.6, 5.0), rng.uniform(-0.5, 0.5), rng.uniform(-1, 1), rng.uniform(-40, 40), rng.choice([-1, 1])
        )
        for _ in range(30)
    ]
    hits = np.concatenate(particles)
    index = np.arange(len(hits)).reshape(30, 4)
    # candidates: some particles whole, some in two, some pairs of particles together
    candidates = [index[0], index[1, :2], index[1, 2:], np.concatenate([index[2], index[3]]), *index[4:]]
    whole = refine(hits, candidates, **TOLERANCES)
    monkeypatch.setattr(helices, "ENTRIES", 8)
    assert [t.tolist() for t in refine(hits, candidates, **TOLERANCES)] == [t.tolist() for t in whole]
    assert sorted(map(tuple, whole)) == sorted(map(tuple, index))  # the fragments joined, the pair cut


def _plain_best_pairs(
    hits: np.ndarray, group: np.ndarray, xy_mm: float, rz_mm: float
) -> list[tuple[int, float, np.ndarray]]:
    """Every pair's (count, spread, inside mask) by the definition alone: all pairs of the probed
    hits, every hit of the group tested exactly (numpy, no shortcut)."""
    from recotrig.models.trackformer.helices import PAIR_MIN_MM, _probe

    x, y, z = (hits[group, i].astype(np.float64) for i in range(3))
    r = np.hypot(x, y)
    out = []
    probe = _probe(len(group))
    for p in range(len(probe)):
        for q in range(p + 1, len(probe)):
            i, j = probe[p], probe[q]
            det = 4.0 * (x[i] * y[j] - x[j] * y[i])
            if not (abs(r[i] - r[j]) >= PAIR_MIN_MM or abs(z[i] - z[j]) >= PAIR_MIN_MM) or not abs(det) > 1e-9:
                continue
            a = 2.0 * (r[i] ** 2 * y[j] - r[j] ** 2 * y[i]) / det
            b = 2.0 * (x[i] * r[j] ** 2 - x[j] * r[i] ** 2) / det
            radius = np.hypot(a, b)
            s = 2.0 * radius * np.arcsin(np.clip(r / (2.0 * radius), 0.0, 1.0))
            slope = (z[j] - z[i]) / (s[j] - s[i]) if abs(s[j] - s[i]) > 1e-9 else np.nan
            dxy = np.abs(np.hypot(x - a, y - b) - radius)
            drz = np.abs(z - (z[i] - slope * s[i]) - slope * s) / np.hypot(1.0, slope)
            inside = (dxy < xy_mm) & (drz < rz_mm)
            out.append((int(inside.sum()), float((dxy / xy_mm + drz / rz_mm)[inside].sum()), inside))
    return out


def test_the_pair_search_shortcuts_give_the_plain_search_choice():
    """The pair search (``_best_pairs``) skips pairs by a first, approximate test and stops early:
    on mixtures of helices and stray hits its choice is a pair of the most hits and the least
    summed distance, as testing every hit of every pair finds it."""
    from recotrig.models.trackformer.helices import _best_pairs, _Columns

    rng = np.random.default_rng(11)
    layers = (32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0)
    groups, parts = [], []
    start = 0
    for _ in range(40):
        k = rng.integers(1, 4)  # particles in the candidate
        part = [
            helix(
                rng.uniform(0.4, 5.0),
                rng.uniform(-0.3, 0.3),
                rng.uniform(-1, 1),
                rng.uniform(-30, 30),
                rng.choice([-1, 1]),
                layers,
            )
            + rng.normal(0, [0.35, 0.35, 0.15], (len(layers), 3))
            for _ in range(k)
        ]
        part.append(
            np.column_stack(
                [
                    rng.uniform(30, 500, 3) * np.cos(rng.uniform(-0.3, 0.3, 3)),
                    rng.uniform(30, 500, 3) * np.sin(rng.uniform(-0.3, 0.3, 3)),
                    rng.uniform(-300, 300, 3),
                ]
            )
        )
        part = np.concatenate(part)
        parts.append(part)
        groups.append(np.arange(start, start + len(part)))
        start += len(part)
    hits = np.concatenate(parts)
    chosen = _best_pairs(_Columns(hits), groups, 1.0, 0.5)
    for group, inside in zip(groups, chosen):
        plain = _plain_best_pairs(hits, group, 1.0, 0.5)
        most = max(c for c, _, _ in plain)
        least = min(s for c, s, _ in plain if c == most)
        best = [m for c, s, m in plain if c == most and s <= least * (1 + 1e-9) + 1e-12]
        assert inside is not None and any(np.array_equal(inside, m) for m in best)
