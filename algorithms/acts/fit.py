"""Kalman fit of hit-assigned tracks (what an ML track finder produces) with ACTS."""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np

from recotrig.algorithms.acts.base import ActsAlgorithm
from recotrig.edm import TRACK_PARAMETERS, FittedTracks, Hits, Tracks
from recotrig.framework.algorithm import Option
from recotrig.framework.lookup import DuplicateIdError, index_of


def hit_rows(hit_ids: np.ndarray, wanted: np.ndarray, *, what: str) -> np.ndarray:
    """Row of each id of ``wanted`` in ``hit_ids``; ``ValueError`` naming the first unknown id."""
    hit_ids = np.asarray(hit_ids, dtype=np.int64)
    wanted = np.asarray(wanted, dtype=np.int64)
    try:
        rows = index_of(hit_ids, wanted)
    except DuplicateIdError as err:
        raise ValueError(f"{what}: the hits collection has {err}") from None
    bad = rows < 0
    if bad.any():
        raise ValueError(f"{what}: hit id {int(wanted[np.flatnonzero(bad)[0]])} is not in the hits collection")
    return rows


def match_subsequence(parents: list[list[int]], children: list[list[int]]) -> list[int]:
    """For each child (a list of measurement indices) the index of its parent.

    ACTS keeps the order of its input and drops what it cannot seed or fit, so the children are,
    in order, a subsequence of the parents; a child holds its parent's measurements or, after a
    fit that did not reach every surface, a subset of them. Each child takes the first parent at
    or after the previous match that contains all of its measurements; a child without
    measurements gets -1.
    """
    out = []
    p = 0
    for child in children:
        key = set(child)
        if not key:
            out.append(-1)
            continue
        while p < len(parents) and not key <= set(parents[p]):
            p += 1
        if p == len(parents):
            raise RuntimeError("ACTS output tracks do not follow the input proto-tracks")
        out.append(p)
        p += 1
    return out


