"""Truth-matched tracking metrics: the TrackML score, track-to-particle matching, efficiency,
fake and duplicate rates, accumulated over events.

Everything here works on the event data model (``recotrig.edm``) with numpy/awkward only.

Definitions
-----------
*TrackML score* (``trackml_score``) -- the metric of the Kaggle TrackML challenge, as implemented
by ``score_event`` in the official trackml-library (github.com/LAL/trackml-library,
``trackml/score.py``) and described in S. Amrouche et al., "The Tracking Machine Learning
challenge: Accuracy phase", arXiv:1904.06778 (2019), section 3. Each reconstructed track is
given the particle that contributes most of its hits (its *majority particle*). The track counts
when strictly more than half of its hits come from that particle and strictly more than half of
that particle's hits (counted in the truth table) are on the track. The score is the sum of the
truth weights of the hits shared by each counted track and its majority particle, divided by the
total weight of all hits of the event. Weights come from ``trackml_weights`` (the official
weighting scheme) or from ``HitTruth.weight``.

*Track matching* (``match_tracks``) -- the conventions of ACTS's ``TrackTruthMatcher`` and
``TrackFinderPerformanceWriter`` (ACTS Examples): the majority particle of a track is the particle
(noise, particle 0, excluded) with most hits on it; the track *purity* is that particle's share of
all hits on the track. A track is *matched* when ``purity >= min_purity`` (ACTS
``matchingRatio = 0.5``; with ``double_matching=True`` it must also hold at least ``min_purity``
of the particle's hits, ACTS ``doubleMatching``), otherwise it is *fake*. When several matched
tracks share a majority particle, the best one (most hits from the particle, then highest purity,
then lowest chi2 when the tracks carry one, then lowest index) is *the* match and the others are
*duplicates*.

*Rates* (``tracking_performance``, ``TrackingMetrics``) -- efficiency = reconstructable particles
matched by at least one (non-fake) track / reconstructable particles, where a particle is
reconstructable when it is charged, has pT >= ``min_pt`` and leaves >= ``min_hits`` hits in
``HitTruth``; fake rate = fake tracks / all tracks; duplicate rate = duplicate tracks / all
tracks (ACTS ``fakeratio_tracks`` and ``duplicateratio_tracks``).

*Binned rates* (``TrackingMetrics.result()["binned"]``) -- the same in bins of the particle's pT
(``PT_EDGES``, GeV; every pT, the other reconstructable cuts kept) and |eta| (``ETA_EDGES``;
pT >= ``min_pt``): the efficiency over the reconstructable particles of a bin, the fake and
duplicate rates over the tracks whose majority particle falls in it (a track whose majority
particle is not among the particles given is in no bin).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import awkward as ak
import numpy as np

from recotrig.edm import Hits, HitTruth, Particles, Tracks
from recotrig.edm.truth import NOISE_PARTICLE_ID, TRACKML_ORDER_PROPOSAL, trackml_weights
from recotrig.framework.lookup import DuplicateIdError, group_starts, index_of

__all__ = [
    "NOISE_PARTICLE_ID",
    "NO_PARTICLE",
    "TRACKML_ORDER_PROPOSAL",
    "Accumulator",
    "TrackMatch",
    "TrackingMetrics",
    "match_tracks",
    "ETA_EDGES",
    "PT_EDGES",
    "reconstructable_particles",
    "trackml_score",
    "trackml_weights",
    "tracking_performance",
]

#: returned where a track has no (matched) particle
NO_PARTICLE = -1


# ------------------------------------------------------------------------------------------------
# hit bookkeeping shared by the scores
# ------------------------------------------------------------------------------------------------
def _track_hit_pairs(tracks: Tracks) -> tuple[np.ndarray, np.ndarray]:
    """(track index, hit id) of every hit on every track, flattened in track order."""
    hit_ids = tracks["hit_ids"]
    counts = np.asarray(ak.num(hit_ids, axis=1), dtype=np.int64)
    flat = np.asarray(ak.to_numpy(ak.flatten(hit_ids)), dtype=np.int64)
    return np.repeat(np.arange(len(tracks), dtype=np.int64), counts), flat


def _truth_rows(truth: HitTruth, hit_ids: np.ndarray) -> np.ndarray:
    """Row of each hit id in ``truth``; raises naming the columns when an id is unknown or
    ``HitTruth.hit_id`` has duplicates."""
    try:
        rows = index_of(np.asarray(truth["hit_id"], dtype=np.int64), hit_ids)
    except DuplicateIdError as err:
        raise ValueError(f"HitTruth: column 'hit_id' has {err}") from None
    if (rows < 0).any():
        missing = np.unique(hit_ids[rows < 0])
        raise ValueError(
            f"Tracks: column 'hit_ids' has {len(missing)} hit id(s) not in HitTruth.hit_id, "
            f"e.g. {missing[:5].tolist()} (tracks and truth of different events?)"
        )
    return rows


def _unique_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted by a then b."""
    if len(a) == 0:
        return a, b
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.ones(len(a), dtype=bool)
    keep[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[keep], b[keep]


def _assign_hits(tracks: Tracks, truth: HitTruth, shared_hits: str) -> np.ndarray:
    """Track index of each truth row (-1: on no track), one track per hit as in a TrackML
    submission. A hit listed twice on one track counts once; a hit on several tracks goes to the
    first of them (``shared_hits="first"``) or raises (``"error"``)."""
    if shared_hits not in ("first", "error"):
        raise ValueError(f"shared_hits must be 'first' or 'error', not {shared_hits!r}")
    track_index, hit_ids = _track_hit_pairs(tracks)
    rows = _truth_rows(truth, hit_ids)
    rows, track_index = _unique_pairs(rows, track_index)
    assigned = np.full(len(truth), -1, dtype=np.int64)
    if len(rows) == 0:
        return assigned
    first = group_starts(rows)
    if shared_hits == "error" and len(first) != len(rows):
        shared = np.unique(np.asarray(truth["hit_id"])[rows[np.setdiff1d(np.arange(len(rows)), first)]])
        raise ValueError(
            f"Tracks: {len(shared)} hit(s) are on more than one track, e.g. hit_id {shared[:5].tolist()}; "
            "a TrackML submission assigns each hit to one track (use shared_hits='first')"
        )
    # rows are sorted by (row, track): the first of each run is the lowest track index
    assigned[rows[first]] = track_index[first]
    return assigned


def _hit_weights(truth: HitTruth, weights: np.ndarray | None) -> np.ndarray:
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(truth),):
            raise ValueError(f"weights has shape {w.shape}, expected ({len(truth)},): one per HitTruth row")
        return w
    if "weight" not in truth:
        raise ValueError(
            "HitTruth has no 'weight' column: pass weights=trackml_weights(particles, truth, hits) "
            "(the official TrackML weighting) or weights of your own"
        )
    return np.asarray(truth["weight"], dtype=np.float64)


