"""Detector response: ACTS Fatras simulation and ACTS smearing digitization, driven per event.

How the ACTS pieces are driven (pyacts 48.1.0):

* Particles go in as ``acts.examples.SimParticle`` objects built in Python (barcode = vertex number,
  particle number within the vertex), inserted into a ``SimParticleContainer`` and put on a fresh
  ``WhiteBoard`` through a ``WriteDataHandle`` owned by a small Python ``IAlgorithm``. No HepMC3
  file round trip is needed.
* ``FatrasSimulation`` and ``DigitizationAlgorithm`` run through ``alg.internalExecute(ctx)``;
  results are read back with ``ReadDataHandle``s and copied to numpy inside the event.
* The wheel ships no digitization JSON: the smearing configuration (one Gaussian per local
  coordinate and volume) is written as ACTS's geometry-hierarchy-map JSON to a temporary file and
  read with ``acts.examples.json.readDigiConfigFromJson`` (``DigiComponentsConfig`` fields are not
  settable from Python).
* Random numbers: ACTS's ``RandomNumbers.spawnGenerator(ctx)`` seeds from the config seed and the
  context's event number only. Each algorithm therefore gets its own ``AlgorithmContext`` whose
  "event number" is a seed derived from (run seed, event number, stream): deterministic per event,
  independent of the history of the process, uncorrelated between runs and algorithms.
* ``FatrasSimulation.Config.pMin`` (default 0.5 GeV) is a cut on the *input* particles as well as
  the kill threshold for secondaries; it is lowered here (``fatras_p_min``), otherwise every
  particle below 0.5 GeV silently vanishes.
* Hit positions: the measured global position is rebuilt from the smeared local coordinates with
  each module's plane frame (origin and local axes taken once per module from
  ``Surface.localToGlobal``; all GenericDetector sensitive surfaces are planes). ``Hits.t`` is the
  true time (the smearing configuration measures no time).
* There is no bulk export of ACTS containers to numpy: sim hits and measurements are read with a
  Python loop (a few microseconds per hit); that loop is the largest Python cost per event.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from typing import Any

import numpy as np

from recotrig.detector import DetectorSpec, detector_context
from recotrig.sim.pileup import Crossing

__all__ = ["DigiResolution", "DetectorResponse", "GENERIC_VOLUMES", "encode_particle_id", "decode_particle_id"]

#: GenericDetector volume ids of each sensitive sub-detector (negative end cap, barrel, positive end cap)
GENERIC_VOLUMES: dict[str, tuple[int, ...]] = {
    "pixel": (7, 8, 9),
    "short_strip": (12, 13, 14),
    "long_strip": (16, 17, 18),
}

# particle_id bit layout (63 bits, always a positive int64):
# vertex primary 14 | vertex secondary 10 | particle 20 | generation 6 | sub-particle 13
_FIELDS = (("vertex_primary", 14), ("vertex_secondary", 10), ("particle", 20), ("generation", 6), ("sub_particle", 13))
_SHIFTS = {}
_shift = 63
for _name, _bits in _FIELDS:
    _shift -= _bits
    _SHIFTS[_name] = (_shift, _bits)


def encode_particle_id(vertex_primary, vertex_secondary, particle, generation, sub_particle) -> np.ndarray:
    """Pack the five ACTS barcode fields into a positive int64 (arrays or scalars)."""
    out = np.zeros(np.shape(vertex_primary), np.int64)
    for (name, _), value in zip(_FIELDS, (vertex_primary, vertex_secondary, particle, generation, sub_particle)):
        shift, bits = _SHIFTS[name]
        value = np.asarray(value, np.int64)
        if np.any(value < 0) or np.any(value >= 1 << bits):
            raise ValueError(f"barcode field {name} out of range [0, {(1 << bits) - 1}]: max {int(np.max(value))}")
        out |= value << shift
    return out


def decode_particle_id(particle_id) -> dict[str, np.ndarray]:
    """Inverse of ``encode_particle_id``: the five barcode fields of each id."""
    pid = np.asarray(particle_id, np.int64)
    return {name: (pid >> shift) & ((1 << bits) - 1) for name, (shift, bits) in _SHIFTS.items()}


@dataclass(frozen=True)
class DigiResolution:
    """Gaussian smearing (sigma of local 0, local 1, in mm) for each GenericDetector sub-detector.

    Defaults: pixels 15 um x 50 um; strips pitch/sqrt(12) of TrackML-like strips, short strips
    80 um x 1.2 mm, long strips 120 um x 10.8 mm. Local 0 is the precise (r-phi) direction."""

    pixel: tuple[float, float] = (0.015, 0.050)
    short_strip: tuple[float, float] = (0.080 / 12**0.5, 1.2 / 12**0.5)
    long_strip: tuple[float, float] = (0.120 / 12**0.5, 10.8 / 12**0.5)

    def __post_init__(self) -> None:
        for kind in GENERIC_VOLUMES:
            sigmas = tuple(float(s) for s in getattr(self, kind))
            if len(sigmas) != 2 or min(sigmas) <= 0:
                raise ValueError(f"DigiResolution.{kind} must be two positive sigmas in mm, got {sigmas}")
            object.__setattr__(self, kind, sigmas)

    def by_volume(self) -> dict[int, tuple[float, float]]:
        return {v: getattr(self, kind) for kind, volumes in GENERIC_VOLUMES.items() for v in volumes}

    def acts_json(self) -> dict[str, Any]:
        """The ACTS digitization config (geometry-hierarchy map of smearers) for these sigmas."""
        entries = []
        for volume, sigmas in sorted(self.by_volume().items()):
            smearing = [{"index": i, "mean": 0.0, "stddev": s, "type": "Gauss"} for i, s in enumerate(sigmas)]
            entries.append({"volume": volume, "value": {"smearing": smearing}})
        return {
            "acts-geometry-hierarchy-map": {"format-version": 0, "value-identifier": "digitization-configuration"},
            "entries": entries,
        }


class _ModuleFrames:
    """Per-module plane frames (origin, local x and y axes), filled on demand."""

    def __init__(self, surfaces: dict[int, Any], gctx: Any):
        self._surfaces = surfaces
        self._gctx = gctx
        self._frames: dict[int, np.ndarray] = {}

    def frames(self, geometry_ids: np.ndarray) -> np.ndarray:
        """(n, 9) array: origin, local-x axis, local-y axis of the module of each geometry id."""
        import acts

        unique, inverse = np.unique(geometry_ids, return_inverse=True)
        table = np.empty((len(unique), 9))
        direction = acts.Vector3(0.0, 0.0, 1.0)
        for row, gid in enumerate(unique.tolist()):
            frame = self._frames.get(gid)
            if frame is None:
                surface = self._surfaces.get(gid)
                if surface is None:
                    raise KeyError(f"no sensitive surface with geometry id {gid}")
                points = [
                    np.asarray(surface.localToGlobal(self._gctx, acts.Vector2(u, v), direction))
                    for u, v in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0))
                ]
                frame = np.concatenate([points[0], points[1] - points[0], points[2] - points[0]])
                self._frames[gid] = frame
            table[row] = frame
        return table[inverse]

    def to_global(self, geometry_ids: np.ndarray, loc0: np.ndarray, loc1: np.ndarray) -> np.ndarray:
        f = self.frames(geometry_ids)
        return f[:, 0:3] + loc0[:, None] * f[:, 3:6] + loc1[:, None] * f[:, 6:9]


class _ActsChain:
    """The per-process ACTS objects: Fatras, digitization, data handles, module frames."""

    def __init__(self, spec: DetectorSpec, resolution: DigiResolution, fatras_p_min: float):
        import acts
        import acts.examples as ae
        import acts.examples.json as ae_json

        self.ctx = detector_context(spec)
        self.level = acts.logging.ERROR
        geometry = self.ctx.tracking_geometry
        surface_map = geometry.geoIdSurfaceMap()

        handle, path = tempfile.mkstemp(prefix="recotrig-digi-", suffix=".json")
        try:
            with os.fdopen(handle, "w") as stream:
                json.dump(resolution.acts_json(), stream)
            digi_config = ae_json.readDigiConfigFromJson(path)
        finally:
            os.unlink(path)

        self.fatras = ae.FatrasSimulation(
            ae.FatrasSimulation.Config(
                inputParticles="particles_input",
                outputParticles="particles_simulated",
                outputSimHits="simhits",
                randomNumbers=ae.RandomNumbers(seed=0),
                trackingGeometry=geometry,
                magneticField=self.ctx.field,
                pMin=fatras_p_min * acts.UnitConstants.GeV,
            ),
            self.level,
        )
        self.digi = ae.DigitizationAlgorithm(
            ae.DigitizationAlgorithm.Config(
                digitizationConfigs=digi_config,
                surfaceByIdentifier=surface_map,
                randomNumbers=ae.RandomNumbers(seed=0),
                inputSimHits="simhits",
                outputMeasurements="measurements",
                outputClusters="clusters",
                outputMeasurementParticlesMap="measurement_particles_map",
                outputMeasurementSimHitsMap="measurement_simhits_map",
                outputParticleMeasurementsMap="particle_measurements_map",
                outputSimHitMeasurementsMap="simhit_measurements_map",
                doMerge=False,
            ),
            self.level,
        )

        class _Io(ae.IAlgorithm):  # owner of the handles that move data on and off the whiteboard
            def __init__(self, level: Any):
                super().__init__("RecotrigSimIo", level)
                self.particles_in = ae.WriteDataHandle(self, ae.SimParticleContainer, "InputParticles")
                self.particles_in.initialize("particles_input")
                self.particles_out = ae.ReadDataHandle(self, ae.SimParticleContainer, "SimulatedParticles")
                self.particles_out.initialize("particles_simulated")
                self.simhits = ae.ReadDataHandle(self, ae.SimHitContainer, "SimHits")
                self.simhits.initialize("simhits")
                self.measurements = ae.ReadDataHandle(self, ae.MeasurementContainer, "Measurements")
                self.measurements.initialize("measurements")
                self.meas_simhits = ae.ReadDataHandle(self, ae.MeasurementSimHitsMap, "MeasurementSimHits")
                self.meas_simhits.initialize("measurement_simhits_map")
                self.particle_meas = ae.ReadDataHandle(self, ae.ParticleMeasurementsMap, "ParticleMeasurements")
                self.particle_meas.initialize("particle_measurements_map")

            def execute(self, context: Any) -> Any:
                return ae.ProcessCode.SUCCESS

        self.io = _Io(self.level)
        sensitive = {int(g.value): s for g, s in surface_map.items() if g.sensitive}
        self.frames = _ModuleFrames(sensitive, self.ctx.geometry_context)
        digitized_volumes = set(resolution.by_volume())
        self.sensitive_ids = np.array(
            sorted(g for g in sensitive if (g >> 56) in digitized_volumes), np.uint64
        )  # volume id is the top byte of an ACTS geometry id
        self.bounds = {g: (type(s.bounds).__name__, tuple(s.bounds.values())) for g, s in sensitive.items()}


_CHAINS: dict[tuple, _ActsChain] = {}
_LOCK = threading.Lock()


def _chain(spec: DetectorSpec, resolution: DigiResolution, fatras_p_min: float) -> _ActsChain:
    key = (spec, resolution, fatras_p_min)
    with _LOCK:
        if key not in _CHAINS:
            _CHAINS[key] = _ActsChain(spec, resolution, fatras_p_min)
        return _CHAINS[key]


_get_pos = attrgetter("fourPosition")
_get_mom = attrgetter("momentum4Before")
_get_pid = attrgetter("particleId")
_get_gid = attrgetter("geometryId")
_get_params = attrgetter("fullParameters")
_get_value = attrgetter("value")


def _barcodes(barcodes: list) -> np.ndarray:
    """(n, 5) array of barcode fields from ACTS Barcode objects."""
    fields = attrgetter("vertexPrimary", "vertexSecondary", "particle", "generation", "subParticle")
    return np.array([fields(b) for b in barcodes], np.int64).reshape(-1, 5)


def _rows(vectors: list, width: int) -> np.ndarray:
    """Stack ACTS Eigen vectors (they expose the buffer protocol) into an (n, width) array."""
    out = np.empty((len(vectors), width))
    for row, vector in enumerate(vectors):
        out[row] = vector
    return out


@dataclass(frozen=True)
class DetectorResponse:
    """Fatras + smearing digitization of a crossing on ``spec``'s detector. Picklable; the ACTS
    objects are built lazily once per process (and per configuration)."""

    spec: DetectorSpec = field(default_factory=DetectorSpec)
    resolution: DigiResolution = field(default_factory=DigiResolution)
    fatras_p_min: float = 0.05

    def metadata(self) -> dict[str, Any]:
        return {
            "detector": self.spec.to_dict(),
            "digitization": {"type": "gaussian smearing", "sigma_mm": asdict(self.resolution)},
            "fatras_p_min_gev": self.fatras_p_min,
        }

    def prepare(self) -> None:
        """Build the ACTS objects now (otherwise done on first use)."""
        _chain(self.spec, self.resolution, self.fatras_p_min)

    def simulate(self, crossing: Crossing, *, fatras_seed: int, digi_seed: int) -> dict[str, dict[str, np.ndarray]]:
        """Run Fatras and digitization on the particles of ``crossing``.

        Returns numpy arrays: ``measurements`` (one row per measurement, ordered by geometry id:
        geometry_id, loc0, loc1, var_loc0, var_loc1, x, y, z and the truth of its sim hit:
        particle_id, tx, ty, tz, tt, tpx, tpy, tpz) and ``secondaries`` (particles Fatras made:
        particle_id, pdg, q, vx, vy, vz, vt, px, py, pz, m).
        """
        import acts
        import acts.examples as ae

        chain = _chain(self.spec, self.resolution, self.fatras_p_min)
        u = acts.UnitConstants
        board = ae.WhiteBoard(chain.level)
        chain.io.particles_in(ae.AlgorithmContext(0, 0, board, 0), self._acts_particles(crossing))

        code = chain.fatras.internalExecute(ae.AlgorithmContext(1, int(fatras_seed), board, 0))
        if code != ae.ProcessCode.SUCCESS:
            raise RuntimeError(f"ACTS FatrasSimulation returned {code}")
        code = chain.digi.internalExecute(ae.AlgorithmContext(2, int(digi_seed), board, 0))
        if code != ae.ProcessCode.SUCCESS:
            raise RuntimeError(f"ACTS DigitizationAlgorithm returned {code}")

        # measurements: local coordinates and module; the sim hit and particle of each --------
        measurements = chain.io.measurements(board)
        n_meas = len(measurements)
        proxies = list(map(measurements.__getitem__, range(n_meas)))
        gids = np.fromiter(map(_get_value, map(_get_gid, proxies)), np.uint64, count=n_meas)
        params = _rows(list(map(_get_params, proxies)), 6)
        loc0, loc1 = params[:, 0].copy(), params[:, 1].copy()
        pairs = np.array(list(chain.io.meas_simhits(board)), np.int64).reshape(-1, 2)
        if len(pairs) != n_meas or not np.array_equal(np.sort(pairs[:, 0]), np.arange(n_meas)):
            raise RuntimeError("expected exactly one sim hit per measurement (smearing digitization, no merging)")
        simhit_of = np.empty(n_meas, np.int64)
        simhit_of[pairs[:, 0]] = pairs[:, 1]
        simulated = list(chain.io.particles_out(board))
        barcodes = list(map(_get_pid, simulated))
        particle_ids = self._encode(_barcodes(barcodes))
        meas_pid = np.zeros(n_meas, np.int64)
        by_particle = chain.io.particle_meas(board)
        for pid, barcode in zip(particle_ids.tolist(), barcodes):
            meas_pid[by_particle.valuesFor(barcode)] = pid
        if n_meas and not meas_pid.all():
            raise RuntimeError("measurement without a truth particle in ACTS's particle-measurement map")

        # truth of the sim hit behind each measurement ------------------------------------------
        simhits = list(chain.io.simhits(board))
        positions = _rows(list(map(_get_pos, simhits)), 4)[simhit_of]
        momenta = _rows(list(map(_get_mom, simhits)), 4)[simhit_of]
        variances = self._variances(gids)
        xyz = chain.frames.to_global(gids, loc0, loc1) if n_meas else np.zeros((0, 3))
        measured = {
            "geometry_id": gids,
            "loc0": loc0,
            "loc1": loc1,
            "var_loc0": variances[:, 0],
            "var_loc1": variances[:, 1],
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "particle_id": meas_pid,
            "tx": positions[:, 0],
            "ty": positions[:, 1],
            "tz": positions[:, 2],
            "tt": positions[:, 3] / u.ns,
            "tpx": momenta[:, 0],
            "tpy": momenta[:, 1],
            "tpz": momenta[:, 2],
        }
        return {"measurements": measured, "secondaries": self._secondaries(simulated, barcodes, particle_ids)}

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _encode(fields: np.ndarray) -> np.ndarray:
        return encode_particle_id(*(fields[:, i] for i in range(5)))

    def _variances(self, gids: np.ndarray) -> np.ndarray:
        volumes = (gids >> np.uint64(56)).astype(np.int64)
        table = np.full((256, 2), np.nan)
        for volume, sigmas in self.resolution.by_volume().items():
            table[volume] = np.square(sigmas)
        out = table[volumes]
        if np.isnan(out).any():
            missing = sorted(set(volumes[np.isnan(out[:, 0])].tolist()))
            raise RuntimeError(f"measurement in a volume without resolution: {missing}")
        return out

    @staticmethod
    def _acts_particles(crossing: Crossing) -> Any:
        import acts
        import acts.examples as ae

        u = acts.UnitConstants
        container = ae.SimParticleContainer()
        p = np.sqrt(crossing.px**2 + crossing.py**2 + crossing.pz**2)
        with np.errstate(invalid="ignore", divide="ignore"):
            direction = np.stack([crossing.px, crossing.py, crossing.pz], axis=1) / p[:, None]
        columns = zip(
            crossing.vertex.tolist(),
            crossing.index.tolist(),
            crossing.pdg.tolist(),
            crossing.q.tolist(),
            crossing.m.tolist(),
            p.tolist(),
            direction.tolist(),
            np.stack([crossing.x, crossing.y, crossing.z, crossing.t * u.ns], axis=1).tolist(),
        )
        Barcode, SimParticle, Pdg = ae.SimBarcode, ae.SimParticle, acts.PdgParticle
        for vertex, index, pdg, q, mass, mom, dirn, pos in columns:
            barcode = Barcode()
            barcode.vertexPrimary = vertex
            barcode.particle = index
            particle = SimParticle(barcode, Pdg(pdg), float(q), mass)
            particle.fourPosition = acts.Vector4(*pos)
            particle.direction = acts.Vector3(*dirn)
            particle.absoluteMomentum = mom
            container.insert(particle)
        return container

    @staticmethod
    def _secondaries(simulated: list, barcodes: list, particle_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Kinematics of the particles Fatras created (primaries are known from the crossing)."""
        import acts

        u = acts.UnitConstants
        fields = decode_particle_id(particle_ids)
        secondary = (fields["vertex_secondary"] != 0) | (fields["generation"] != 0) | (fields["sub_particle"] != 0)
        chosen = [p for p, s in zip(simulated, secondary.tolist()) if s]
        pos = _rows([p.fourPosition for p in chosen], 4)
        mom = np.array([p.absoluteMomentum for p in chosen], np.float64)
        direction = _rows([p.direction for p in chosen], 3)
        return {
            "particle_id": particle_ids[secondary],
            "pdg": np.array([int(p.pdg) for p in chosen], np.int32),
            "q": np.rint([p.charge for p in chosen]).astype(np.int32),
            "m": np.array([p.mass for p in chosen], np.float64),
            "vx": pos[:, 0],
            "vy": pos[:, 1],
            "vz": pos[:, 2],
            "vt": pos[:, 3] / u.ns,
            "px": mom * direction[:, 0],
            "py": mom * direction[:, 1],
            "pz": mom * direction[:, 2],
        }

    def noise(self, count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``count`` noise measurements: uniform over the digitized modules, uniform within each
        module's bounds. Same columns as ``simulate``'s measurements; truth particle 0, truth
        position = measured position, time and momentum 0."""
        chain = _chain(self.spec, self.resolution, self.fatras_p_min)
        modules = chain.sensitive_ids
        gids = np.sort(modules[rng.integers(0, len(modules), count)]) if count else np.zeros(0, np.uint64)
        loc = np.zeros((count, 2))
        for row, gid in enumerate(gids.tolist()):
            loc[row] = _uniform_in_bounds(*chain.bounds[gid], rng)
        variances = self._variances(gids)
        xyz = chain.frames.to_global(gids, loc[:, 0], loc[:, 1]) if count else np.zeros((0, 3))
        zeros = np.zeros(count)
        return {
            "geometry_id": gids,
            "loc0": loc[:, 0],
            "loc1": loc[:, 1],
            "var_loc0": variances[:, 0],
            "var_loc1": variances[:, 1],
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "particle_id": np.zeros(count, np.int64),
            "tx": xyz[:, 0].copy(),
            "ty": xyz[:, 1].copy(),
            "tz": xyz[:, 2].copy(),
            "tt": zeros,
            "tpx": zeros,
            "tpy": zeros,
            "tpz": zeros,
        }


def _uniform_in_bounds(kind: str, values: tuple[float, ...], rng: np.random.Generator) -> tuple[float, float]:
    """A uniform local position inside rectangle or trapezoid bounds (rejection sampling)."""
    if kind == "RectangleBounds":
        x0, y0, x1, y1 = values
        return float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))
    if kind == "TrapezoidBounds":
        half_x_neg, half_x_pos, half_y = values[:3]
        if len(values) > 3 and values[3] != 0:
            raise ValueError("noise hits: rotated trapezoid bounds are not supported")
        wide = max(half_x_neg, half_x_pos)
        while True:
            x, y = rng.uniform(-wide, wide), rng.uniform(-half_y, half_y)
            if abs(x) <= half_x_neg + (half_x_pos - half_x_neg) * (y + half_y) / (2 * half_y):
                return float(x), float(y)
    raise ValueError(f"noise hits: unsupported module bounds {kind}")
