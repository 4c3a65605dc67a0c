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
crossing rate (the trigger rate when the events are zero-bias crossings), the mean score and the
threshold.

Vertex collections are given as ``KEY`` (position matching) or ``KEY:TRACKS_KEY`` when the
vertices' ``track_index`` points into that track collection (ACTS-style track matching); a
vertex collection that names its target collection must name that one.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from ..edm import Collection, EventInfo, Hits, HitTruth, Particles, Tracks, TriggerDecision, TruthVertices, Vertices
from ..edm.truth import trackml_weights
from ..framework import Metric, Option, Port
from ..framework.identity import EventKey
from ..framework.files import write_json
from .table import format_table, row_from_result, write_table
from .tracking import TrackingMetrics
from .trigger import TriggerCounts
from .vertexing import VertexMetrics


class AccumulatorSet(dict):
    """Named accumulators that merge name by name."""

    def merge(self, other: "AccumulatorSet") -> "AccumulatorSet":
        if set(other) != set(self):
            raise ValueError(f"cannot merge accumulators {sorted(other)} into {sorted(self)}")
        for name, acc in other.items():
            self[name].merge(acc)
        return self


class Performance(Metric):
    """Truth-matched tracking and vertexing figures per collection; writes the comparison table."""

    tracks = Option(["tracks"], "track collections to evaluate (store keys)", type=list)
    vertices = Option([], "vertex collections: KEY or KEY:TRACKS_KEY", type=list, item=str)
    output = Option("recotrig-out", "directory for comparison.json, comparison.root, performance.json",
                    role="output")
    min_pt = Option(1.0, "reconstructable particles: pT >= this [GeV]", low=0.0)
    min_hits = Option(7, "reconstructable particles: at least this many hits", low=1)
    max_abs_eta = Option(2.5, "reconstructable particles: |eta| below this", low=0.0)
    max_vertex_r = Option(24.0, "reconstructable particles: produced at a radius below this [mm] (ACTS physmon)",
                          low=0.0)
    min_vertex_tracks = Option(2, "reconstructable truth vertices: at least this many reconstructable tracks",
                               low=1)
    triggers = Option([], "trigger decision collections (TriggerDecision keys): accepted events, rate, mean score",
                      type=list, item=str)
    z_window = Option(0.5, "window matching: |dz| <= this [mm]", low=0.0)

    def _vertex_specs(self) -> list[tuple[str, str | None]]:
        specs = []
        for item in self.vertices:
            key, _, tracks = item.partition(":")
            specs.append((key, tracks or None))
        return specs

    def input_ports(self) -> list[Port]:
        ports = super().input_ports()
        ports += [Port(key, key, Tracks) for key in self.tracks]
        for key, tracks in self._vertex_specs():
            ports.append(Port(key, key, Vertices))
            if tracks and tracks not in self.tracks:
                ports.append(Port(tracks, tracks, Tracks))
        ports += [Port(key, key, TriggerDecision) for key in self.triggers]
        if self._vertex_specs():  # vertex figures need the truth vertices: a hits-only store fails the check
            ports = [Port(p.name, p.key, p.type, False) if p.name == "truth_vertices" else p for p in ports]
        return ports

    def accumulator(self) -> AccumulatorSet:
        out = AccumulatorSet()
        for key in self.tracks:
            out[key] = TrackingMetrics(min_pt=self.min_pt, min_hits=self.min_hits)
        for key, _ in self._vertex_specs():
            out[key] = VertexMetrics(min_tracks=self.min_vertex_tracks, z_window=self.z_window)
        for key in self.triggers:
            out[key] = TriggerCounts()
        return out

    def execute(self, event: EventInfo, truth: HitTruth, particles: Particles,
                truth_vertices: TruthVertices | None = None, hits: Hits | None = None,
                **collections: Collection) -> None:
        acc = self.acc
        this = EventKey.of(event)
        if self.tracks:
            weights = truth.weight if "weight" in truth else trackml_weights(particles, truth, hits)
            eta = np.arcsinh(particles.pz / np.maximum(np.hypot(particles.px, particles.py), 1e-12))
            wanted = particles.select((np.abs(eta) < self.max_abs_eta)
                                      & (np.hypot(particles.vx, particles.vy) < self.max_vertex_r))
            for key in self.tracks:
                acc[key].add_event(collections[key], truth, wanted, weights=weights, event_id=this.event,
                                   run=this.run)
        for key, tracks_key in self._vertex_specs():
            vertices = collections[key]
            target = vertices.target("track_index")
            if tracks_key and target is not None and target != tracks_key:
                raise ValueError(f"{self.name}: vertices {key!r} point into {target!r}, not {tracks_key!r}")
            tracks = collections[tracks_key] if tracks_key else None
            acc[key].add_event(vertices, truth_vertices, tracks=tracks, truth=truth, particles=particles)
        for key in self.triggers:
            acc[key].add(collections[key])

    def summarise(self, acc: AccumulatorSet, result: Any, producers: dict[str, str]) -> None:
        ms = {row["algorithm"]: row["mean_ms"] for row in result.timing}
        self.rows: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {}
        self.record = result.record
        for key in self.tracks:
            res = acc[key].result()
            producer = producers.get(key, key)
            row = row_from_result(f"{producer} [{key}]", res, ms_per_event=ms.get(producer, math.nan))
            row["trackml_score"] = res["trackml_score"]
            self.rows.append(row)
            self.results[key] = res
        for key, _ in self._vertex_specs():
            res = acc[key].result()
            producer = producers.get(key, key)
            timing = ms.get(producer, math.nan)
            self.rows.append(row_from_result(f"{producer} [{key}]", res, style="acts", ms_per_event=timing))
            self.rows.append(row_from_result(f"{producer} [{key}] window", res, style="window", ms_per_event=timing))
            self.results[key] = res
        for key in self.triggers:
            res = acc[key].result()
            producer = producers.get(key, key)
            row = {name: math.nan for name in self.rows[0]} if self.rows else {}
            row.update(algorithm=f"{producer} [{key}]", efficiency=res["accept_fraction"], rate_khz=res["rate_khz"],
                       mean_score=res["mean_score"], threshold=res["threshold"],
                       ms_per_event=ms.get(producer, math.nan))
            self.rows.append({k: (v if k == "algorithm" else float(v)) for k, v in row.items()})
            self.results[key] = res
        result.extra.setdefault("reports", []).append(format_table(self.rows))
        result.extra["comparison"] = [{k: v for k, v in row.items() if k != "ms_per_event"} for row in self.rows]
        result.extra["comparison_ms_per_event"] = {row["algorithm"]: row["ms_per_event"] for row in self.rows}

    def finalize(self) -> None:
        rows = getattr(self, "rows", None)
        if not rows:
            return
        write_table(rows, self.output, record=self.record)
        write_json(os.path.join(self.output, "performance.json"), {"results": self.results, "run": self.record})