# ------------------------------------------------------------------------------------------------
# TrackML score
# ------------------------------------------------------------------------------------------------
def trackml_score(
    tracks: Tracks,
    truth: HitTruth,
    *,
    weights: np.ndarray | None = None,
    shared_hits: Literal["first", "error"] = "first",
) -> float:
    """The TrackML event score (official ``trackml.score.score_event`` semantics).

    ``weights`` (one per ``truth`` row) replace ``HitTruth.weight``; one of the two is required.

    Conventions, following the official implementation exactly:

    * noise hits (particle 0) are an ordinary "particle": a track made mostly of noise counts
      when it also holds most noise hits, with the (normally zero) weight of those hits;
    * a hit on no track is scored as a one-hit track of its own (the official code merges the
      submission onto the truth table and every unassigned hit gets its own missing track id),
      so it counts only when its particle has exactly one hit;
    * majority ties go to the lowest particle id (irrelevant to the score: a tied majority
      never exceeds half of the track).

    The official format gives each hit exactly one track. ``Tracks`` may share hits, so with
    ``shared_hits="first"`` a hit on several tracks is given to the first (lowest-index) of them
    and removed from the others, which is what writing the tracks as a submission would do;
    ``shared_hits="error"`` raises instead. A hit listed twice on one track counts once. A hit id
    unknown to ``truth`` raises (the official checker rejects such submissions).

    An event with no hits or zero total weight scores 0.0 (the official code fails there).
    """
    w = _hit_weights(truth, weights)
    total = float(w.sum())
    if len(truth) == 0 or total == 0.0:
        _assign_hits(tracks, truth, shared_hits)  # still validate the hit ids
        return 0.0
    assigned = _assign_hits(tracks, truth, shared_hits)
    free = assigned < 0
    assigned[free] = len(tracks) + np.arange(int(free.sum()))
    particle = np.asarray(truth["particle_id"], dtype=np.int64)

    groups = _majority_per_track(assigned, particle, w)
    particle_ids, particle_nhits = np.unique(particle, return_counts=True)
    major_particle_nhits = particle_nhits[np.searchsorted(particle_ids, groups["particle"])]
    good = (2 * groups["major_nhits"] > groups["nhits"]) & (2 * groups["major_nhits"] > major_particle_nhits)
    return float(np.sum(groups["major_weight"][good] / total))


