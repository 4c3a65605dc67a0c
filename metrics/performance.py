"""Performance: the truth-matched comparison of every track and vertex collection of a run.

A metric (``framework.Metric``): it fills one accumulator per collection in whichever process
runs the event — ``TrackingMetrics`` for each track collection (efficiency over particles with
pT >= ``min_pt``, >= ``min_hits`` hits, |eta| < ``max_abs_eta``, produced within
``max_vertex_r`` of the beam line — ACTS's physics-monitoring selection; fake and duplicate rates
over all tracks; the TrackML score over all hits) and ``VertexMetrics`` for each vertex
collection — and the engine merges them in chunk order in the main process, so nothing but the
accumulators travels back. At the end of the run it makes one comparison table — one row per
collection, labelled with the algorithm that produced it — which it prints (with that
algorithm's mean time per event) and writes to ``output`` as ``comparison.json`` /
``comparison.root`` plus ``performance.json`` with every count. The files hold no timing (it
changes run to run): ``timing.json`` of ``recotrig run`` has it. ``performance.json`` also holds,
per track collection, every event's TrackML score by run and event id (``per_event``: lists
``run_number``, ``event_id``, ``trackml_score``), so the events where one finder beats another can
be found.

Trigger decisions (``triggers``: ``TriggerDecision`` keys) add a row each: the fraction of the
run's events accepted (in the efficiency column), the rate that fraction means at the 40 MHz
crossing rate (only when every event is a zero-bias crossing by its ``crossing`` record; "-"
otherwise), the mean score and the threshold, and a line under the table saying what they mean.

The collections are ``Many`` inputs (lists of store keys): ``tracks``, ``vertices``, ``candidates``,
``triggers``. Vertex collections are matched by position, or by their tracks (ACTS-style track
matching) when ``tracks_of`` names the track collection their ``track_index`` points into (one of
``tracks``); a vertex collection that names its target collection must name that one::

    Performance(tracks=["tracks_ckf"], vertices=["vtx_grid"], tracks_of={"vtx_grid": "tracks_ckf"})
    # --Performance.vertices vtx_grid --Performance.tracks_of vtx_grid=tracks_ckf

A vertex collection whose finder also gives scored candidates (PVFinder's ``candidates``) gets
its threshold-scan curve when ``candidates_of`` names them (one of ``candidates``)::

    Performance(vertices=["vertices_pvfinder"], candidates=["vertices_pvfinder_candidates"],
                candidates_of={"vertices_pvfinder": "vertices_pvfinder_candidates"})

``performance.json`` also holds the run's first event along z (``event_view``: ``EventView``):
the truth vertices, each vertex collection's, and the ``kde`` and ``vertex_density`` where the
run has them.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from recotrig.edm import (
    KDE,
    CrossingInfo,
    EventInfo,
    Hits,
    HitTruth,
    Particles,
    Tracks,
    TriggerDecision,
    TruthVertices,
    VertexDensity,
    Vertices,
)
from recotrig.edm.truth import trackml_weights
from recotrig.framework import Algorithm, ConfigError, Many, Metric, Option
from recotrig.framework.files import write_json
from recotrig.framework.identity import EventKey
from recotrig.framework.result import RunResult
from recotrig.metrics.table import format_table, row_from_result, row_label, write_table
from recotrig.metrics.tracking import TrackingMetrics
from recotrig.metrics.trigger import TriggerCounts
from recotrig.metrics.vertexing import EventView, VertexMetrics


class AccumulatorSet(dict):
    """Named accumulators that merge name by name, and the view of the first event (``view``)."""

    def __init__(self) -> None:
        super().__init__()
        self.view = EventView()

    def merge(self, other: AccumulatorSet) -> AccumulatorSet:
        if set(other) != set(self):
            raise ValueError(f"cannot merge accumulators {sorted(other)} into {sorted(self)}")
        for name, acc in other.items():
            self[name].merge(acc)
        self.view.merge(other.view)
        return self


class Performance(Metric):
    """Truth-matched tracking and vertexing figures per collection; writes the comparison table."""

    tracks_of = Option(
        {},
        "vertex collection -> the track collection its track_index points into (track "
        "matching; one of tracks): KEY=TRACKS_KEY,...",
        type=dict,
        item=str,
    )
    candidates_of = Option(
        {},
        "vertex collection -> its finder's scored candidates, for the threshold scan (one of "
        "candidates): KEY=CANDIDATES_KEY,...",
        type=dict,
        item=str,
    )
    output = Option("recotrig-out", "directory for comparison.json, comparison.root, performance.json", role="output")
    min_pt = Option(1.0, "reconstructable particles: pT >= this [GeV]", low=0.0)
    min_hits = Option(7, "reconstructable particles: at least this many hits", low=1)
    max_abs_eta = Option(2.5, "reconstructable particles: |eta| below this", low=0.0)
    max_vertex_r = Option(
        24.0, "reconstructable particles: produced at a radius below this [mm] (ACTS physmon)", low=0.0
    )
    min_vertex_tracks = Option(2, "reconstructable truth vertices: at least this many reconstructable tracks", low=1)
    z_window = Option(0.5, "window matching: |dz| <= this [mm]", low=0.0)

    def configure(self, **settings: Any) -> None:
        for item in settings.get("vertices") or ():
            if isinstance(item, str) and ":" in item:  # the form before tracks_of
                key, _, tracks = item.partition(":")
                raise ConfigError(
                    f"{self.name}: vertices {item!r} is the old KEY:TRACKS form; write "
                    f"vertices=[{key!r}], tracks_of={{{key!r}: {tracks!r}}} "
                    f"(--{self.name}.tracks_of {key}={tracks})"
                )
        super().configure(**settings)

    def check_upstream(self, upstream: dict[str, Algorithm]) -> None:
        tracks, vertices = self.keys("tracks"), self.keys("vertices")
        for key, target in self.tracks_of.items():
            if key not in vertices:
                raise ConfigError(
                    f"{self.name}: tracks_of names vertices {key!r}, which are not among its vertices {vertices}"
                )
            if target not in tracks:
                raise ConfigError(
                    f"{self.name}: tracks_of matches vertices {key!r} to tracks {target!r}, which "
                    f"are not among its tracks {tracks}: add them"
                )
        candidates = self.keys("candidates")
        for key, target in self.candidates_of.items():
            if key not in vertices:
                raise ConfigError(
                    f"{self.name}: candidates_of names vertices {key!r}, which are not among its vertices {vertices}"
                )
            if target not in candidates:
                raise ConfigError(
                    f"{self.name}: candidates_of gives vertices {key!r} the candidates {target!r}, which "
                    f"are not among its candidates {candidates}: add them"
                )
        unused = sorted(set(candidates) - set(self.candidates_of.values()))
        if unused:
            raise ConfigError(
                f"{self.name}: candidates {unused} belong to no vertex collection: name them in candidates_of"
            )
        if vertices and "truth_vertices" not in upstream:  # a hits-only store has no vertex truth
            raise ConfigError(
                f"{self.name}: vertex figures need input 'truth_vertices' (key "
                f"{self.key('truth_vertices')!r}), which no algorithm produces"
            )

    def accumulator(self) -> AccumulatorSet:
        out = AccumulatorSet()
        for key in self.keys("tracks"):
            out[key] = TrackingMetrics(min_pt=self.min_pt, min_hits=self.min_hits)
        for key in self.keys("vertices"):
            out[key] = VertexMetrics(min_tracks=self.min_vertex_tracks, z_window=self.z_window)
        for key in self.keys("triggers"):
            out[key] = TriggerCounts()
        return out

    def execute(
        self,
        event: EventInfo,
        truth: HitTruth,
        particles: Particles,
        truth_vertices: TruthVertices | None = None,
        hits: Hits | None = None,
        kde: KDE | None = None,
        vertex_density: VertexDensity | None = None,
        crossing: CrossingInfo | None = None,
        tracks: Many[Tracks] = ("tracks",),
        vertices: Many[Vertices] = (),
        candidates: Many[Vertices] = (),
        triggers: Many[TriggerDecision] = (),
    ) -> None:
        acc = self.acc
        this = EventKey.of(event)
        if tracks:
            weights = truth.weight if "weight" in truth else trackml_weights(particles, truth, hits)
            eta = np.arcsinh(particles.pz / np.maximum(np.hypot(particles.px, particles.py), 1e-12))
            wanted = particles.select(
                (np.abs(eta) < self.max_abs_eta) & (np.hypot(particles.vx, particles.vy) < self.max_vertex_r)
            )
            for key, collection in tracks.items():
                acc[key].add_event(collection, truth, wanted, weights=weights, event_id=this.event, run=this.run)
        for key, collection in vertices.items():
            tracks_key = self.tracks_of.get(key)
            target = collection.target("track_index")
            if tracks_key and target is not None and target != tracks_key:
                raise ValueError(f"{self.name}: vertices {key!r} point into {target!r}, not {tracks_key!r}")
            matched = tracks[tracks_key] if tracks_key else None
            scored = candidates[self.candidates_of[key]] if key in self.candidates_of else None
            if scored is not None and "score" not in scored:
                raise ValueError(
                    f"{self.name}: candidates {self.candidates_of[key]!r} of vertices {key!r} have no 'score' "
                    f"column (columns {scored.names}): the threshold scan needs a finder's scored candidates"
                )
            acc[key].add_event(
                collection, truth_vertices, tracks=matched, truth=truth, particles=particles, candidates=scored
            )
        if vertices and acc.view.empty:
            first = next(iter(vertices))
            tracks_key = self.tracks_of.get(first)
            eligible = acc[first].window_eligible(
                truth_vertices, tracks=tracks[tracks_key] if tracks_key else None, truth=truth, particles=particles
            )
            acc.view.add(
                run=this.run,
                event=this.event,
                truth_vertices=truth_vertices,
                eligible=eligible,
                vertices=vertices,
                kde=kde,
                density=vertex_density,
            )
        for key, collection in triggers.items():
            acc[key].add(collection, crossing)

    def summarise(self, acc: AccumulatorSet, result: RunResult, producers: dict[str, str]) -> None:
        ms = {row["algorithm"]: row["mean_ms"] for row in result.timing}
        self.rows: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {}
        self.record = result.record
        self.view = acc.view.result()
        for key in self.keys("tracks"):
            res = acc[key].result()
            producer = producers.get(key, key)
            row = row_from_result(f"{producer} [{key}]", res, ms_per_event=ms.get(producer, math.nan))
            row["trackml_score"] = res["trackml_score"]
            self.rows.append(row)
            self.results[key] = res
        for key in self.keys("vertices"):
            res = acc[key].result()
            producer = producers.get(key, key)
            timing = ms.get(producer, math.nan)
            label = row_label(producer, key, self.record)
            self.rows.append(row_from_result(label, res, style="acts", ms_per_event=timing))
            # the window row: the same algorithm, so its time is on the row above only
            self.rows.append(row_from_result(f"{label} window", res, style="window", ms_per_event=math.nan))
            self.results[key] = res
        notes = []
        for key in self.keys("triggers"):
            res = acc[key].result()
            producer = producers.get(key, key)
            row = dict.fromkeys(self.rows[0], math.nan) if self.rows else {}
            row.update(
                algorithm=f"{producer} [{key}]",
                efficiency=res["accept_fraction"],
                rate_khz=res["rate_khz"],
                mean_score=res["mean_score"],
                threshold=res["threshold"],
                ms_per_event=ms.get(producer, math.nan),
            )
            self.rows.append({k: (v if k == "algorithm" else float(v)) for k, v in row.items()})
            self.results[key] = res
            notes.append(f"{producer} [{key}]: {res['note']}\n")
        result.add_report(format_table(self.rows) + "".join(notes))
        result.add_comparison(self.rows)

    def finalize(self) -> None:
        rows = getattr(self, "rows", None)
        if not rows:
            return
        write_table(rows, self.output, record=self.record)
        perf = {"results": self.results, "run": self.record}
        if self.view is not None:
            perf["event_view"] = self.view
        write_json(os.path.join(self.output, "performance.json"), perf)
