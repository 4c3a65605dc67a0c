"""Truth-matched vertexing metrics, accumulated over events: ACTS-style classification (clean /
merged / split / fake) with a position fallback, LHCb/PV-Finder-style z-window efficiency and false
positives, its threshold scan over scored candidates, z resolution and the vertex-vertex
resolution (``VertexMetrics``); one event's view along z for the report (``EventView``).

The definitions are in the documentation: docs/metrics.md ("Vertexing metrics").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import awkward as ak
import numpy as np

from recotrig.edm import KDE, HitTruth, Particles, Tracks, TruthVertices, VertexDensity, Vertices
from recotrig.framework.lookup import group_starts, index_of
from recotrig.metrics.tracking import NO_PARTICLE, Accumulator, _ratio, match_tracks

__all__ = [
    "CLEAN",
    "MERGED",
    "SPLIT",
    "FAKE",
    "CLASS_NAMES",
    "NO_VERTEX",
    "SCAN_THRESHOLDS",
    "EventView",
    "VertexMatch",
    "VertexMetrics",
    "efficiency_at_fp",
    "match_vertices",
    "pair_efficiency",
    "particle_vertices",
    "reconstructable_counts",
    "robust_sigma",
    "track_truth_vertices",
    "vertex_vertex_resolution",
    "window_match",
]

CLEAN, MERGED, SPLIT, FAKE = 0, 1, 2, 3
CLASS_NAMES = ("clean", "merged", "split", "fake")
#: truth vertex id given where there is none
NO_VERTEX = -1

Reconstructable = Literal["auto", "column", "matched", "charged", "n_charged"]

#: the steps of the threshold scan, in units of the candidates' reference threshold (1: a finder's
#: operating point where its threshold is the same for every event), 20 per decade from 0.001 to
#: about 3000 (steps of 12 %: fine enough to read a curve at a few false positives in a hundred events)
SCAN_THRESHOLDS = tuple(float(10 ** (k / 20)) for k in range(-60, 71))
#: bins of the window z residual histogram, over [-z_window, z_window]
RESIDUAL_BINS = 100


# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------
def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray, default: int | float) -> np.ndarray:
    """``values`` at the position of each ``wanted`` key in ``keys`` (distinct), else default."""
    rows = index_of(keys, wanted)
    found = rows >= 0
    out = np.full(len(wanted), default, dtype=np.result_type(values, type(default)))
    out[found] = values[rows[found]]
    return out


def robust_sigma(residuals: np.ndarray) -> float:
    """1.4826 x median absolute deviation from the median (NaN for no residuals)."""
    r = np.asarray(residuals, dtype=np.float64)
    if len(r) == 0:
        return math.nan
    return float(1.4826 * np.median(np.abs(r - np.median(r))))


def _rms(residuals: np.ndarray) -> float:
    r = np.asarray(residuals, dtype=np.float64)
    return float(np.sqrt(np.mean(r * r))) if len(r) else math.nan


def _floats(values: Any) -> list[float | None]:
    """A curve's values as a list, NaN as None (as JSON writes it, and equal to itself)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, np.float64).ravel()]