def _majority_per_track(track: np.ndarray, particle: np.ndarray, weight: np.ndarray) -> dict[str, np.ndarray]:
    """For each distinct track label: total hits, majority particle (most hits, lowest id on
    ties), the majority's hit count and summed weight. Rows are sorted by track label."""
    order = np.lexsort((particle, track))
    track, particle, weight = track[order], particle[order], weight[order]
    starts = group_starts(track, particle)
    g_track, g_particle = track[starts], particle[starts]
    g_count = np.diff(np.append(starts, len(track)))
    g_weight = np.add.reduceat(weight, starts) if len(starts) else np.zeros(0)
    # best group of each track: most hits, then lowest particle id
    best = np.lexsort((g_particle, -g_count, g_track))
    first = best[group_starts(g_track[best])]
    track_starts = group_starts(track)
    return {
        "track": g_track[first],
        "nhits": np.diff(np.append(track_starts, len(track))),
        "particle": g_particle[first],
        "major_nhits": g_count[first],
        "major_weight": g_weight[first],
    }


# ------------------------------------------------------------------------------------------------
# matching
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrackMatch:
    """Result of ``match_tracks``. Per track (index = track row): ``nhits``, ``particle`` (the
    majority particle, ``NO_PARTICLE`` when no hit has a particle), ``major_nhits``, ``purity``
    (major_nhits / nhits), ``particle_fraction`` (major_nhits / hits of the particle),
    ``matched``, ``fake`` (= not matched) and ``duplicate`` (matched, but not the best track of
    its particle). Per particle (the distinct non-noise ids of ``HitTruth``): ``particle_ids``,
    ``particle_nhits``, ``particle_track`` (index of its best matched track, -1 if none) and
    ``particle_ntracks`` (matched tracks, duplicates included)."""

    nhits: np.ndarray
    particle: np.ndarray
    major_nhits: np.ndarray
    purity: np.ndarray
    particle_fraction: np.ndarray
    matched: np.ndarray
    fake: np.ndarray
    duplicate: np.ndarray
    particle_ids: np.ndarray
    particle_nhits: np.ndarray
    particle_track: np.ndarray
    particle_ntracks: np.ndarray

    @property
    def matched_particle(self) -> np.ndarray:
        """Per track: the matched particle id, ``NO_PARTICLE`` for fake tracks."""
        return np.where(self.matched, self.particle, NO_PARTICLE)


def match_tracks(
    tracks: Tracks,
    truth: HitTruth,
    *,
    min_purity: float = 0.5,
    double_matching: bool = False,
) -> TrackMatch:
    """Match each track to its majority particle (ACTS ``TrackTruthMatcher`` conventions, see
    the module docstring). Noise hits count in a track's hits but never as its particle; a hit
    listed twice on one track counts once; hits may be shared between tracks."""
    track_index, hit_ids = _track_hit_pairs(tracks)
    rows = _truth_rows(truth, hit_ids)
    rows, track_index = _unique_pairs(rows, track_index)
    particle_of_row = np.asarray(truth["particle_id"], dtype=np.int64)
    particle_ids, particle_nhits = np.unique(particle_of_row[particle_of_row != NOISE_PARTICLE_ID], return_counts=True)

    ntracks = len(tracks)
    nhits = np.bincount(track_index, minlength=ntracks).astype(np.int64)
    particle = np.full(ntracks, NO_PARTICLE, dtype=np.int64)
    major = np.zeros(ntracks, dtype=np.int64)
    signal = particle_of_row[rows] != NOISE_PARTICLE_ID
    if signal.any():
        groups = _majority_per_track(track_index[signal], particle_of_row[rows][signal], np.zeros(int(signal.sum())))
        particle[groups["track"]] = groups["particle"]
        major[groups["track"]] = groups["major_nhits"]

    with np.errstate(invalid="ignore", divide="ignore"):
        purity = np.where(nhits > 0, major / np.maximum(nhits, 1), 0.0)
    has_particle = particle != NO_PARTICLE
    own_hits = np.zeros(ntracks, dtype=np.int64)
    own_hits[has_particle] = particle_nhits[np.searchsorted(particle_ids, particle[has_particle])]
    fraction = np.where(own_hits > 0, major / np.maximum(own_hits, 1), 0.0)

    matched = has_particle & (purity >= min_purity)
    if double_matching:
        matched &= fraction >= min_purity
    best, duplicate = _resolve_duplicates(matched, particle, major, purity, tracks.get("chi2"))

    particle_track = np.full(len(particle_ids), -1, dtype=np.int64)
    particle_ntracks = np.zeros(len(particle_ids), dtype=np.int64)
    slot = np.searchsorted(particle_ids, particle[matched])
    np.add.at(particle_ntracks, slot, 1)
    particle_track[np.searchsorted(particle_ids, particle[best])] = best
    return TrackMatch(
        nhits=nhits,
        particle=particle,
        major_nhits=major,
        purity=purity,
        particle_fraction=fraction,
        matched=matched,
        fake=~matched,
        duplicate=duplicate,
        particle_ids=particle_ids,
        particle_nhits=particle_nhits,
        particle_track=particle_track,
        particle_ntracks=particle_ntracks,
    )


