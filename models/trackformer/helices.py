"""Track candidates checked against the helix a particle from the beam line draws (numpy only).

A charged particle from the beam line crosses the pixel layers on a helix: in (x, y) a circle
through the origin, in (s, z) a straight line (s: the arc length in x-y from the origin). A
candidate that holds the hits of two particles fits no single helix, and two candidates that hold
the hits of one particle fit one together. ``refine``:

1. **split**: a candidate whose hits do not all lie within ``xy_mm`` of its fitted circle and
   ``rz_mm`` of its fitted line is cut in two: the helix through the origin and a pair of its hits
   that holds the most hits within those distances (every pair is tried) keeps them, and the rest
   are refined again; a cut is made only when both sides keep ``min_hits`` hits.
2. **merge**: two candidates whose fitted helices point the same way (their mean hit phi within
   ``MERGE_PHI``, their lines' slopes dz/ds within ``MERGE_SLOPE`` x (1 + the larger |slope|))
   become one when all their hits fit one helix within the same distances, the closest first.

The fits are least squares: the circle's centre (a, b) from x^2 + y^2 = 2 a x + 2 b y (each hit's
equation divided by its radius), the line by ordinary least squares on (s, z); the distances are
geometric (to the circle, and to the line in the (s, z) plane). Particles made away from the beam
line, or curling more than half a turn, fit worse; the tolerances are tuned on validation events
and shipped in the card (``clustering.helix``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np

__all__ = ["MERGE_PHI", "MERGE_SLOPE", "fit", "refine"]

#: merge candidates: their mean hit phi within this (rad), their slopes dz/ds within this x (1 + the larger |slope|)
MERGE_PHI = 0.3
MERGE_SLOPE = 0.3
#: two hits closer than this in r and z (mm; a module overlap's double hit) define no helix
PAIR_MIN_MM = 5.0
#: a candidate's hits a helix is drawn through, at most (``_pairs``)
PROBE_HITS = 48
#: (pair, hit) entries of the split, or hits of the merge's unions, evaluated at once, at most
#: (about 10 arrays of 8 bytes each per entry): a full mu = 200 crossing's million near pairs
#: fitted at once took 2 GB
ENTRIES = 1 << 21


def _arc(r: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Arc length from the origin on a circle through it of ``radius`` to radius ``r``."""
    return 2.0 * radius * np.arcsin(np.clip(r / (2.0 * radius), 0.0, 1.0))


