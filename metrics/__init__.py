"""Truth-matched performance metrics, on the core dependencies (numpy, awkward, scipy; the table
written as ROOT through uproot); no ACTS, torch or ONNX Runtime needed.

``tracking``: TrackML score and weights, track-to-particle matching, efficiency / fake /
duplicate rates (``TrackingMetrics``). ``vertexing``: ACTS-style clean / merged / split / fake
vertex classification, LHCb-style z-window efficiency and its threshold scan, z and vertex-vertex
resolution (``VertexMetrics``; definitions in docs/metrics.md). ``trigger``: ROC AUC and efficiency at a
false-positive rate or a rate in kHz (``TriggerPerformance``). ``table``: the algorithm
comparison table. ``performance``: the ``Performance`` metric that runs them in a sequence. The
accumulators add events with ``add_event``, combine with ``merge`` (e.g. across worker processes)
and report with ``result()``.
"""

from recotrig.metrics.table import COLUMNS, format_table, row_from_result, write_table
from recotrig.metrics.tracking import (
    NO_PARTICLE,
    NOISE_PARTICLE_ID,
    Accumulator,
    TrackingMetrics,
    TrackMatch,
    match_tracks,
    reconstructable_particles,
    tracking_performance,
    trackml_score,
    trackml_weights,
)
from recotrig.metrics.vertexing import (
    CLASS_NAMES,
    CLEAN,
    FAKE,
    MERGED,
    NO_VERTEX,
    SCAN_THRESHOLDS,
    SPLIT,
    EventView,
    VertexMatch,
    VertexMetrics,
    efficiency_at_fp,
    match_vertices,
    pair_efficiency,
    reconstructable_counts,
    robust_sigma,
    track_truth_vertices,
    vertex_vertex_resolution,
    window_match,
)

__all__ = [
    "Accumulator",
    "CLASS_NAMES",
    "CLEAN",
    "COLUMNS",
    "EventView",
    "FAKE",
    "MERGED",
    "NOISE_PARTICLE_ID",
    "NO_PARTICLE",
    "NO_VERTEX",
    "SCAN_THRESHOLDS",
    "SPLIT",
    "TrackMatch",
    "TrackingMetrics",
    "VertexMatch",
    "VertexMetrics",
    "efficiency_at_fp",
    "format_table",
    "match_tracks",
    "match_vertices",
    "pair_efficiency",
    "reconstructable_counts",
    "reconstructable_particles",
    "robust_sigma",
    "row_from_result",
    "track_truth_vertices",
    "trackml_score",
    "trackml_weights",
    "tracking_performance",
    "vertex_vertex_resolution",
    "window_match",
    "write_table",
]
