"""Track candidates checked against the helix a particle from the beam line draws (numpy; the
fits' loops compiled with numba, ``compiled``).

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

from recotrig.models.trackformer.compiled import compiled

__all__ = ["MERGE_PHI", "MERGE_SLOPE", "fit", "refine"]

#: merge candidates: their mean hit phi within this (rad), their slopes dz/ds within this x (1 + the larger |slope|)
MERGE_PHI = 0.3
MERGE_SLOPE = 0.3
#: two hits closer than this in r and z (mm; a module overlap's double hit) define no helix
PAIR_MIN_MM = 5.0
#: a candidate's hits a helix is drawn through, at most (``_probe``)
PROBE_HITS = 48
#: the pair search's first test takes the hits within xy_mm + this (mm) of the circle: far more than
#: the rounding of its plain square root against the exact test's hypot (``_best_pairs_kernel``)
NEAR_MARGIN = 1e-6
#: hits of the merge's unions, or near pairs, evaluated at once, at most: a full mu = 200
#: crossing's million near pairs fitted at once took 2 GB
ENTRIES = 1 << 21


@compiled
def _arc(r, radius):  # pragma: no cover (compiled)
    """Arc length from the origin on a circle through it of ``radius`` to radius ``r``."""
    sine = r / (2.0 * radius)
    if sine < 0.0:
        sine = 0.0
    elif sine > 1.0:
        sine = 1.0
    return 2.0 * radius * np.arcsin(sine)


@compiled
def _larger(largest, value):  # pragma: no cover (compiled)
    """The running maximum, nan once any value was nan (as numpy's maximum)."""
    return value if largest == largest and (value > largest or value != value) else largest


class _Columns:
    """An event's hits as the fits read them, computed once per ``refine``: float64 x, y, z, r."""

    def __init__(self, hits: np.ndarray):
        self.x, self.y, self.z = (np.ascontiguousarray(hits[:, i], np.float64) for i in range(3))
        self.r = np.hypot(self.x, self.y)


def _layout(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The groups end to end: their indices and the groups' start offsets (groups + 1, from 0)."""
    offsets = np.zeros(len(groups) + 1, np.int64)
    np.cumsum(np.fromiter(map(len, groups), np.int64, len(groups)), out=offsets[1:])
    return np.concatenate(groups).astype(np.int64, copy=False), offsets


def fit(hits: np.ndarray, groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The helix through the beam line fitted to each group of ``hits`` ((n, 3) in mm; index
    arrays of >= 1 hit), all groups at once: per group the largest distance of its hits to its
    circle in x-y and to its line in (s, z), and (a, b, z0, slope, phi of the hits' mean) as a
    (groups, 5) array. A group at one radius gets slope 0 through its mean z; one whose hits line
    up with the origin, an infinite circle (a straight line); one with a hit on the beam line, nan."""
    return _fit(_Columns(hits), groups)


def _fit(c: _Columns, groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``fit`` on an event's ``_Columns``."""
    return _fit_kernel(c.x, c.y, c.z, c.r, *_layout(groups))


@compiled
def _fit_kernel(x, y, z, r, index, offsets):  # pragma: no cover (compiled)
    """``fit``, group by group (group k: ``index[offsets[k]:offsets[k + 1]]``)."""
    groups = len(offsets) - 1
    dxy, drz, params = np.full(groups, -np.inf), np.full(groups, -np.inf), np.empty((groups, 5))
    for k in range(groups):
        hits = index[offsets[k] : offsets[k + 1]]
        n = len(hits)
        suu = suv = svv = sur = svr = sx = sy = 0.0
        for h in hits:  # the circle x^2 + y^2 = 2 a x + 2 b y, each hit's equation divided by r
            u, v = 2.0 * x[h] / r[h], 2.0 * y[h] / r[h]
            suu, suv, svv, sur, svr = suu + u * u, suv + u * v, svv + v * v, sur + u * r[h], svr + v * r[h]
            sx, sy = sx + x[h], sy + y[h]
        det = suu * svv - suv * suv
        line = abs(det) <= 1e-12 * (suu * svv + 1e-300)  # one direction from the origin
        a = np.inf if line else (sur * svv - svr * suv) / det
        b = np.inf if line else (svr * suu - sur * suv) / det
        radius = np.hypot(a, b)
        phi = np.arctan2(sy, sx)  # a straight track's heading: its hits' mean direction
        ss = sz = sss = ssz = 0.0
        for h in hits:
            s = r[h] if line else _arc(r[h], radius)
            ss, sz, sss, ssz = ss + s, sz + z[h], sss + s * s, ssz + s * z[h]
        spread = n * sss - ss * ss
        slope = 0.0 if spread <= 1e-9 * (n * sss + 1e-300) else (n * ssz - ss * sz) / spread
        z0 = (sz - slope * ss) / n
        norm = np.hypot(1.0, slope)
        for h in hits:
            s = r[h] if line else _arc(r[h], radius)
            if line:
                dxy[k] = _larger(dxy[k], abs(x[h] * np.sin(phi) - y[h] * np.cos(phi)))
            else:
                dxy[k] = _larger(dxy[k], abs(np.hypot(x[h] - a, y[h] - b) - radius))
            drz[k] = _larger(drz[k], abs(z[h] - z0 - slope * s) / norm)
        params[k] = a, b, z0, slope, phi
    return dxy, drz, params


def _fits(c: _Columns, groups: list[np.ndarray], xy_mm: float, rz_mm: float) -> np.ndarray:
    """Per group: do all its hits lie within the distances of its helix (a group of 2 always does)."""
    return _fitted(c, groups, xy_mm, rz_mm)[0]


def _fitted(c: _Columns, groups: list[np.ndarray], xy_mm: float, rz_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """``_fits`` and the helices' parameters (``fit``'s third result)."""
    if not groups:
        return np.zeros(0, bool), np.zeros((0, 5))
    dxy, drz, params = _fit(c, groups)
    return _fitting(dxy, drz, np.fromiter(map(len, groups), np.int64, len(groups)), xy_mm, rz_mm), params


def _fitting(dxy: np.ndarray, drz: np.ndarray, lengths: np.ndarray, xy_mm: float, rz_mm: float) -> np.ndarray:
    """Per fitted group (``fit``'s largest distances, its hit count): all its hits within the
    distances of its helix; a group of 2 always."""
    return ((dxy < xy_mm) & (drz < rz_mm)) | (lengths < 3)


@lru_cache(maxsize=256)
def _probe(n: int) -> np.ndarray:
    """The positions of a candidate's hits a helix is drawn through: all n, or ``PROBE_HITS``
    spread evenly over a larger candidate (a candidate of many particles, as in a dense event's
    poor output, would otherwise cost n^3). Cached by n: read only."""
    probe = np.linspace(0, n - 1, min(n, PROBE_HITS)).astype(np.int64)
    probe.flags.writeable = False
    return probe


def _best_pairs(c: _Columns, groups: list[np.ndarray], xy_mm: float, rz_mm: float) -> list[np.ndarray | None]:
    """Per group (index arrays into the event's hits), of the helices through the origin and two of
    its probed hits (``_probe``), the one within the distances of the most of its hits (the smaller
    summed scaled distance among equals, the first pair among full equals): those hits as a mask
    over the group (None: no pair holds a hit)."""
    index, offsets = _layout(groups)
    probes, probe_offsets = _layout([_probe(len(g)) for g in groups])
    inside, found = _best_pairs_kernel(c.x, c.y, c.z, c.r, index, offsets, probes, probe_offsets, xy_mm, rz_mm)
    return [inside[offsets[k] : offsets[k + 1]] if found[k] else None for k in range(len(groups))]


@compiled
def _within(x, y, z, r, h, a, b, radius, slope, z0, norm, xy_mm, rz_mm):  # pragma: no cover (compiled)
    """Hit h's distances to the helix (a, b, radius; slope, z0; norm = hypot(1, slope)) scaled by
    the tolerances and summed where it lies within both, else -1; the (s, z) distance only for a
    hit near the circle. A nan slope (no line) holds no hit."""
    dxy = abs(np.hypot(x[h] - a, y[h] - b) - radius)
    if dxy < xy_mm:
        drz = abs(z[h] - z0 - slope * _arc(r[h], radius)) / norm
        if drz < rz_mm:
            return dxy / xy_mm + drz / rz_mm
    return -1.0


@compiled
def _best_pairs_kernel(x, y, z, r, index, offsets, probes, probe_offsets, xy_mm, rz_mm):  # pragma: no cover
    """``_best_pairs`` group by group: the pairs (i, j), i < j, of the group's probed positions
    in order; two hits closer than ``PAIR_MIN_MM`` in r and z, or in line with the origin, make
    no helix; a hit is inside when within ``xy_mm`` of the circle and ``rz_mm`` of the line.
    Two shortcuts that change no result: a first, branch-free loop over the group's hits (copied
    side by side) finds those near the circle, by a distance whose rounding lies far within
    ``NEAR_MARGIN`` of the exact one; a pair with fewer near hits than the best pair's count is
    left there, and the exact test runs on the near hits only (in their order: the same sums). A
    pair is also left as soon as the near hits still to test cannot bring it level with the best."""
    inside = np.zeros(len(index), np.bool_)
    found = np.zeros(len(offsets) - 1, np.bool_)
    longest = 0
    for k in range(len(offsets) - 1):
        longest = max(longest, offsets[k + 1] - offsets[k])
    gx, gy, near = np.empty(longest), np.empty(longest), np.empty(longest, np.int64)
    loose = xy_mm + NEAR_MARGIN
    for k in range(len(offsets) - 1):
        hits = index[offsets[k] : offsets[k + 1]]
        n = len(hits)
        for t in range(n):
            gx[t], gy[t] = x[hits[t]], y[hits[t]]
        probe = probes[probe_offsets[k] : probe_offsets[k + 1]]
        best, best_spread, best_pair = 0, 0.0, (0.0, 0.0, 0.0, 0.0, 0.0)
        for p in range(len(probe)):
            i = hits[probe[p]]
            for q in range(p + 1, len(probe)):
                j = hits[probe[q]]
                det = 4.0 * (x[i] * y[j] - x[j] * y[i])  # the circle through the origin and hits i, j
                if not (abs(r[i] - r[j]) >= PAIR_MIN_MM or abs(z[i] - z[j]) >= PAIR_MIN_MM) or not abs(det) > 1e-9:
                    continue
                a = 2.0 * (r[i] ** 2 * y[j] - r[j] ** 2 * y[i]) / det
                b = 2.0 * (x[i] * r[j] ** 2 - x[j] * r[i] ** 2) / det
                radius = np.hypot(a, b)
                m = 0  # the hits near the circle: near[:m]
                for t in range(n):
                    dx, dy = gx[t] - a, gy[t] - b
                    near[m] = t
                    m += abs(np.sqrt(dx * dx + dy * dy) - radius) < loose
                if m < best:  # it cannot hold as many hits as the best
                    continue
                si, sj = _arc(r[i], radius), _arc(r[j], radius)
                slope = (z[j] - z[i]) / (sj - si) if abs(sj - si) > 1e-9 else np.nan
                z0 = z[i] - slope * si
                norm = np.hypot(1.0, slope)
                count, spread = 0, 0.0
                for u in range(m):
                    if count + m - u < best:  # it can no longer hold as many hits as the best
                        break
                    d = _within(x, y, z, r, hits[near[u]], a, b, radius, slope, z0, norm, xy_mm, rz_mm)
                    if d >= 0.0:
                        count += 1
                        spread += d
                if count > best or (count == best and count and spread < best_spread):
                    best, best_spread, best_pair = count, spread, (a, b, radius, slope, z0)
        if not best:
            continue
        found[k] = True
        a, b, radius, slope, z0 = best_pair
        norm = np.hypot(1.0, slope)
        for t in range(n):
            inside[offsets[k] + t] = _within(x, y, z, r, hits[t], a, b, radius, slope, z0, norm, xy_mm, rz_mm) >= 0.0
    return inside, found


def _chunks(costs: np.ndarray | list[int]) -> Iterator[slice]:
    """Consecutive slices of items whose ``costs`` sum to at most ``ENTRIES`` (an item that costs
    more alone is a slice of its own): how every batched evaluation here keeps its memory bounded."""
    upto = np.cumsum(costs)
    lo = 0
    while lo < len(upto):
        hi = max(lo + 1, int(np.searchsorted(upto, (upto[lo - 1] if lo else 0) + ENTRIES, side="right")))
        yield slice(lo, hi)
        lo = hi


def _split(c: _Columns, groups: list[np.ndarray], xy_mm: float, rz_mm: float, min_hits: int) -> list[np.ndarray]:
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
        for g, inside in zip(pending, _best_pairs(c, pending, xy_mm, rz_mm)):
            if inside is None or inside.sum() < min_hits or (~inside).sum() < min_hits:
                done.append(g)
            else:
                done.append(g[inside])
                rests.append(g[~inside])
        whole = _fits(c, rests, xy_mm, rz_mm)
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


def _union_fits(
    c: _Columns, members: dict[int, np.ndarray], a: np.ndarray, b: np.ndarray, xy_mm: float, rz_mm: float
) -> np.ndarray:
    """``_fits`` of the unions ``members[a[k]]`` then ``members[b[k]]`` (each pair's hits end to
    end), laid out with array operations rather than one concatenation per pair, and fitted
    ``ENTRIES`` hits at a time."""
    ids = np.fromiter(members, np.int64, len(members))
    flat, starts = _layout(list(members.values()))
    slot = np.zeros(int(ids.max()) + 1, np.int64)
    slot[ids] = np.arange(len(ids))
    sa, sb = slot[a], slot[b]
    la, lb = starts[sa + 1] - starts[sa], starts[sb + 1] - starts[sb]
    fits = []
    for k in _chunks(la + lb):
        lengths = la[k] + lb[k]
        offsets = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        at = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths)  # each hit's place in its union
        cut = np.repeat(la[k], lengths)
        source = np.where(
            at < cut, np.repeat(starts[sa[k]], lengths) + at, np.repeat(starts[sb[k]], lengths) + at - cut
        )
        dxy, drz, _ = _fit_kernel(c.x, c.y, c.z, c.r, flat[source], offsets)
        fits.append(_fitting(dxy, drz, lengths, xy_mm, rz_mm))
    return np.concatenate(fits) if fits else np.zeros(0, bool)


def _merge(c: _Columns, tracks: list[np.ndarray], xy_mm: float, rz_mm: float, params: np.ndarray) -> list[np.ndarray]:
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
    while len(first):
        a, b = owner[first], owner[second]
        a, b = np.minimum(a, b), np.maximum(a, b)
        _, once = np.unique(a * len(tracks) + b, return_index=True)  # each pair tried once per round,
        once = np.sort(once[a[once] != b[once]])  # in the order of its first appearance
        a, b = a[once], b[once]
        joint = _union_fits(c, members, a, b, xy_mm, rz_mm).tolist()
        a, b = a.tolist(), b.tolist()
        grown: set[int] = set()
        later = []
        for p, q, ok in zip(a, b, joint):
            if p in grown or q in grown or p not in members or q not in members:  # changed in this round
                later.append((p, q))
            elif ok:
                members[p] = np.concatenate([members[p], members[q]])
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
    c = _Columns(hits)
    whole, params = _fitted(c, list(tracks), xy_mm, rz_mm)
    cut = _split(c, [t for t, ok in zip(tracks, whole) if not ok], xy_mm, rz_mm, min_hits)
    split = [t for t, ok in zip(tracks, whole) if ok] + cut
    params = np.concatenate([params[whole], _fit(c, cut)[2] if cut else np.zeros((0, 5))])  # each fitted once
    merged = _merge(c, split, xy_mm, rz_mm, params)
    out = [np.sort(t) for t in merged]
    out.sort(key=lambda t: int(t[0]))
    return out
