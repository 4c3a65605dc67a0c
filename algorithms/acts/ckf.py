"""ACTS's classic track finding: triplet seeding, combinatorial Kalman filter, greedy ambiguity
resolution."""

from __future__ import annotations

from typing import Any

import numpy as np

from recotrig.algorithms.acts.base import ActsAlgorithm
from recotrig.edm import FittedTracks, Hits
from recotrig.framework.algorithm import Option

#: (volume, layer) of the generic detector's pixel layers used for seeding space points, as in
#: ACTS's ``generic-seeding-config.json``: barrel (8) and both pixel end caps (7, 9)
GENERIC_SEEDING_LAYERS = (
    (8, 2), (8, 4), (8, 6), (8, 8),
    (9, 2), (9, 4), (9, 6), (9, 8),
    (7, 14), (7, 12), (7, 10), (7, 8),
)  # fmt: skip


class ActsCKF(ActsAlgorithm):
    """Find tracks in ``hits`` with ACTS: space points on the pixel layers, grid triplet seeding,
    seed parameter estimation, the CKF (``TrackFindingAlgorithm``) with a track selection, then
    greedy ambiguity resolution.

    Input: ``hits`` (``Hits`` with the ACTS columns geometry_id, loc0, loc1, var_loc0,
    var_loc1). Output: ``tracks`` (``FittedTracks``): hit ids of each track's measurements (outliers
    excluded, innermost first), perigee parameters at the origin (d0, z0, phi, theta, q/p, t) with
    ACTS's full 6x6 covariance, chi2 and ndf.

    Defaults follow ACTS's ckf_tracks / ttbar physics-monitoring settings for the generic
    detector. Not available here: per-hole/outlier lists and shared-hit flags (only the counts are
    used inside ACTS); the hit time (hits carry no time measurement, so ``t`` and its variance come
    from the seed's initial guess, not a measurement).
    """

    outputs = ("tracks",)

    seed_min_pt = Option(0.5, "minimum seed pT [GeV]", low=0.01)
    seed_impact_max = Option(3.0, "maximum seed transverse impact parameter [mm]", low=0.0)
    seed_r_max = Option(200.0, "maximum space-point radius used for seeding [mm]", low=1.0)
    seed_delta_r_min = Option(1.0, "minimum radial distance between seed space points [mm]", low=0.0)
    seed_delta_r_max = Option(300.0, "maximum radial distance between seed space points [mm]", low=0.0)
    seed_collision_region = Option(250.0, "half-length of the luminous region along z for seeds [mm]", low=0.0)
    seed_z_max = Option(2000.0, "maximum |z| of seeding space points [mm]", low=1.0)
    seeds_per_middle_sp = Option(1, "maximum seeds per middle space point", low=1)
    chi2_cut_measurement = Option(15.0, "CKF: maximum chi2 for a measurement to be added", low=0.0)
    chi2_cut_outlier = Option(25.0, "CKF: maximum chi2 for a measurement to be kept as outlier", low=0.0)
    branches_per_surface = Option(10, "CKF: maximum measurement candidates per surface", low=1)
    track_min_pt = Option(0.5, "minimum track pT [GeV]", low=0.0)
    track_max_abs_eta = Option(3.0, "maximum track |eta|", low=0.0)
    track_max_abs_d0 = Option(4.0, "maximum track |d0| [mm]", low=0.0)
    min_measurements = Option(7, "minimum measurements per track (selection and ambiguity resolution)", low=3)
    max_holes = Option(2, "maximum holes per track", low=0)
    max_outliers = Option(2, "maximum outliers per track", low=0)
    ambiguity = Option(True, "run greedy ambiguity resolution")
    max_shared_hits = Option(3, "ambiguity resolution: maximum shared hits per track", low=0)

    def initialize(self) -> None:
        super().initialize()
        import acts
        import acts.examples

        level = self.level
        geometry, field = self.setup.tracking_geometry, self.setup.field
        self._space_points = self._bridge.space_point_maker(
            self.setup, level, [acts.GeometryIdentifier(volume=v, layer=layer) for v, layer in GENERIC_SEEDING_LAYERS]
        )
        dr = (self.seed_delta_r_min, self.seed_delta_r_max)
        self._seeding = acts.examples.GridTripletSeedingAlgorithm(
            level=level,
            inputSpacePoints="spacepoints",
            outputSeeds="seeds",
            bFieldInZ=self.setup.bfield_z,
            minPt=self.seed_min_pt,
            impactMax=self.seed_impact_max,
            rMax=self.seed_r_max,
            deltaRMin=dr[0], deltaRMax=dr[1],
            deltaRMinTop=dr[0], deltaRMaxTop=dr[1],
            deltaRMinBottom=dr[0], deltaRMaxBottom=dr[1],
            collisionRegionMin=-self.seed_collision_region,
            collisionRegionMax=self.seed_collision_region,
            zMin=-self.seed_z_max,
            zMax=self.seed_z_max,
            maxSeedsPerSpM=self.seeds_per_middle_sp,
            sigmaScattering=5.0,
            radLengthPerSeed=0.1,
        )  # fmt: skip
        self._estimation = acts.examples.TrackParamsEstimationAlgorithm(
            level=level,
            inputSeeds="seeds",
            outputTrackParameters="estimatedparameters",
            outputSeeds="estimatedseeds",
            trackingGeometry=geometry,
            magneticField=field,
            **self._bridge.start_uncertainties(),
        )
        selector = acts.TrackSelector.Config(
            ptMin=self.track_min_pt,
            absEtaMax=self.track_max_abs_eta,
            loc0Min=-self.track_max_abs_d0,
            loc0Max=self.track_max_abs_d0,
            minMeasurements=self.min_measurements,
            maxHoles=self.max_holes,
            maxOutliers=self.max_outliers,
        )
        measurement_selector = acts.MeasurementSelector.Config(
            [
                (
                    acts.GeometryIdentifier(),
                    ([], [self.chi2_cut_measurement], [self.chi2_cut_outlier], [self.branches_per_surface]),
                )
            ]
        )
        finder = acts.examples.TrackFindingAlgorithm
        self._ckf = finder(
            level=level,
            measurementSelectorCfg=measurement_selector,
            inputMeasurements="measurement_subset",
            inputInitialTrackParameters="estimatedparameters",
            inputSeeds="estimatedseeds",
            outputTracks="ckf_tracks",
            findTracks=finder.makeTrackFinderFunction(geometry, field, level),
            findTracksBrem=finder.makeBremTrackFinderFunction(geometry, field, level),
            trackingGeometry=geometry,
            magneticField=field,
            trackSelectorCfg=selector,
            twoWay=True,
            seedDeduplication=True,
            stayOnSeed=True,
        )
        self._ambiguity = acts.examples.GreedyAmbiguityResolutionAlgorithm(
            level=level,
            inputTracks="ckf_tracks",
            outputTracks="ambi_tracks",
            maximumSharedHits=self.max_shared_hits,
            maximumIterations=1_000_000,
            nMeasurementsMin=self.min_measurements,
        )

    def chain(self) -> list[tuple[str, Any]]:
        """The ACTS stages in order, as (stage name, ACTS algorithm)."""
        stages = [
            ("space_points", self._space_points),
            ("seeding", self._seeding),
            ("seed_parameters", self._estimation),
            ("ckf", self._ckf),
        ]
        if self.ambiguity:
            stages.append(("ambiguity", self._ambiguity))
        return stages

    def execute(self, hits: Hits) -> FittedTracks:
        import acts.examples

        bridge = self._bridge
        event = self._next_event()
        with bridge.timed(self.timer, "measurements"):
            bridge.put_measurements(event, hits, self.setup, name=self.key("hits"))
        event.run(self.chain())
        key = "ambi_tracks" if self.ambiguity else "ckf_tracks"
        with bridge.timed(self.timer, "convert"):
            tracks, _ = bridge.tracks_from_acts(
                event.get(key, acts.examples.ConstTrackContainer), np.asarray(hits.hit_id)
            )
        return tracks
