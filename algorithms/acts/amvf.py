"""ACTS's primary-vertex finding (adaptive multi-vertex finder, or the iterative finder) on any
fitted track collection."""

from __future__ import annotations

import shutil
import weakref

import numpy as np

from recotrig.algorithms.acts.base import ActsAlgorithm
from recotrig.algorithms.vertexing.assignment import annealed_weights, impact_chi2
from recotrig.edm import FittedTracks, Tracks, Vertices
from recotrig.framework.algorithm import Option
from recotrig.framework.files import temporary_directory

SEEDERS = ("gaussian", "adaptive_grid")
FINDERS = ("amvf", "iterative")


class ActsAMVF(ActsAlgorithm):
    """Find primary vertices with ACTS's adaptive multi-vertex finder (or, with
    ``finder="iterative"``, ACTS's iterative vertex finder) on a fitted track collection.

    Input: ``tracks`` (``Tracks`` with perigee parameters at the origin and ``cov``, from any
    producer: ``ActsCKF``, ``ActsTrackFit``, an ML fitter). Tracks with non-finite parameters or a
    5x5 covariance that is not positive definite are not given to ACTS. Output: ``vertices``
    (``Vertices``): x, y, z from ACTS; ``track_index`` (rows of the input ``tracks``),
    ``track_weight``, ``ntracks`` and ``sigma_z`` computed by recotrig (below).

    What ACTS's Python bindings do not give, and what is done instead:

    * Input: track parameters cannot be put on ACTS's whiteboard from Python, and a Python-made
      track container cannot carry an arbitrary covariance. The tracks go through ACTS's own CSV
      track-parameter layout (``CsvTrackParameterReader``, a per-process temporary directory):
      d0, z0, phi, theta, q/p and their full 5x5 covariance reach the finder; time does not (ACTS
      sets t = 0), so time-aware vertexing (``useTime``) is not offered.
    * Output: vertices come back through ``CsvVertexWriter`` as positions only. ACTS's vertex
      covariance, its track weights and its track-to-vertex lists (proto-vertices, a type the
      bindings cannot read) are not reachable; no ``cov`` column is written.
    * ``track_weight`` recomputes AMVF's final soft assignment at the found vertex positions:
      w_ij = exp(-chi2_ij/2) / (sum_k exp(-chi2_ik/2) + exp(-9/2)), with chi2_ij the (d0, z0)
      impact-parameter chi2 of track i at vertex j (perigee moved to the vertex to first order,
      track covariance only) and 9 the annealing cut-off at ACTS's final temperature 1. A track
      is listed in ``track_index`` of a vertex when its weight there is at least
      ``min_track_weight`` (0.1, ACTS's ``VertexTruthMatcher.minTrkWeight``); as the weights of a
      track sum to at most 1, it can be listed at several nearby vertices. ``ntracks`` counts the
      listed tracks. ``sigma_z`` = (sum_i w_i / var(z0_i))^-1/2 over them
      is an estimate that ignores the vertex fit's correlations, not ACTS's vertex error.
    """

    outputs = ("vertices",)

    finder = Option("amvf", "vertex finder: 'amvf' (adaptive multi-vertex) or 'iterative'", choices=FINDERS)
    seeder = Option("gaussian", "AMVF seeder: 'gaussian' (track density) or 'adaptive_grid'", choices=SEEDERS)
    max_iterations = Option(1000, "maximum vertex-finding iterations (vertices) per event", low=1)
    spatial_bin_extent = Option(0.015, "adaptive-grid seeder: z bin size [mm]", low=1e-6)
    tracks_max_z_interval = Option(
        1.0, "AMVF: maximum z distance of a track from a seed to be fitted with it [mm]", low=0.0
    )
    min_weight = Option(0.001, "AMVF: minimum track weight for a track to stay in a vertex fit", low=0.0, high=1.0)
    min_track_weight = Option(
        0.1, "recotrig: minimum recomputed weight for a track to be listed at a vertex", low=0.0, high=1.0
    )

    def initialize(self) -> None:
        super().initialize()
        import acts
        import acts.examples

        # the hand-over folder carries this process's id: one a killed process left is removed by the next
        self._dir = temporary_directory("recotrig-amvf")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        bridge = self._bridge
        # the reader scans its directory for event files when it is made
        bridge.write_track_parameters_csv(self._dir, "tracks", 0, np.zeros((0, 5)), np.zeros((0, 5, 5)))
        self._reader = acts.examples.CsvTrackParameterReader(
            level=self.level,
            inputDir=str(self._dir),
            inputStem="tracks",
            outputTrackParameters="trackparameters",
            beamspot=[0.0, 0.0, 0.0],
        )
        common = {
            "level": self.level,
            "inputTrackParameters": "trackparameters",
            "outputProtoVertices": "protovertices",
            "outputVertices": "vertices",
            "bField": self.setup.field,
            "maxIterations": self.max_iterations,
        }
        if self.finder == "amvf":
            seed_finder = {
                "gaussian": acts.examples.VertexSeedFinder.GaussianSeeder,
                "adaptive_grid": acts.examples.VertexSeedFinder.AdaptiveGridSeeder,
            }[self.seeder]
            self._finder = acts.examples.AdaptiveMultiVertexFinderAlgorithm(
                **common,
                seedFinder=seed_finder,
                spatialBinExtent=self.spatial_bin_extent,
                tracksMaxZinterval=self.tracks_max_z_interval,
                minWeight=self.min_weight,
                useTime=False,
            )
        else:
            self._finder = acts.examples.IterativeVertexFinderAlgorithm(**common)
        self._writer = acts.examples.CsvVertexWriter(
            level=self.level,
            inputVertices="vertices",
            outputDir=str(self._dir),
            outputStem="vertices",
            outputPrecision=10,
        )

    @property
    def stage(self) -> str:
        """Timer key of the vertex-finding stage (``amvf_gaussian``, ``amvf_adaptive_grid``, ``iterative``)."""
        return f"amvf_{self.seeder}" if self.finder == "amvf" else "iterative"

    def execute(self, tracks: FittedTracks) -> Vertices:
        bridge = self._bridge
        event = self._next_event()
        number = event.context.eventNumber
        rows = np.flatnonzero(bridge.fitted_rows(tracks))
        with bridge.timed(self.timer, "vertex_input"):
            params = np.stack(
                [np.asarray(tracks[c], dtype=float)[rows] for c in ("d0", "z0", "phi", "theta", "qop")], axis=1
            )
            cov = np.asarray(tracks.cov, dtype=float)[rows][:, :5, :5]
            track_file = bridge.write_track_parameters_csv(self._dir, "tracks", number, params, cov)
        try:
            event.run([("vertex_input", self._reader), (self.stage, self._finder), ("vertex_output", self._writer)])
            with bridge.timed(self.timer, "vertex_output"):
                positions = bridge.read_vertices_csv(self._dir, "vertices", number)
        finally:
            track_file.unlink(missing_ok=True)
            (self._dir / f"event{number:09d}-vertices.csv").unlink(missing_ok=True)
        with bridge.timed(self.timer, "vertex_assignment"):
            return self._vertices(tracks, rows, positions)

    def _vertices(self, tracks: Tracks, rows: np.ndarray, positions: np.ndarray) -> Vertices:
        weights = annealed_weights(impact_chi2(tracks, rows, positions[:, :3]))
        var_z0 = np.asarray(tracks.cov, dtype=float)[rows, 1, 1]
        index, weight, sigma_z = [], [], np.full(len(positions), np.nan)
        for j in range(len(positions)):
            members = np.flatnonzero(weights[j] >= self.min_track_weight)
            index.append(rows[members].tolist())
            weight.append(weights[j, members].tolist())
            if len(members):
                sigma_z[j] = np.sum(weights[j, members] / var_z0[members]) ** -0.5
        return Vertices(
            x=positions[:, 0],
            y=positions[:, 1],
            z=positions[:, 2],
            ntracks=np.array([len(i) for i in index], dtype=np.int32),
            track_index=index,
            track_weight=weight,
            sigma_z=sigma_z,
        )

    def finalize(self) -> None:
        cleanup = getattr(self, "_cleanup", None)
        if cleanup is not None:
            cleanup()