def _resolve_duplicates(
    matched: np.ndarray, particle: np.ndarray, major: np.ndarray, purity: np.ndarray, chi2: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the best matched track of each particle, and the per-track duplicate mask.
    Best: most hits from the particle, then highest purity, then lowest chi2, then lowest index."""
    candidates = np.flatnonzero(matched)
    c2 = np.zeros(len(matched)) if chi2 is None else np.nan_to_num(np.asarray(chi2, np.float64), nan=np.inf)
    keys = (candidates, c2[candidates], -purity[candidates], -major[candidates], particle[candidates])
    order = candidates[np.lexsort(keys)]
    best = order[group_starts(particle[order])] if len(order) else order
    duplicate = matched.copy()
    duplicate[best] = False
    return best, duplicate


def reconstructable_particles(
    particles: Particles, truth: HitTruth, *, min_pt: float = 1.0, min_hits: int = 3
) -> np.ndarray:
    """Mask over ``particles``: charged (q != 0), pT >= ``min_pt`` (GeV), at least ``min_hits``
    hits in ``truth``, and not the noise id."""
    pid = np.asarray(particles["particle_id"], dtype=np.int64)
    ids, counts = np.unique(np.asarray(truth["particle_id"], dtype=np.int64), return_counts=True)
    rows = index_of(ids, pid)
    nhits = np.where(rows >= 0, counts[np.maximum(rows, 0)] if len(ids) else 0, 0)
    pt = np.hypot(np.asarray(particles["px"], np.float64), np.asarray(particles["py"], np.float64))
    charged = np.asarray(particles["q"]) != 0
    return charged & (pt >= min_pt) & (nhits >= min_hits) & (pid != NOISE_PARTICLE_ID)


# ------------------------------------------------------------------------------------------------
# accumulation
# ------------------------------------------------------------------------------------------------
class Accumulator:
    """Base of the metric accumulators: integer/float counters plus lists of per-event sample
    arrays. ``merge`` adds counters and concatenates samples, so accumulators filled in separate
    processes (they pickle) combine into the same result as one filled with all events.

    Subclasses list their counters in ``COUNTS`` and their sample lists in ``SAMPLES``; the
    options given to ``__init__`` are the ``config`` and must agree for a merge.
    """

    COUNTS: ClassVar[tuple[str, ...]] = ()
    SAMPLES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)
        self.counts: dict[str, float] = dict.fromkeys(self.COUNTS, 0)
        self.samples: dict[str, list[np.ndarray]] = {name: [] for name in self.SAMPLES}

    def merge(self, other: Accumulator) -> Accumulator:
        """Add ``other`` into this accumulator (in place) and return it."""
        if type(other) is not type(self):
            raise TypeError(f"cannot merge {type(other).__name__} into {type(self).__name__}")
        if other.config != self.config:
            raise ValueError(f"{type(self).__name__}.merge: different options {self.config} / {other.config}")
        for name, value in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + value
        for name, parts in other.samples.items():
            self.samples.setdefault(name, []).extend(np.array(p, copy=True) for p in parts)
        return self

    @classmethod
    def merged(cls, parts: Iterable[Accumulator]) -> Accumulator:
        """A new accumulator holding the sum of ``parts`` (which are left unchanged)."""
        parts = list(parts)
        if not parts:
            return cls()
        out = copy.deepcopy(parts[0])
        for part in parts[1:]:
            out.merge(part)
        return out

    def sample(self, name: str) -> np.ndarray:
        parts = self.samples[name]
        return np.concatenate(parts) if parts else np.zeros(0)

    def _add_time(self, time_s: float | None) -> None:
        if time_s is not None:
            self.counts["time_s"] += float(time_s)
            self.counts["n_timed_events"] += 1

    def _ms_per_event(self) -> float:
        n = self.counts["n_timed_events"]
        return 1000.0 * self.counts["time_s"] / n if n else math.nan


PT_EDGES = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0)  # GeV
ETA_EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)  # |eta|


def _binned(values: np.ndarray, edges: tuple[float, ...], **flags: np.ndarray) -> dict[str, Any]:
    """Per bin of ``values``: the count and the fraction of each flag set."""
    index = np.searchsorted(edges, values, side="right") - 1
    inside = (index >= 0) & (index < len(edges) - 1) & np.isfinite(values)
    n = np.bincount(index[inside], minlength=len(edges) - 1)
    out: dict[str, Any] = {"edges": list(edges), "n": n.tolist()}
    for name, flag in flags.items():
        hits = np.bincount(index[inside], weights=flag[inside].astype(np.float64), minlength=len(edges) - 1)
        out[name] = [_ratio(h, k) for h, k in zip(hits, n)]
    return out


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else math.nan


class TrackingMetrics(Accumulator):
    """Tracking efficiency, fake and duplicate rates and the mean TrackML score over events.

    ``add_event`` takes one event's tracks and truth; ``result()`` gives the rates defined in
    the module docstring plus the raw counts. The TrackML score is averaged over the events for
    which weights exist (``weights=``, ``HitTruth.weight``, or computed with ``trackml_weights``
    when ``HitTruth.tz`` or ``hits=`` is available); an event with no hits (or all weights zero)
    is left out of the mean and counted in ``n_empty_events``. ``time_s=`` accumulates processing
    time for ``ms_per_event``.
    """

    COUNTS = (
        "n_events",
        "n_tracks",
        "n_matched_tracks",
        "n_fake_tracks",
        "n_duplicate_tracks",
        "n_particles",
        "n_reconstructable",
        "n_reconstructed",
        "n_trackml_events",
        "n_empty_events",
        "time_s",
        "n_timed_events",
    )
    SAMPLES = (
        "trackml_scores",
        "scored_event_ids",
        "scored_runs",
        "particle_pt",
        "particle_eta",
        "particle_found",
        "track_pt",
        "track_eta",
        "track_fake",
        "track_duplicate",
    )

    def __init__(
        self,
        *,
        min_pt: float = 1.0,
        min_hits: int = 3,
        min_purity: float = 0.5,
        double_matching: bool = False,
        shared_hits: Literal["first", "error"] = "first",
    ) -> None:
        super().__init__(
            min_pt=float(min_pt),
            min_hits=int(min_hits),
            min_purity=float(min_purity),
            double_matching=bool(double_matching),
            shared_hits=shared_hits,
        )

    def add_event(
        self,
        tracks: Tracks,
        truth: HitTruth,
        particles: Particles,
        *,
        weights: np.ndarray | None = None,
        hits: Hits | None = None,
        time_s: float | None = None,
        event_id: int = -1,
        run: int = 0,
    ) -> TrackMatch:
        """Add one event; returns its ``TrackMatch``. ``run`` and ``event_id`` label the event's
        row in the per-event figures (``result()["per_event"]``)."""
        cfg = self.config
        match = match_tracks(tracks, truth, min_purity=cfg["min_purity"], double_matching=cfg["double_matching"])
        c = self.counts
        c["n_events"] += 1
        c["n_tracks"] += len(tracks)
        c["n_matched_tracks"] += int(match.matched.sum())
        c["n_fake_tracks"] += int(match.fake.sum())
        c["n_duplicate_tracks"] += int(match.duplicate.sum())

        wanted = reconstructable_particles(particles, truth, min_pt=cfg["min_pt"], min_hits=cfg["min_hits"])
        pid = np.asarray(particles["particle_id"], dtype=np.int64)[wanted]
        found = np.isin(pid, match.particle_ids[match.particle_track >= 0])
        c["n_particles"] += len(particles)
        c["n_reconstructable"] += int(wanted.sum())
        c["n_reconstructed"] += int(found.sum())
        self._add_binned(tracks, truth, particles, match)

        w = weights
        if w is None and "weight" not in truth and ("tz" in truth or hits is not None):
            w = trackml_weights(particles, truth, hits)
        total = float(np.sum(w if w is not None else truth["weight"])) if (w is not None or "weight" in truth) else 0.0
        if (w is not None or "weight" in truth) and (len(truth) == 0 or total <= 0):
            c["n_empty_events"] += 1  # nothing to score: excluded from the mean (the official convention)
        elif w is not None or "weight" in truth:
            score = trackml_score(tracks, truth, weights=w, shared_hits=cfg["shared_hits"])
            self.samples["trackml_scores"].append(np.asarray([score], dtype=np.float64))
            self.samples["scored_event_ids"].append(np.asarray([event_id], dtype=np.int64))
            self.samples["scored_runs"].append(np.asarray([run], dtype=np.int64))
            c["n_trackml_events"] += 1
        self._add_time(time_s)
        return match

    def _add_binned(self, tracks: Tracks, truth: HitTruth, particles: Particles, match: TrackMatch) -> None:
        """Per-particle and per-track samples of the binned rates (module docstring)."""
        pid = np.asarray(particles["particle_id"], dtype=np.int64)
        px, py, pz = (np.asarray(particles[c], np.float64) for c in ("px", "py", "pz"))
        pt = np.hypot(px, py)
        eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
        any_pt = reconstructable_particles(particles, truth, min_pt=0.0, min_hits=self.config["min_hits"])
        found = np.isin(pid, match.particle_ids[match.particle_track >= 0])
        keep = any_pt & (pt >= self.config["min_pt"])
        self.samples["particle_pt"].append(np.where(any_pt, pt, np.nan))
        self.samples["particle_eta"].append(np.where(keep, np.abs(eta), np.nan))
        self.samples["particle_found"].append(found.astype(np.float64))
        rows = index_of(pid, np.asarray(match.particle, np.int64))  # -1 (absent): the NaN appended last
        self.samples["track_pt"].append(np.append(pt, np.nan)[rows])
        self.samples["track_eta"].append(np.append(np.abs(eta), np.nan)[rows])
        self.samples["track_fake"].append(np.asarray(match.fake, np.float64))
        self.samples["track_duplicate"].append(np.asarray(match.duplicate, np.float64))

    def binned(self) -> dict[str, Any]:
        """Efficiency, fake and duplicate rates in bins of pT and |eta| (module docstring)."""
        out = {}
        for name, edges in (("pt", PT_EDGES), ("eta", ETA_EDGES)):
            particles = _binned(self.sample(f"particle_{name}"), edges, efficiency=self.sample("particle_found"))
            tracks = _binned(
                self.sample(f"track_{name}"),
                edges,
                fake_rate=self.sample("track_fake"),
                duplicate_rate=self.sample("track_duplicate"),
            )
            out[name] = {
                "edges": list(edges),
                "n_reconstructable": particles["n"],
                "efficiency": particles["efficiency"],
                "n_tracks": tracks["n"],
                "fake_rate": tracks["fake_rate"],
                "duplicate_rate": tracks["duplicate_rate"],
            }
        return out

    def result(self) -> dict[str, Any]:
        c = self.counts
        scores = self.sample("trackml_scores")  # per event, in event order: the mean is exact whatever the merging
        return {
            "efficiency": _ratio(c["n_reconstructed"], c["n_reconstructable"]),
            "fake_rate": _ratio(c["n_fake_tracks"], c["n_tracks"]),
            "duplicate_rate": _ratio(c["n_duplicate_tracks"], c["n_tracks"]),
            "trackml_score": float(np.mean(scores)) if len(scores) else math.nan,
            "trackml_sum": float(np.sum(scores)),
            "per_event": {
                "run_number": self.sample("scored_runs").astype(np.int64).tolist(),
                "event_id": self.sample("scored_event_ids").astype(np.int64).tolist(),
                "trackml_score": scores.tolist(),
            },
            "binned": self.binned(),
            "ms_per_event": self._ms_per_event(),
            **{k: (int(v) if k != "time_s" else float(v)) for k, v in c.items()},
            **self.config,
        }


def tracking_performance(
    tracks: Tracks,
    truth: HitTruth,
    particles: Particles,
    *,
    min_pt: float = 1.0,
    min_hits: int = 3,
    min_purity: float = 0.5,
    double_matching: bool = False,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """One event's efficiency, fake rate, duplicate rate and counts (``TrackingMetrics.result``)."""
    metrics = TrackingMetrics(min_pt=min_pt, min_hits=min_hits, min_purity=min_purity, double_matching=double_matching)
    metrics.add_event(tracks, truth, particles, weights=weights)
    return metrics.result()