def _pair_abs_dz(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    i, j = np.triu_indices(len(z), k=1)
    return np.abs(z[i] - z[j])


# ------------------------------------------------------------------------------------------------
# track -> truth vertex and reconstructable counts
# ------------------------------------------------------------------------------------------------
def _particle_vertex(particles: Particles) -> tuple[np.ndarray, np.ndarray]:
    if "vertex_id" not in particles:
        raise ValueError("Particles has no 'vertex_id' column: it is needed to map tracks to truth vertices")
    return np.asarray(particles["particle_id"], np.int64), np.asarray(particles["vertex_id"], np.int64)


def track_truth_vertices(
    tracks: Tracks,
    truth: HitTruth,
    particles: Particles,
    *,
    min_purity: float = 0.5,
    double_matching: bool = False,
) -> np.ndarray:
    """Truth vertex id of each track: track -> matched particle (``match_tracks``) ->
    ``Particles.vertex_id``; ``NO_VERTEX`` for fake tracks and particles not in ``particles``."""
    match = match_tracks(tracks, truth, min_purity=min_purity, double_matching=double_matching)
    return particle_vertices(match.matched_particle, particles)


def particle_vertices(track_particle: np.ndarray, particles: Particles) -> np.ndarray:
    """Truth vertex id of each track's matched particle (``NO_VERTEX`` for fakes and particles
    not in ``particles``)."""
    pid, vid = _particle_vertex(particles)
    out = _lookup(pid, vid, track_particle, NO_VERTEX)
    out[track_particle == NO_PARTICLE] = NO_VERTEX
    return out


def reconstructable_counts(
    truth_vertices: TruthVertices,
    *,
    source: Reconstructable = "auto",
    particles: Particles | None = None,
    track_particle: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Number of reconstructable tracks of each truth vertex and the source used (see the module
    docstring). ``track_particle`` is the matched particle id of each track (``NO_PARTICLE`` for
    fakes), needed for ``"matched"``. An empty ``truth_vertices`` gives no counts and source
    ``"none"``."""
    if len(truth_vertices) == 0:
        return np.zeros(0, dtype=np.int64), "none"
    has_vid = particles is not None and "vertex_id" in particles
    if source == "auto":
        if "n_reconstructable" in truth_vertices:
            source = "column"
        elif has_vid and track_particle is not None:
            source = "matched"
        elif has_vid:
            source = "charged"
        elif "n_charged" in truth_vertices:
            source = "n_charged"
        else:
            raise ValueError(
                "cannot tell which truth vertices are reconstructable: give TruthVertices.n_reconstructable, "
                "or Particles with a 'vertex_id' column, or TruthVertices.n_charged"
            )
    tv_id = np.asarray(truth_vertices["vertex_id"], np.int64)
    if source == "column":
        return np.asarray(truth_vertices["n_reconstructable"], np.int64), source
    if source == "n_charged":
        return np.asarray(truth_vertices["n_charged"], np.int64), source
    if particles is None:
        raise ValueError(f"reconstructable={source!r} needs particles")
    pid, vid = _particle_vertex(particles)
    if source == "matched":
        if track_particle is None:
            raise ValueError("reconstructable='matched' needs tracks and truth to match tracks to particles")
        chosen = np.isin(pid, track_particle[track_particle != NO_PARTICLE])
    elif source == "charged":
        chosen = np.asarray(particles["q"]) != 0
    else:
        raise ValueError(f"unknown reconstructable source {source!r}")
    ids, counts = np.unique(vid[chosen], return_counts=True)
    return _lookup(ids, counts, tv_id, 0), source


# ------------------------------------------------------------------------------------------------
# matching
# ------------------------------------------------------------------------------------------------
def window_match(reco_z: np.ndarray, truth_z: np.ndarray, *, window: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one pairs (reco index, truth index) with |dz| <= ``window``, taken closest first
    (ties: lower reco index, then lower truth index). Each vertex is in at most one pair."""
    reco_z = np.asarray(reco_z, dtype=np.float64)
    truth_z = np.asarray(truth_z, dtype=np.float64)
    dz = np.abs(reco_z[:, None] - truth_z[None, :])
    ri, ti = np.nonzero(dz <= window)
    order = np.lexsort((ti, ri, dz[ri, ti]))
    used_r = np.zeros(len(reco_z), dtype=bool)
    used_t = np.zeros(len(truth_z), dtype=bool)
    pairs_r, pairs_t = [], []
    for r, t in zip(ri[order], ti[order]):
        if not used_r[r] and not used_t[t]:
            used_r[r] = used_t[t] = True
            pairs_r.append(r)
            pairs_t.append(t)
    return np.asarray(pairs_r, dtype=np.int64), np.asarray(pairs_t, dtype=np.int64)


@dataclass(frozen=True)
class VertexMatch:
    """Per reconstructed vertex: ``truth_index`` (row in ``TruthVertices`` of its matched /
    majority truth vertex, -1 if none or not in the table), ``truth_id`` (its vertex id,
    ``NO_VERTEX`` if none), ``match_fraction`` (NaN in position mode), ``classification``
    (``CLEAN``, ``MERGED``, ``SPLIT``, ``FAKE``) and ``rank`` (the quantity that decided splits).
    ``mode`` is ``"tracks"`` or ``"position"``; ``rank_by`` ``"sumpt2"``, ``"weight"`` or
    ``"distance"`` (position mode: the closer vertex wins)."""

    mode: str
    truth_index: np.ndarray
    truth_id: np.ndarray
    match_fraction: np.ndarray
    classification: np.ndarray
    rank: np.ndarray
    rank_by: str

    def count(self, cls: int) -> int:
        return int(np.sum(self.classification == cls))

    def found_truth(self, *, clean_only: bool = False) -> np.ndarray:
        """Rows of truth vertices that are the match of a clean (or merged) vertex."""
        keep = self.classification == CLEAN if clean_only else np.isin(self.classification, (CLEAN, MERGED))
        rows = self.truth_index[keep]
        return np.unique(rows[rows >= 0])


def match_vertices(
    vertices: Vertices,
    truth_vertices: TruthVertices,
    *,
    tracks: Tracks | None = None,
    truth: HitTruth | None = None,
    particles: Particles | None = None,
    track_particle: np.ndarray | None = None,
    min_track_weight: float = 0.1,
    clean_fraction: float = 0.7,
    z_window: float = 0.5,
    reconstructable: np.ndarray | None = None,
) -> VertexMatch:
    """ACTS-style classification of each reconstructed vertex (module docstring). Uses the
    vertices' tracks when ``vertices`` has ``track_index`` and tracks can be matched to truth
    (``track_particle``, or ``tracks`` and ``truth``) and ``particles`` has ``vertex_id``;
    otherwise matches positions in z within ``z_window``. ``reconstructable`` (mask over truth
    vertices) limits which unpaired truth vertices make a position-matched vertex merged."""
    use_tracks = (
        "track_index" in vertices
        and particles is not None
        and "vertex_id" in particles
        and (track_particle is not None or (tracks is not None and truth is not None))
    )
    if not use_tracks:
        return _match_by_position(vertices, truth_vertices, window=z_window, reconstructable=reconstructable)
    if track_particle is None:
        track_particle = match_tracks(tracks, truth).matched_particle
    return _match_by_tracks(
        vertices,
        truth_vertices,
        track_vertex=particle_vertices(track_particle, particles),
        tracks=tracks,
        min_track_weight=min_track_weight,
        clean_fraction=clean_fraction,
    )


def _flat_vertex_tracks(vertices: Vertices, ntracks: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertex index, track index, track weight) of every track of every vertex."""
    index = vertices["track_index"]
    counts = np.asarray(ak.num(index, axis=1), np.int64)
    flat_track = np.asarray(ak.to_numpy(ak.flatten(index)), np.int64)
    if "track_weight" in vertices:
        weight = vertices["track_weight"]
        if not np.array_equal(np.asarray(ak.num(weight, axis=1)), counts):
            raise ValueError("Vertices: columns 'track_index' and 'track_weight' have different lengths per vertex")
        flat_weight = np.asarray(ak.to_numpy(ak.flatten(weight)), np.float64)
    else:
        flat_weight = np.ones(len(flat_track))
    if ntracks is not None and len(flat_track) and (flat_track.min() < 0 or flat_track.max() >= ntracks):
        raise ValueError(f"Vertices: column 'track_index' points outside the {ntracks} tracks")
    return np.repeat(np.arange(len(vertices), dtype=np.int64), counts), flat_track, flat_weight


def _match_by_tracks(
    vertices: Vertices,
    truth_vertices: TruthVertices,
    *,
    track_vertex: np.ndarray,
    tracks: Tracks | None,
    min_track_weight: float,
    clean_fraction: float,
) -> VertexMatch:
    nv = len(vertices)
    vtx, trk, w = _flat_vertex_tracks(vertices, len(track_vertex))
    used = w >= min_track_weight
    vtx, trk, w = vtx[used], trk[used], w[used]
    total = np.bincount(vtx, weights=w, minlength=nv)

    truth_id = np.full(nv, NO_VERTEX, dtype=np.int64)
    major_w = np.zeros(nv)
    tv = track_vertex[trk]
    known = tv != NO_VERTEX
    if known.any():
        v, t, ww = vtx[known], tv[known], w[known]
        order = np.lexsort((t, v))
        v, t, ww = v[order], t[order], ww[order]
        starts = group_starts(v, t)
        g_v, g_t, g_w = v[starts], t[starts], np.add.reduceat(ww, starts)
        best = np.lexsort((g_t, -g_w, g_v))
        first = best[group_starts(g_v[best])]
        truth_id[g_v[first]] = g_t[first]
        major_w[g_v[first]] = g_w[first]
    fraction = np.where(total > 0, major_w / np.where(total > 0, total, 1.0), 0.0)

    cls = np.where(fraction >= clean_fraction, CLEAN, MERGED)
    cls[truth_id == NO_VERTEX] = FAKE
    if tracks is not None and "qop" in tracks and "theta" in tracks:
        pt = np.abs(np.sin(np.asarray(tracks["theta"], np.float64)) / np.asarray(tracks["qop"], np.float64))
        rank = np.bincount(vtx, weights=pt[trk] ** 2, minlength=nv)
        rank_by = "sumpt2"
    else:
        rank, rank_by = total, "weight"
    _mark_splits(cls, truth_id, rank)
    tv_ids = np.asarray(truth_vertices["vertex_id"], np.int64)
    truth_index = _lookup(tv_ids, np.arange(len(tv_ids)), truth_id, -1)
    return VertexMatch("tracks", truth_index, truth_id, fraction, cls, rank, rank_by)


def _mark_splits(cls: np.ndarray, truth_id: np.ndarray, rank: np.ndarray) -> None:
    """Among non-fake vertices with the same truth vertex, all but the highest-ranked (lowest
    index on ties) become SPLIT (in place)."""
    cand = np.flatnonzero(cls != FAKE)
    order = cand[np.lexsort((cand, -rank[cand], truth_id[cand]))]
    if len(order) == 0:
        return
    starts = group_starts(truth_id[order])
    split = np.ones(len(order), dtype=bool)
    split[starts] = False
    cls[order[split]] = SPLIT


def _match_by_position(
    vertices: Vertices, truth_vertices: TruthVertices, *, window: float, reconstructable: np.ndarray | None
) -> VertexMatch:
    nv = len(vertices)
    reco_z = np.asarray(vertices["z"], np.float64)
    truth_z = np.asarray(truth_vertices["z"], np.float64)
    pr, pt = window_match(reco_z, truth_z, window=window)
    truth_index = np.full(nv, -1, dtype=np.int64)
    truth_index[pr] = pt
    near = np.abs(reco_z[:, None] - truth_z[None, :]) <= window
    cls = np.full(nv, FAKE, dtype=np.int64)
    cls[near.any(axis=1)] = SPLIT
    cls[pr] = CLEAN
    paired_truth = np.zeros(len(truth_z), dtype=bool)
    paired_truth[pt] = True
    eligible = np.ones(len(truth_z), dtype=bool) if reconstructable is None else np.asarray(reconstructable, bool)
    leftover = eligible & ~paired_truth
    merged = near[pr][:, leftover].any(axis=1) if len(pr) else np.zeros(0, dtype=bool)
    cls[pr[merged]] = MERGED
    # split vertices point at the truth vertex they lie next to (the closest one)
    split = np.flatnonzero(cls == SPLIT)
    if len(split):
        truth_index[split] = np.argmin(np.abs(reco_z[split, None] - truth_z[None, :]), axis=1)
    tv_ids = np.asarray(truth_vertices["vertex_id"], np.int64)
    truth_id = np.where(truth_index >= 0, tv_ids[np.maximum(truth_index, 0)] if len(tv_ids) else NO_VERTEX, NO_VERTEX)
    rank = np.full(nv, np.nan)
    rank[pr] = -np.abs(reco_z[pr] - truth_z[pt])
    return VertexMatch("position", truth_index, truth_id, np.full(nv, np.nan), cls, rank, "distance")


# ------------------------------------------------------------------------------------------------
# vertex-vertex resolution
# ------------------------------------------------------------------------------------------------
def pair_efficiency(
    reco_counts: np.ndarray,
    truth_counts: np.ndarray,
    edges: np.ndarray,
    *,
    plateau: tuple[float, float],
) -> tuple[np.ndarray, float]:
    """The pair-finding efficiency in each bin of pairwise |dz| (reco / truth pairs divided by
    its level in the plateau; NaN in bins without truth pairs, and everywhere when the plateau
    holds no pairs) and that level."""
    reco = np.asarray(reco_counts, np.float64)
    true = np.asarray(truth_counts, np.float64)
    centres = 0.5 * (edges[1:] + edges[:-1])
    in_plateau = (centres >= plateau[0]) & (centres <= plateau[1])
    level = _ratio(reco[in_plateau].sum(), true[in_plateau].sum())
    ratio = np.full(len(true), math.nan)
    ok = true > 0
    if level > 0:
        ratio[ok] = reco[ok] / true[ok] / level
    return ratio, level


def vertex_vertex_resolution(
    reco_counts: np.ndarray,
    truth_counts: np.ndarray,
    edges: np.ndarray,
    *,
    plateau: tuple[float, float],
) -> tuple[float, float]:
    """(vv_resolution, vv_sigma) from histograms of pairwise |dz| (docs/metrics.md)."""
    ratio, level = pair_efficiency(reco_counts, truth_counts, edges, plateau=plateau)
    if not level > 0:
        return math.nan, math.nan
    ok = np.isfinite(ratio)
    x = (0.5 * (edges[1:] + edges[:-1]))[ok]
    r = ratio[ok]
    above = np.flatnonzero(r >= 0.5)
    if len(above) == 0 or above[0] == 0:
        return math.nan, math.nan
    k = above[0]
    d50 = x[k - 1] + (0.5 - r[k - 1]) * (x[k] - x[k - 1]) / (r[k] - r[k - 1])
    return float(d50), float(d50 / math.sqrt(2.0 * math.log(2.0)))


#: resamples of the events behind the vertex-vertex resolutions' bootstrap errors (fixed seed)
BOOTSTRAP = 200


def _bootstrap_error(
    pairs: list[np.ndarray],
    truth_pairs: list[np.ndarray],
    edges: np.ndarray,
    *,
    plateau: tuple[float, float],
    resamples: int = BOOTSTRAP,
) -> float:
    """The standard deviation of ``vertex_vertex_resolution`` over ``resamples`` resamples (with
    replacement, a fixed seed) of the events, from their per-event pair histograms; NaN with fewer
    than two events or two finite resamples."""
    if len(pairs) < 2 or resamples < 2:
        return math.nan
    found, true = np.asarray(pairs, np.float64), np.asarray(truth_pairs, np.float64)
    rng = np.random.default_rng(0)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(found), len(found))
        values.append(vertex_vertex_resolution(found[pick].sum(0), true[pick].sum(0), edges, plateau=plateau)[0])
    values = np.asarray(values)
    values = values[np.isfinite(values)]
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


# ------------------------------------------------------------------------------------------------
# threshold scan and one event's view
# ------------------------------------------------------------------------------------------------
def efficiency_at_fp(scan: dict[str, Any], fp_per_event: float) -> float:
    """The efficiency of a threshold-scan curve (``VertexMetrics.result()["threshold_scan"]``:
    lists ``efficiency`` and ``fp_per_event``) at ``fp_per_event`` false positives per event,
    interpolated linearly between its steps (the best efficiency where steps share a false-positive
    rate); NaN outside the rates the scan reached."""
    fp = np.asarray(scan["fp_per_event"], np.float64)
    eff = np.asarray(scan["efficiency"], np.float64)
    ok = np.isfinite(fp) & np.isfinite(eff)
    x, inverse = np.unique(fp[ok], return_inverse=True)
    if len(x) == 0 or not x[0] <= fp_per_event <= x[-1]:
        return math.nan
    best = np.full(len(x), -np.inf)
    np.maximum.at(best, inverse, eff[ok])
    return float(np.interp(fp_per_event, x, best))


def _display(values: Any) -> list[float]:
    """Values for a figure, to 5 significant digits."""
    return [float(f"{v:.5g}") for v in np.asarray(values, np.float64)]


class EventView:
    """One event along z, for the report: its run and event number, the truth vertices' z and which
    are eligible for the window efficiency, each vertex collection's z and, where given, the KDE
    (``kde_a``) and a predicted vertex density (PV-Finder's network output), to 5 significant
    digits. Only the first event added is kept, and ``merge`` keeps the earlier one: merged in
    chunk order, the view is the run's first event whatever the executor."""

    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return self.data is None

    def add(
        self,
        *,
        run: int,
        event: int,
        truth_vertices: TruthVertices,
        eligible: np.ndarray,
        vertices: dict[str, Vertices],
        kde: KDE | None = None,
        density: VertexDensity | None = None,
    ) -> None:
        if self.data is not None:
            return
        data: dict[str, Any] = {
            "run_number": int(run),
            "event_id": int(event),
            "truth_z": _display(truth_vertices["z"]),
            "truth_eligible": [bool(e) for e in eligible],
            "vertices": {key: _display(v["z"]) for key, v in vertices.items()},
        }
        if kde is not None:
            data["kde"] = {"z": _display(kde["z"]), "kde_a": _display(kde["kde_a"])}
        if density is not None:
            data["density"] = {"z": _display(density["z"]), "density": _display(density["density"])}
        self.data = data

    def merge(self, other: EventView) -> EventView:
        if self.data is None:
            self.data = other.data
        return self

    def result(self) -> dict[str, Any] | None:
        return self.data


# ------------------------------------------------------------------------------------------------
# accumulator
# ------------------------------------------------------------------------------------------------
class VertexMetrics(Accumulator):
    """ACTS-style and window vertexing metrics, z and vertex-vertex resolution over events.

    ``add_event(vertices, truth_vertices, tracks=..., truth=..., particles=...)`` adds one
    event (the tracks, hit truth and particles are needed for track-based matching and for
    ``reconstructable="matched"``); ``candidates=`` (vertices with a ``score`` column, in units
    of one threshold shared by every event, e.g. PVFinder's reference threshold) adds the event
    to the threshold scan: the window efficiency and false positives of the candidates with
    score >= each of ``SCAN_THRESHOLDS``.
    ``merge`` adds accumulators; ``result()`` returns the rates, counts, resolutions and curves
    defined in docs/metrics.md.
    """

    COUNTS = (
        "n_events",
        "n_events_tracks",
        "n_events_position",
        "n_reco",
        "n_clean",
        "n_merged",
        "n_split",
        "n_fake",
        "n_truth",
        "n_reconstructable",
        "n_found",
        "n_found_clean",
        "n_window_eligible",
        "n_window_found",
        "n_window_fp",
        "n_window_paired_other",
        "n_scan_events",
        "n_scan_eligible",
        "n_separable_events",
        "time_s",
        "n_timed_events",
    )
    SAMPLES = (
        "z_residuals",
        "window_z_residuals",
        "vv_reco_pairs",
        "vv_truth_pairs",
        "vv_found_pairs",
        "vv_separable_pairs",
        "scan_found",
        "scan_fp",
    )

    def __init__(
        self,
        *,
        min_tracks: int = 2,
        window_min_tracks: int = 5,
        z_window: float = 0.5,
        min_track_weight: float = 0.1,
        clean_fraction: float = 0.7,
        min_purity: float = 0.5,
        reconstructable: Reconstructable = "auto",
        dz_bin: float = 0.05,
        dz_max: float = 6.0,
        plateau: tuple[float, float] = (3.0, 6.0),
        separable_sigma: float = 3.0,
        bootstrap: int = BOOTSTRAP,
    ) -> None:
        super().__init__(
            min_tracks=int(min_tracks),
            window_min_tracks=int(window_min_tracks),
            z_window=float(z_window),
            min_track_weight=float(min_track_weight),
            clean_fraction=float(clean_fraction),
            min_purity=float(min_purity),
            reconstructable=reconstructable,
            dz_bin=float(dz_bin),
            dz_max=float(dz_max),
            plateau=(float(plateau[0]), float(plateau[1])),
            separable_sigma=float(separable_sigma),
            bootstrap=int(bootstrap),
        )
        self.sources: dict[str, int] = {}

    @property
    def edges(self) -> np.ndarray:
        nbins = round(self.config["dz_max"] / self.config["dz_bin"])
        return np.linspace(0.0, nbins * self.config["dz_bin"], nbins + 1)

    def merge(self, other: Accumulator) -> VertexMetrics:
        super().merge(other)
        for key, n in other.sources.items():  # type: ignore[attr-defined]
            self.sources[key] = self.sources.get(key, 0) + n
        return self

    def add_event(
        self,
        vertices: Vertices,
        truth_vertices: TruthVertices,
        *,
        tracks: Tracks | None = None,
        truth: HitTruth | None = None,
        particles: Particles | None = None,
        candidates: Vertices | None = None,
        time_s: float | None = None,
    ) -> VertexMatch:
        """Add one event; returns its ``VertexMatch``."""
        cfg = self.config
        track_particle = self._track_particle(tracks, truth)
        ntrk, source = reconstructable_counts(
            truth_vertices, source=cfg["reconstructable"], particles=particles, track_particle=track_particle
        )
        if source != "none":  # an event without truth vertices says nothing about the source
            self.sources[source] = self.sources.get(source, 0) + 1
        recoable = ntrk >= cfg["min_tracks"]
        match = match_vertices(
            vertices,
            truth_vertices,
            tracks=tracks,
            particles=particles,
            track_particle=track_particle,
            min_track_weight=cfg["min_track_weight"],
            clean_fraction=cfg["clean_fraction"],
            z_window=cfg["z_window"],
            reconstructable=recoable,
        )
        self._count_acts(match, vertices, truth_vertices, recoable)
        # window-matched truth vertices, each to a reconstructed vertex of its own
        found = self._count_window(vertices, truth_vertices, ntrk >= cfg["window_min_tracks"])
        if candidates is not None:
            self._count_scan(candidates, truth_vertices, ntrk >= cfg["window_min_tracks"])
        truth_z = np.asarray(truth_vertices["z"], np.float64)
        self.samples["vv_reco_pairs"].append(self._pair_histogram(vertices["z"]))
        self.samples["vv_truth_pairs"].append(self._pair_histogram(truth_z[recoable]))
        self.samples["vv_found_pairs"].append(self._pair_histogram(truth_z[recoable & found]))
        separable = self._separable_pairs(tracks, track_particle, particles, truth_vertices, recoable)
        if separable is not None:
            self.samples["vv_separable_pairs"].append(separable)
            self.counts["n_separable_events"] += 1
        self._add_time(time_s)
        return match

    def _track_particle(self, tracks: Tracks | None, truth: HitTruth | None) -> np.ndarray | None:
        if tracks is None or truth is None:
            return None
        return match_tracks(tracks, truth, min_purity=self.config["min_purity"]).matched_particle

    def window_eligible(
        self,
        truth_vertices: TruthVertices,
        *,
        tracks: Tracks | None = None,
        truth: HitTruth | None = None,
        particles: Particles | None = None,
    ) -> np.ndarray:
        """Which truth vertices count in the window efficiency (>= ``window_min_tracks``
        reconstructable tracks), as ``add_event`` decides for the same arguments."""
        ntrk, _ = reconstructable_counts(
            truth_vertices,
            source=self.config["reconstructable"],
            particles=particles,
            track_particle=self._track_particle(tracks, truth),
        )
        return ntrk >= self.config["window_min_tracks"]

    def _pair_histogram(self, z: np.ndarray) -> np.ndarray:
        counts, _ = np.histogram(_pair_abs_dz(z), bins=self.edges)
        return counts.astype(np.int64)

    def _separable_pairs(
        self,
        tracks: Tracks | None,
        track_particle: np.ndarray | None,
        particles: Particles | None,
        truth_vertices: TruthVertices,
        recoable: np.ndarray,
    ) -> np.ndarray | None:
        """Histogram of the |dz| of the truth pairs whose own tracks' z0 tell them apart (docs/metrics.md,
        "The tracks' own limit"); None without fitted tracks, hit truth and particles."""
        if tracks is None or track_particle is None or particles is None or "cov" not in tracks:
            return None
        vertex = particle_vertices(track_particle, particles)
        z0 = np.asarray(tracks["z0"], np.float64)
        var = np.asarray(tracks["cov"], np.float64).reshape(len(z0), 6, 6)[:, 1, 1]
        ids = np.asarray(truth_vertices["vertex_id"], np.int64)[recoable]
        truth_z = np.asarray(truth_vertices["z"], np.float64)[recoable]
        at = _lookup(ids, np.arange(len(ids)), vertex, -1)
        ok = (at >= 0) & np.isfinite(z0) & np.isfinite(var) & (var > 0)
        # each truth vertex's inverse-variance weighted mean z0 of its tracks, and that mean's variance
        weight = np.bincount(at[ok], weights=1.0 / var[ok], minlength=len(ids))
        mean = np.divide(
            np.bincount(at[ok], weights=z0[ok] / var[ok], minlength=len(ids)),
            weight,
            out=np.zeros(len(ids)),
            where=weight > 0,
        )
        i, j = np.triu_indices(len(ids), 1)
        both = (weight[i] > 0) & (weight[j] > 0)
        i, j = i[both], j[both]
        error = np.sqrt(1.0 / weight[i] + 1.0 / weight[j])
        apart = np.abs(mean[i] - mean[j]) >= self.config["separable_sigma"] * error
        counts, _ = np.histogram(np.abs(truth_z[i] - truth_z[j])[apart], bins=self.edges)
        return counts.astype(np.int64)

    def _count_acts(
        self, match: VertexMatch, vertices: Vertices, truth_vertices: TruthVertices, recoable: np.ndarray
    ) -> None:
        c = self.counts
        c["n_events"] += 1
        c["n_events_tracks" if match.mode == "tracks" else "n_events_position"] += 1
        c["n_reco"] += len(vertices)
        for cls, name in enumerate(CLASS_NAMES):
            c[f"n_{name}"] += match.count(cls)
        c["n_truth"] += len(truth_vertices)
        c["n_reconstructable"] += int(recoable.sum())
        c["n_found"] += int(recoable[match.found_truth()].sum())
        c["n_found_clean"] += int(recoable[match.found_truth(clean_only=True)].sum())
        clean = np.flatnonzero((match.classification == CLEAN) & (match.truth_index >= 0))
        dz = np.asarray(vertices["z"])[clean] - np.asarray(truth_vertices["z"])[match.truth_index[clean]]
        self.samples["z_residuals"].append(dz.astype(np.float64))

    def _window(
        self, reco_z: np.ndarray, truth_z: np.ndarray, eligible: np.ndarray
    ) -> tuple[int, int, int, np.ndarray, np.ndarray]:
        """Window matching of one event: eligible truth vertices found, reconstructed vertices
        paired with a non-eligible one, false positives, the residuals of the found ones, and the
        indices of every matched truth vertex."""
        pr, pt = window_match(reco_z, truth_z, window=self.config["z_window"])
        good = eligible[pt]
        residuals = reco_z[pr[good]] - truth_z[pt[good]]
        return int(good.sum()), int((~good).sum()), len(reco_z) - len(pr), residuals, pt

    def _count_window(self, vertices: Vertices, truth_vertices: TruthVertices, eligible: np.ndarray) -> np.ndarray:
        """Adds the event's window counts; returns which truth vertices were matched."""
        c = self.counts
        reco_z, truth_z = np.asarray(vertices["z"], np.float64), np.asarray(truth_vertices["z"], np.float64)
        found, other, fp, residuals, matched = self._window(reco_z, truth_z, eligible)
        c["n_window_eligible"] += int(eligible.sum())
        c["n_window_found"] += found
        c["n_window_paired_other"] += other
        c["n_window_fp"] += fp
        self.samples["window_z_residuals"].append(residuals)
        mask = np.zeros(len(truth_z), bool)
        mask[matched] = True
        return mask

    def _count_scan(self, candidates: Vertices, truth_vertices: TruthVertices, eligible: np.ndarray) -> None:
        """Window counts of the candidates with score >= each step of ``SCAN_THRESHOLDS`` (taken
        in their own order: PVFinder's are in z, as the vertices it gives at that threshold)."""
        if "score" not in candidates:
            raise ValueError(f"threshold-scan candidates have no 'score' column; they have {candidates.names}")
        score = np.asarray(candidates["score"], np.float64)
        reco_z, truth_z = np.asarray(candidates["z"], np.float64), np.asarray(truth_vertices["z"], np.float64)
        found = np.zeros(len(SCAN_THRESHOLDS), np.int64)
        fp = np.zeros(len(SCAN_THRESHOLDS), np.int64)
        counted: dict[int, tuple[int, int]] = {}  # the same number above two steps: the same set
        for step, threshold in enumerate(SCAN_THRESHOLDS):
            chosen = score >= threshold
            n = int(chosen.sum())
            if n not in counted:
                f, _, p, _, _ = self._window(reco_z[chosen], truth_z, eligible)
                counted[n] = (f, p)
            found[step], fp[step] = counted[n]
        self.counts["n_scan_events"] += 1
        self.counts["n_scan_eligible"] += int(eligible.sum())
        self.samples["scan_found"].append(found)
        self.samples["scan_fp"].append(fp)

    def _matching(self) -> str:
        c = self.counts
        if c["n_events_tracks"] and c["n_events_position"]:
            return "mixed"
        return "position" if c["n_events_position"] else "tracks" if c["n_events_tracks"] else "none"

    def result(self) -> dict[str, Any]:
        c = self.counts
        z = self.sample("z_residuals")
        wz = self.sample("window_z_residuals")
        reco_pairs = np.sum(self.samples["vv_reco_pairs"], axis=0) if self.samples["vv_reco_pairs"] else None
        truth_pairs = np.sum(self.samples["vv_truth_pairs"], axis=0) if self.samples["vv_truth_pairs"] else None
        vv = found_vv = separable_vv = (math.nan, math.nan)
        separable = None
        errors = {
            "vv_resolution_error": math.nan,
            "vv_found_resolution_error": math.nan,
            "vv_separable_resolution_error": math.nan,
        }
        curves: dict[str, Any] = {}
        if reco_pairs is not None:
            vv = vertex_vertex_resolution(reco_pairs, truth_pairs, self.edges, plateau=self.config["plateau"])
            found_pairs = np.sum(self.samples["vv_found_pairs"], axis=0)
            found_vv = vertex_vertex_resolution(found_pairs, truth_pairs, self.edges, plateau=self.config["plateau"])
            figures = [("vv_resolution", "vv_reco_pairs"), ("vv_found_resolution", "vv_found_pairs")]
            if c["n_separable_events"] == c["n_events"]:  # every event had fitted tracks and hit truth
                separable = np.sum(self.samples["vv_separable_pairs"], axis=0)
                separable_vv = vertex_vertex_resolution(
                    separable, truth_pairs, self.edges, plateau=self.config["plateau"]
                )
                figures.append(("vv_separable_resolution", "vv_separable_pairs"))
            errors.update(
                {
                    f"{name}_error": _bootstrap_error(
                        self.samples[key],
                        self.samples["vv_truth_pairs"],
                        self.edges,
                        plateau=self.config["plateau"],
                        resamples=self.config["bootstrap"],
                    )
                    for name, key in figures
                }
            )

            def curve(pairs: np.ndarray) -> dict[str, Any]:
                ratio, level = pair_efficiency(pairs, truth_pairs, self.edges, plateau=self.config["plateau"])
                return {"edges": self.edges.tolist(), "ratio": _floats(ratio), "plateau_level": _floats([level])[0]}

            curves["vv_pair_efficiency"] = {
                **curve(reco_pairs),
                "reco_pairs": reco_pairs.tolist(),
                "truth_pairs": truth_pairs.tolist(),
            }
            curves["vv_found_pair_efficiency"] = {**curve(found_pairs), "found_pairs": found_pairs.tolist()}
            if separable is not None:
                curves["vv_separable_pair_efficiency"] = {**curve(separable), "separable_pairs": separable.tolist()}
        if self.config["z_window"] > 0:
            edges = np.linspace(-self.config["z_window"], self.config["z_window"], RESIDUAL_BINS + 1)
            curves["window_z_residual_hist"] = {"edges": edges.tolist(), "counts": np.histogram(wz, edges)[0].tolist()}
        if c["n_scan_events"]:
            curves["threshold_scan"] = {
                "threshold": list(SCAN_THRESHOLDS),
                "efficiency": _floats([_ratio(f, c["n_scan_eligible"]) for f in np.sum(self.samples["scan_found"], 0)]),
                "fp_per_event": _floats(np.sum(self.samples["scan_fp"], axis=0) / c["n_scan_events"]),
            }
        return {
            "matching": self._matching(),
            "reconstructable_source": "+".join(sorted(self.sources)) or "none",
            "efficiency": _ratio(c["n_found"], c["n_reconstructable"]),
            "efficiency_clean": _ratio(c["n_found_clean"], c["n_reconstructable"]),
            "clean_rate": _ratio(c["n_clean"], c["n_reco"]),
            "merge_rate": _ratio(c["n_merged"], c["n_reco"]),
            "split_rate": _ratio(c["n_split"], c["n_reco"]),
            "fake_rate": _ratio(c["n_fake"], c["n_reco"]),
            "window_efficiency": _ratio(c["n_window_found"], c["n_window_eligible"]),
            "window_fp_per_event": _ratio(c["n_window_fp"], c["n_events"]),
            "z_sigma_core": robust_sigma(z),
            "z_rms": _rms(z),
            "n_z_residuals": len(z),
            "window_z_sigma_core": robust_sigma(wz),
            "window_z_rms": _rms(wz),
            "n_window_z_residuals": len(wz),
            "vv_resolution": vv[0],
            "vv_sigma": vv[1],
            "vv_found_resolution": found_vv[0],
            "vv_separable_resolution": separable_vv[0],
            **errors,
            "ms_per_event": self._ms_per_event(),
            **{k: (float(v) if k == "time_s" else int(v)) for k, v in c.items()},
            **self.config,
            **curves,
        }
