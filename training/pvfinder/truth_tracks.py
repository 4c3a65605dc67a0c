"""TruthVertexTracks: how well a track collection can see each truth vertex (training targets).

Per truth vertex: ``n_reconstructable``, the number of distinct particles of the vertex matched
by a track (the ``"matched"`` count of ``metrics.vertexing``, the one ``Performance`` uses), and
the extra column ``sigma_z_tracks``, the z resolution those tracks promise,
(sum_i 1 / var(z0_i))^-1/2 over the matched tracks with a finite, positive z0 variance (NaN
where there are none). PV-Finder's target histograms are built from these.
"""

from __future__ import annotations

import numpy as np

from recotrig.edm import FittedTracks, HitTruth, Particles, TruthVertices
from recotrig.framework.algorithm import Algorithm
from recotrig.framework.lookup import index_of
from recotrig.metrics.tracking import match_tracks
from recotrig.metrics.vertexing import particle_vertices, reconstructable_counts

__all__ = ["TruthVertexTracks"]


class TruthVertexTracks(Algorithm):
    """Truth vertices with the number of matched tracks and their promised z resolution."""

    outputs = ("vertex_tracks",)

    def execute(
        self, tracks: FittedTracks, truth: HitTruth, particles: Particles, truth_vertices: TruthVertices
    ) -> TruthVertices:
        match = match_tracks(tracks, truth)
        counts, _ = reconstructable_counts(
            truth_vertices, source="matched", particles=particles, track_particle=match.matched_particle
        )
        vertex_of_track = particle_vertices(match.matched_particle, particles)
        var_z0 = np.asarray(tracks.cov, np.float64).reshape(len(tracks), 6, 6)[:, 1, 1]
        ok = np.isfinite(var_z0) & (var_z0 > 0)
        ids = np.asarray(truth_vertices.vertex_id, np.int64)
        rows = index_of(ids, vertex_of_track[ok])  # -1: fake tracks (NO_VERTEX), unlisted vertices
        information = np.bincount(rows[rows >= 0], 1.0 / var_z0[ok][rows >= 0], minlength=len(ids))
        with np.errstate(divide="ignore"):
            sigma = np.where(information > 0, information**-0.5, np.nan)
        return truth_vertices.with_columns(n_reconstructable=counts.astype(np.int32), sigma_z_tracks=sigma)