class ActsTrackFit(ActsAlgorithm):
    """Fit tracks given as hit assignments with ACTS's Kalman filter.

    Inputs: ``tracks`` (``Tracks``; only ``hit_ids`` is used) and ``hits`` (``Hits`` with the
    ACTS columns). Output: ``fitted`` (``Tracks``), row for row the input tracks with the same
    ``hit_ids``, plus perigee parameters at the origin (d0, z0, phi, theta, q/p, t), ACTS's full 6x6
    covariance, chi2 and ndf.

    As in ACTS's GNN chain: space points are made from the hits on ``seed_volumes``,
    ``ProtoTracksToParameters`` picks three space points of each track (spread in radius) as a
    seed, and ``TrackFittingAlgorithm`` runs the Kalman fitter (material effects on, no outlier
    rejection); ``TrackExtrapolationAlgorithm`` then takes the innermost state to the perigee at
    the origin through the beam-pipe material. One step differs from the GNN chain:
    ``ProtoTracksToParameters`` gives every start estimate a fixed covariance of 25 um, 100 um,
    0.02 degree, ... that the Python bindings cannot change; used as the fit's prior it biases
    low-pT tracks and shrinks their errors (z0 pulls of width ~4 here). The start parameters are
    therefore re-estimated from the same seeds by ``TrackParamsEstimationAlgorithm`` with ACTS's
    seeding uncertainties (1 mm, 1 mm, 1 degree, 1 degree, 10 % in q/pT, 1 ns), which gives z0 and
    q/p pulls of width 1.0 on truth proto-tracks.

    Tracks that cannot be fitted -- fewer than three space points on distinct layers, a failed
    parameter estimate or a failed fit -- keep their row with NaN parameters, NaN covariance,
    NaN chi2 and ndf 0 (``drop_failed=True`` removes those rows instead). ``t`` is not measured
    (the hits carry no time); it and its variance come from the start-parameter guess.
    """

    outputs = ("fitted",)

    seed_volumes = Option(
        [7, 8, 9, 12, 13, 14], "ACTS volumes whose hits give space points for start parameters", item=int, low=0
    )
    multiple_scattering = Option(True, "Kalman fitter: multiple scattering")
    energy_loss = Option(True, "Kalman fitter: energy loss")
    drop_failed = Option(False, "drop tracks that could not be fitted (default: keep them with NaN parameters)")

    def initialize(self) -> None:
        super().initialize()
        import acts
        import acts.examples

        level = self.level
        geometry, field = self.setup.tracking_geometry, self.setup.field
        self._space_points = self._bridge.space_point_maker(
            self.setup, level, [acts.GeometryIdentifier(volume=int(v)) for v in self.seed_volumes]
        )
        # it warns about every track it cannot seed; recotrig reports those as NaN rows instead
        quiet = acts.logging.Level(max(int(level), int(acts.logging.ERROR)))
        self._start = acts.examples.ProtoTracksToParameters(
            level=quiet,
            inputProtoTracks="prototracks",
            inputSpacePoints="spacepoints",
            outputParameters="prototrack_parameters",
            outputProtoTracks="seeded_prototracks",
            outputSeeds="prototrack_seeds",
            geometry=geometry,
            magneticField=field,
        )
        # ProtoTracksToParameters gives each start estimate a tight fixed covariance (25 um,
        # 0.02 degree, ...) that the bindings cannot change and that would act as a wrong prior
        # in the fit: re-estimate from the same seeds with ACTS's seeding defaults instead
        self._estimate = acts.examples.TrackParamsEstimationAlgorithm(
            level=quiet,
            inputSeeds="prototrack_seeds",
            inputProtoTracks="seeded_prototracks",
            outputTrackParameters="start_parameters",
            outputProtoTracks="estimated_prototracks",
            outputSeeds="estimated_seeds",
            trackingGeometry=geometry,
            magneticField=field,
            **self._bridge.start_uncertainties(),
        )
        fit_function = acts.examples.makeKalmanFitterFunction(
            geometry,
            field,
            multipleScattering=self.multiple_scattering,
            energyLoss=self.energy_loss,
            reverseFilteringMomThreshold=0.0,
            reverseFilteringCovarianceScaling=100.0,
            freeToBoundCorrection=acts.examples.FreeToBoundCorrection(False),
            chi2Cut=float("inf"),
            useJosephFormulation=False,
            level=level,
        )
        self._fit = acts.examples.TrackFittingAlgorithm(
            level=level,
            inputMeasurements="measurements",
            inputProtoTracks="estimated_prototracks",
            inputInitialTrackParameters="start_parameters",
            outputTracks="fitted_tracks",
            pickTrack=-1,
            fit=fit_function,
            calibrator=acts.examples.makePassThroughCalibrator(),
            referenceSurface=acts.Surface.createPerigee(acts.Vector3(0, 0, 0)),
        )
        self._perigee = acts.examples.TrackExtrapolationAlgorithm(
            level=level,
            inputTracks="fitted_tracks",
            outputTracks="fitted_perigee_tracks",
            targetSurface=acts.Surface.createPerigee(acts.Vector3(0, 0, 0)),
            trackingGeometry=geometry,
            magneticField=field,
            strategy=acts.examples.TrackExtrapolationStrategy.first,
        )

    def execute(self, tracks: Tracks, hits: Hits) -> FittedTracks:
        import acts.examples

        bridge = self._bridge
        event = self._next_event()
        n = len(tracks)
        flat = ak.to_numpy(ak.flatten(tracks.hit_ids)) if n else np.zeros(0, np.int64)
        rows = hit_rows(np.asarray(hits.hit_id), flat, what=f"{self.name}: tracks {self.key('tracks')!r}")
        counts = ak.to_numpy(ak.num(tracks.hit_ids)) if n else np.zeros(0, np.int64)
        proto = [r.tolist() for r in np.split(rows, np.cumsum(counts)[:-1])] if n else []

        with bridge.timed(self.timer, "measurements"):
            bridge.put_measurements(event, hits, self.setup, name=self.key("hits"))
            event.put("prototracks", bridge.proto_tracks(proto))
        event.run(
            [
                ("space_points", self._space_points),
                ("start_parameters", self._start),
                ("estimate", self._estimate),
                ("fit", self._fit),
                ("perigee", self._perigee),
            ]
        )

        with bridge.timed(self.timer, "convert"):
            seeded = [list(p) for p in event.get("estimated_prototracks", acts.examples.ProtoTrackContainer)]
            container = event.get("fitted_perigee_tracks", acts.examples.ConstTrackContainer)
            fitted, measurements = bridge.tracks_from_acts(container, np.asarray(hits.hit_id), outliers=True)
            seeded_to_input = match_subsequence(proto, seeded)
            fitted_to_seeded = match_subsequence(seeded, measurements)
            source = np.asarray([seeded_to_input[i] if i >= 0 else -1 for i in fitted_to_seeded], dtype=np.int64)
            out = self._assemble(tracks, fitted.select(source >= 0), source[source >= 0])
        return out

    def _assemble(self, tracks: Tracks, fitted: FittedTracks, source: np.ndarray) -> FittedTracks:
        """Input rows with the fit results of ``fitted`` (fitted row k belongs to input row
        ``source[k]``); rows without a fit get NaN (or are dropped)."""
        n = len(tracks)
        columns: dict[str, Any] = {name: np.full(n, np.nan) for name in TRACK_PARAMETERS}
        columns["cov"] = np.full((n, 6, 6), np.nan)
        columns["chi2"] = np.full(n, np.nan)
        columns["ndf"] = np.zeros(n, np.int32)
        if len(source):
            for name, column in columns.items():
                column[source] = np.asarray(fitted[name])
        ok = np.isfinite(columns["z0"])
        out = FittedTracks(hit_ids=tracks.hit_ids, **columns)
        return out.select(ok) if self.drop_failed else out
