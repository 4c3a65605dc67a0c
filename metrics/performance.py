"""Performance: the truth-matched comparison of every track and vertex collection of a run.

A serial algorithm (main process, event order). It accumulates ``TrackingMetrics`` for each track
collection (efficiency over particles with pT >= ``min_pt``, >= ``min_hits`` hits, |eta| <
``max_abs_eta``, produced within ``max_vertex_r`` of the beam line — ACTS's physics-monitoring
selection; fake and duplicate rates over all tracks; the TrackML score over all hits) and
``VertexMetrics`` for each vertex collection, and at the end of the run makes one
comparison table — one row per collection, labelled with the algorithm that produced it and that
algorithm's mean time per event — which it prints and writes to ``output`` as
``comparison.json`` / ``comparison.root`` (plus ``performance.json`` with every count).

Vertex collections are given as ``KEY`` (position matching) or ``KEY:TRACKS_KEY`` when the
vertices' ``track_index`` points into that track collection (ACTS-style track matching).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..framework import Option, Port
from ..framework.algorithm import Algorithm
from ..framework.edm import Collection, HitTruth, Hits, Particles, Tracks, TruthVertices, Vertices
from .table import format_table, row_from_result, write_table
from .tracking import TrackingMetrics, trackml_weights
from .vertexing import VertexMetrics


class Performance(Algorithm):
    """Truth-matched tracking and vertexing figures per collection; writes the comparison table."""

    serial = True
    tracks = Option(["tracks"], "track collections to evaluate (store keys)", type=list)
    vertices = Option([], "vertex collections: KEY or KEY:TRACKS_KEY", type=list)
    output = Option("recotrig-out", "directory for comparison.json, comparison.root, performance.json")
    min_pt = Option(1.0, "reconstructable particles: pT >= this [GeV]")
    min_hits = Option(7, "reconstructable particles: at least this many hits")
    max_abs_eta = Option(2.5, "reconstructable particles: |eta| below this")
    max_vertex_r = Option(24.0, "reconstructable particles: produced at a radius below this [mm] (ACTS physmon)")
    min_vertex_tracks = Option(2, "reconstructable truth vertices: at least this many reconstructable tracks")
    z_window = Option(0.5, "window matching: |dz| <= this [mm]")

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
        return ports

    def initialize(self) -> None:
        self._tracking = {key: TrackingMetrics(min_pt=self.min_pt, min_hits=self.min_hits) for key in self.tracks}
        self._vertexing = {key: VertexMetrics(min_tracks=self.min_vertex_tracks, z_window=self.z_window)
                           for key, _ in self._vertex_specs()}
        self.rows: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {}

    def execute(self, truth: HitTruth, particles: Particles, truth_vertices: TruthVertices | None = None,
                hits: Hits | None = None, **collections: Collection) -> None:
        if self._tracking:
            weights = truth.weight if "weight" in truth else trackml_weights(particles, truth, hits)
            eta = np.arcsinh(particles.pz / np.maximum(np.hypot(particles.px, particles.py), 1e-12))
            wanted = particles.select((np.abs(eta) < self.max_abs_eta)
                                      & (np.hypot(particles.vx, particles.vy) < self.max_vertex_r))
        for key, metrics in self._tracking.items():
            metrics.add_event(collections[key], truth, wanted, weights=weights)
        for key, tracks_key in self._vertex_specs():
            if truth_vertices is None:
                raise ValueError(f"{self.name}: vertex collection {key!r} needs truth vertices; the store has none")
            tracks = collections[tracks_key] if tracks_key else None
            self._vertexing[key].add_event(collections[key], truth_vertices, tracks=tracks, truth=truth,
                                           particles=particles)

    def end_of_run(self, result: Any, producers: dict[str, str]) -> None:
        ms = {row["algorithm"]: row["mean_ms"] for row in result.timing}
        for key, metrics in self._tracking.items():
            res = metrics.result()
            label = f"{producers.get(key, key)} [{key}]"
            row = row_from_result(label, res, ms_per_event=ms.get(producers.get(key), float("nan")))
            row["trackml_score"] = res["trackml_score"]
            self.rows.append(row)
            self.results[key] = res
        for key, metrics in self._vertexing.items():
            res = metrics.result()
            label = f"{producers.get(key, key)} [{key}]"
            timing = ms.get(producers.get(key), float("nan"))
            self.rows.append(row_from_result(label, res, style="acts", ms_per_event=timing))
            self.rows.append(row_from_result(f"{label} window", res, style="window", ms_per_event=timing))
            self.results[key] = res
        result.extra.setdefault("reports", []).append(format_table(self.rows))
        result.extra["comparison"] = self.rows

    def finalize(self) -> None:
        if not self.rows:
            return
        os.makedirs(self.output, exist_ok=True)
        write_table(self.rows, self.output)
        path = os.path.join(self.output, "performance.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.results, f, indent=1, default=_plain)
        os.replace(path + ".tmp", path)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