@np.errstate(divide="ignore", invalid="ignore")  # a hit on the beam line gives nan: that group fits nothing
def fit(hits: np.ndarray, groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The helix through the beam line fitted to each group of ``hits`` ((n, 3) in mm; index
    arrays of >= 1 hit), all groups at once: per group the largest distance of its hits to its
    circle in x-y and to its line in (s, z), and (a, b, z0, slope, phi of the hits' mean) as a
    (groups, 5) array. A group at one radius gets slope 0 through its mean z; one whose hits line
    up with the origin, an infinite circle (a straight line)."""
    index = np.concatenate(groups)
    starts = np.cumsum([0] + [len(g) for g in groups[:-1]])
    sizes = np.asarray([len(g) for g in groups], np.float64)
    x, y, z = (hits[index, i].astype(np.float64) for i in range(3))
    r = np.hypot(x, y)
    u, v = 2.0 * x / r, 2.0 * y / r

    def total(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts)

    suu, suv, svv, sur, svr = total(u * u), total(u * v), total(v * v), total(u * r), total(v * r)
    det = suu * svv - suv * suv
    line = np.abs(det) <= 1e-12 * (suu * svv + 1e-300)  # one direction from the origin
    det = np.where(line, 1.0, det)
    a = np.where(line, np.inf, (sur * svv - svr * suv) / det)
    b = np.where(line, np.inf, (svr * suu - sur * suv) / det)
    radius = np.hypot(a, b)
    each = np.repeat(np.arange(len(groups)), sizes.astype(np.int64))
    s = np.where(line[each], r, _arc(r, np.where(line, 1.0, radius)[each]))
    ss, sz, sss, ssz = total(s), total(z), total(s * s), total(s * z)
    spread = sizes * sss - ss * ss
    flat = spread <= 1e-9 * (sizes * sss + 1e-300)
    slope = np.where(flat, 0.0, (sizes * ssz - ss * sz) / np.where(flat, 1.0, spread))
    z0 = (sz - slope * ss) / sizes
    circle = np.abs(np.hypot(x - a[each], y - b[each]) - radius[each])
    phi = np.arctan2(total(y), total(x))  # a straight track's heading: its hits' mean direction
    dxy = np.where(line[each], np.abs(x * np.sin(phi[each]) - y * np.cos(phi[each])), circle)
    drz = np.abs(z - z0[each] - slope[each] * s) / np.hypot(1.0, slope[each])
    return (
        np.maximum.reduceat(dxy, starts),
        np.maximum.reduceat(drz, starts),
        np.column_stack([a, b, z0, slope, phi]),
    )


def _fits(hits: np.ndarray, groups: list[np.ndarray], xy_mm: float, rz_mm: float) -> np.ndarray:
    """Per group: do all its hits lie within the distances of its helix (a group of 2 always does)."""
    return _fitted(hits, groups, xy_mm, rz_mm)[0]


def _fitted(hits: np.ndarray, groups: list[np.ndarray], xy_mm: float, rz_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """``_fits`` and the helices' parameters (``fit``'s third result)."""
    if not groups:
        return np.zeros(0, bool), np.zeros((0, 5))
    dxy, drz, params = fit(hits, groups)
    return ((dxy < xy_mm) & (drz < rz_mm)) | (np.asarray([len(g) for g in groups]) < 3), params


@lru_cache(maxsize=256)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of a candidate's hits a helix is drawn through: all of them, or those of
    ``PROBE_HITS`` hits spread evenly over a larger candidate (a candidate of many particles, as in
    a dense event's poor output, would otherwise cost n^3). Cached by n: read only."""
    if n <= PROBE_HITS:
        i, j = np.triu_indices(n, 1)
    else:
        probe = np.linspace(0, n - 1, PROBE_HITS).astype(np.int64)
        i, j = (probe[k] for k in np.triu_indices(PROBE_HITS, 1))
    i.flags.writeable = j.flags.writeable = False
    return i, j


@np.errstate(divide="ignore", invalid="ignore")
def _best_pairs(hits: np.ndarray, groups: list[np.ndarray], xy_mm: float, rz_mm: float) -> list[np.ndarray | None]:
    """Per group (index arrays into ``hits``), of the helices through the origin and two of its
    hits, the one within the distances of the most of its hits (the smaller summed scaled distance
    among equals): those hits as a mask over the group (None: no pair defines a helix). All
    groups at once: every (pair, hit of its group) is one entry."""
    sizes = np.asarray([len(g) for g in groups], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    index = np.concatenate(groups)
    local = [_pairs(n) for n in sizes]
    group = np.repeat(np.arange(len(groups)), [len(li) for li, _ in local])
    i = index[np.concatenate([li for li, _ in local]) + starts[group]]
    j = index[np.concatenate([lj for _, lj in local]) + starts[group]]
    x, y, z = (hits[:, k].astype(np.float64) for k in range(3))
    r = np.hypot(x, y)
    det = 4.0 * (x[i] * y[j] - x[j] * y[i])  # the circle through the origin and hits i, j
    keep = ((np.abs(r[i] - r[j]) >= PAIR_MIN_MM) | (np.abs(z[i] - z[j]) >= PAIR_MIN_MM)) & (np.abs(det) > 1e-9)
    i, j, det, group = i[keep], j[keep], det[keep], group[keep]
    out: list[np.ndarray | None] = [None] * len(groups)
    if not len(i):
        return out
    a = 2.0 * (r[i] ** 2 * y[j] - r[j] ** 2 * y[i]) / det
    b = 2.0 * (x[i] * r[j] ** 2 - x[j] * r[i] ** 2) / det
    radius = np.hypot(a, b)
    si, sj = _arc(r[i], radius), _arc(r[j], radius)
    slope = np.where(np.abs(sj - si) > 1e-9, (z[j] - z[i]) / (sj - si), np.nan)
    z0 = z[i] - slope * si
    # entries: each pair against every hit of its group
    per_pair = sizes[group]
    pair = np.repeat(np.arange(len(i)), per_pair)
    first = np.concatenate([[0], np.cumsum(per_pair)[:-1]])
    hit = index[starts[group][pair] + np.arange(len(pair)) - first[pair]]
    s = _arc(r[hit], radius[pair])
    dxy = np.abs(np.hypot(x[hit] - a[pair], y[hit] - b[pair]) - radius[pair])
    drz = np.abs(z[hit] - z0[pair] - slope[pair] * s) / np.hypot(1.0, slope[pair])
    inside = (dxy < xy_mm) & (drz < rz_mm)  # nan (no line) is never inside
    count = np.add.reduceat(inside.astype(np.int64), first)
    spread = np.add.reduceat(np.where(inside, dxy / xy_mm + drz / rz_mm, 0.0), first)
    order = np.lexsort((spread, -count, group))
    best = order[np.concatenate([[True], group[order][1:] != group[order][:-1]])]  # the first of each group
    for p in best:
        if count[p]:
            out[group[p]] = inside[first[p] : first[p] + per_pair[p]]
    return out


def _chunks(costs: np.ndarray | list[int]) -> Iterator[slice]:
    """Consecutive slices of items whose ``costs`` sum to at most ``ENTRIES`` (an item that costs
    more alone is a slice of its own): how every batched evaluation here keeps its memory bounded."""
    upto = np.cumsum(costs)
    lo = 0
    while lo < len(upto):
        hi = max(lo + 1, int(np.searchsorted(upto, (upto[lo - 1] if lo else 0) + ENTRIES, side="right")))
        yield slice(lo, hi)
        lo = hi


def _chunked_best_pairs(hits: np.ndarray, groups: list[np.ndarray], xy_mm: float, rz_mm: float) -> list:
    """``_best_pairs`` in chunks of at most ``ENTRIES`` (pair, hit) entries (memory stays bounded)."""
    probes = [min(len(g), PROBE_HITS) for g in groups]
    costs = [p * (p - 1) // 2 * len(g) for p, g in zip(probes, groups)]  # _pairs' pairs, each against every hit
    return [inside for c in _chunks(costs) for inside in _best_pairs(hits, groups[c], xy_mm, rz_mm)]


def _split(hits: np.ndarray, groups: list[np.ndarray], xy_mm: float, rz_mm: float, min_hits: int) -> list[np.ndarray]:
    """Candidates that fit no helix, cut: the best pair's helix keeps its hits, the rest is cut
    again while it fits no helix; a cut is made only where both sides keep ``min_hits``. In rounds,
    all pending candidates at once."""
    done: list[np.ndarray] = []
    pending = list(groups)
    while pending:
        small = [g for g in pending if len(g) < 2 * min_hits]
        done += small
        pending = [g for g in pending if len(g) >= 2 * min_hits]
        if not pending:
            break
        rests = []
        for g, inside in zip(pending, _chunked_best_pairs(hits, pending, xy_mm, rz_mm)):
            if inside is None or inside.sum() < min_hits or (~inside).sum() < min_hits:
                done.append(g)
            else:
                done.append(g[inside])
                rests.append(g[~inside])
        whole = _fits(hits, rests, xy_mm, rz_mm)
        done += [g for g, ok in zip(rests, whole) if ok]
        pending = [g for g, ok in zip(rests, whole) if not ok]
    return done


def _phi_neighbours(phi: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The pairs (i, j) of candidates whose phi lie within ``MERGE_PHI`` (each pair once, i < j),
    from the candidates sorted in phi: linear in the pairs, not quadratic in the candidates; in
    chunks of about ``ENTRIES`` pairs, a candidate's pairs never cut (a full mu = 200 crossing
    has ten million pairs)."""
    n = len(phi)
    order = np.argsort(phi, kind="stable")
    ring = np.concatenate([phi[order], phi[order] + 2 * np.pi])
    ahead = np.searchsorted(ring, phi[order] + MERGE_PHI, side="right") - np.arange(1, n + 1)
    ahead = np.clip(ahead, 0, n - 1)  # how many candidates after each lie within reach
    for c in _chunks(ahead):
        count = ahead[c]
        first = np.repeat(np.arange(c.start, c.stop), count)
        step = np.arange(len(first)) - np.repeat(np.cumsum(count) - count, count)  # 0, 1, ... per candidate
        a, b = order[first], order[(first + 1 + step) % n]
        yield np.minimum(a, b), np.maximum(a, b)


def _merge(
    hits: np.ndarray, tracks: list[np.ndarray], xy_mm: float, rz_mm: float, params: np.ndarray
) -> list[np.ndarray]:
    """Near pairs merged where their union fits one helix, the closest pairs first (``params``: the
    tracks' fitted helices). In rounds: all near pairs' unions are fitted at once, and a pair whose
    candidate grew earlier in the round waits for the next round, where it is tried with what the
    candidates have become."""
    if len(tracks) < 2:
        return list(tracks)
    slope, phi = params[:, 3], params[:, 4]
    near_i, near_j, distance = [], [], []
    for i, j in _phi_neighbours(phi):
        dphi = np.abs((phi[i] - phi[j] + np.pi) % (2 * np.pi) - np.pi)
        dslope = np.abs(slope[i] - slope[j]) / (1.0 + np.maximum(np.abs(slope[i]), np.abs(slope[j])))
        near = (dphi < MERGE_PHI) & (dslope < MERGE_SLOPE)  # nan slopes are never near
        near_i.append(i[near])
        near_j.append(j[near])
        distance.append((dphi / MERGE_PHI + dslope / MERGE_SLOPE)[near])
    order = np.argsort(np.concatenate(distance), kind="stable")
    first, second = np.concatenate(near_i)[order], np.concatenate(near_j)[order]
    owner = np.arange(len(tracks))  # each candidate's merged candidate
    members = dict(enumerate(tracks))
    length = np.asarray([len(t) for t in tracks], np.int64)
    while len(first):
        a, b = owner[first], owner[second]
        a, b = np.minimum(a, b), np.maximum(a, b)
        _, once = np.unique(a * len(tracks) + b, return_index=True)  # each pair tried once per round,
        once = np.sort(once[a[once] != b[once]])  # in the order of its first appearance
        a, b = a[once], b[once]
        a, b = a.tolist(), b.tolist()
        joint = []  # the unions fitted ENTRIES hits at a time
        for c in _chunks(length[a] + length[b]):
            joint += _fits(
                hits, [np.concatenate([members[p], members[q]]) for p, q in zip(a[c], b[c])], xy_mm, rz_mm
            ).tolist()
        grown: set[int] = set()
        later = []
        for p, q, ok in zip(a, b, joint):
            if p in grown or q in grown or p not in members or q not in members:  # changed in this round
                later.append((p, q))
            elif ok:
                members[p] = np.concatenate([members[p], members[q]])
                length[p] += length[q]
                del members[q]
                owner[owner == q] = p
                grown.add(p)
        first, second = (np.asarray(c, np.int64) for c in zip(*later)) if later else ((), ())
    return list(members.values())


def refine(
    hits: np.ndarray, tracks: list[np.ndarray], *, xy_mm: float, rz_mm: float, min_hits: int
) -> list[np.ndarray]:
    """``tracks`` (index arrays into ``hits``, (n, 3) in mm) split where they hold more than one
    helix and merged where two hold one (see the module docstring); sorted index arrays, in order
    of their first hit."""
    whole, params = _fitted(hits, list(tracks), xy_mm, rz_mm)
    cut = _split(hits, [t for t, ok in zip(tracks, whole) if not ok], xy_mm, rz_mm, min_hits)
    split = [t for t, ok in zip(tracks, whole) if ok] + cut
    params = np.concatenate([params[whole], fit(hits, cut)[2] if cut else np.zeros((0, 5))])  # each fitted once
    merged = _merge(hits, split, xy_mm, rz_mm, params)
    out = [np.sort(t) for t in merged]
    out.sort(key=lambda t: int(t[0]))
    return out
