"""Simulated events as recotrig containers: Pythia 8 pile-up -> ACTS Fatras -> ACTS smearing.

``Simulator`` is a plain, picklable configuration. Pythia and the ACTS geometry/algorithms are
created lazily in whichever process first simulates an event, once per process. Every random
number of event ``n`` derives from ``(seed, n)``, so ``simulate(n)`` gives byte-identical arrays
whatever was simulated before in the process and however events are spread over processes.

Conventions of the containers returned by ``simulate``:

* ``hits``: one row per measurement, ordered by ACTS geometry id; ``hit_id`` is 1..N. ``x, y, z``
  is the measured (smeared) position on the module plane, ``t`` the true time (no time
  measurement); ``volume_id, layer_id, module_id`` are the ACTS volume, layer and sensitive numbers.
* ``particles``: the generated particles handed to Fatras (after the ``pt_min``/``eta_max``/vertex
  cuts) and the secondaries Fatras created, ordered by ``particle_id``. ``particle_id`` packs the
  ACTS barcode into a positive int64 (see ``fatras.encode_particle_id``); ``vertex_id`` is the
  interaction it comes from; ``nhits`` counts its rows in ``hits``.
* ``truth``: per hit, its particle (0 for noise) and the true position, time and momentum.
* ``vertices``: one row per interaction; vertex 1 is the hard scatter when there is one.
  ``n_charged`` counts all charged final-state particles Pythia generated there (before cuts).
* ``l1``: the crossing's Level-1 trigger objects (``sim.l1``), built from every final-state
  particle of every interaction of the same crossing (neutrals and neutrinos included), with
  their own random stream.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from recotrig.detector import DetectorSpec
from recotrig.edm import Hits, HitTruth, L1Objects, Particles, TruthVertices
from recotrig.framework.lookup import index_of
from recotrig.sim.fatras import DetectorResponse, DigiResolution, decode_particle_id, encode_particle_id
from recotrig.sim.l1 import L1Response
from recotrig.sim.pileup import (
    STREAM_DIGI,
    STREAM_FATRAS,
    STREAM_L1,
    STREAM_NOISE,
    BeamSpot,
    Crossing,
    PileupGenerator,
    event_seed,
)

__all__ = ["Simulator"]


@dataclass(frozen=True, kw_only=True)
class Simulator:
    """Configuration of the simulation chain; ``simulate(event_number)`` makes one event.

    mu: mean number of minimum-bias interactions per crossing (Poisson), 0 to 200 typical.
    hard_scatter: ``"ttbar"`` or None.
    seed: run seed; with the event number it fixes every random number of the event.
    beam_sigma_xy, beam_sigma_z (mm), beam_sigma_t (ns): Gaussian beam spot.
    detector: geometry and field (``recotrig.detector.DetectorSpec``).
    resolution: smearing sigmas per sub-detector (``fatras.DigiResolution``).
    noise, noise_fraction: add noise hits, Poisson mean ``noise_fraction`` x number of real hits.
    charged_only: hand only charged final-state particles to Fatras (else all but neutrinos).
    pt_min (GeV), eta_max, vertex_rho_max, vertex_z_max (mm): which particles go to Fatras.
    fatras_p_min (GeV): Fatras's own momentum threshold (input and secondaries).
    pythia_settings: extra Pythia setting lines for every process.
    l1: the Level-1 calorimeter/muon model and object definitions (``sim.l1.L1Response``).
    """

    mu: float = 20.0
    hard_scatter: str | None = None
    seed: int = 1
    beam_sigma_xy: float = 0.012
    beam_sigma_z: float = 45.0
    beam_sigma_t: float = 0.18
    detector: DetectorSpec = field(default_factory=DetectorSpec)
    resolution: DigiResolution = field(default_factory=DigiResolution)
    noise: bool = False
    noise_fraction: float = 0.05
    charged_only: bool = True
    pt_min: float = 0.1
    eta_max: float = 4.0
    vertex_rho_max: float = 1000.0
    vertex_z_max: float = 3000.0
    fatras_p_min: float = 0.05
    pythia_settings: tuple[str, ...] = ()
    l1: L1Response = field(default_factory=L1Response)

    def __post_init__(self) -> None:
        if self.pt_min < 0 or self.eta_max <= 0:
            raise ValueError(f"need pt_min >= 0 and eta_max > 0, got {self.pt_min}, {self.eta_max}")
        if not 0 <= self.noise_fraction <= 1:
            raise ValueError(f"noise_fraction must be in [0, 1], got {self.noise_fraction}")
        if self.fatras_p_min <= 0:
            raise ValueError(f"fatras_p_min must be > 0, got {self.fatras_p_min}")
        object.__setattr__(self, "pythia_settings", tuple(self.pythia_settings))
        _ = self.generator  # validates mu, hard_scatter, seed and beam spot here, not in a worker

    # -- the two stages -----------------------------------------------------------------------
    @property
    def generator(self) -> PileupGenerator:
        return PileupGenerator(
            mu=self.mu,
            hard_scatter=self.hard_scatter,
            seed=self.seed,
            beam_spot=BeamSpot(sigma_xy=self.beam_sigma_xy, sigma_z=self.beam_sigma_z, sigma_t=self.beam_sigma_t),
            charged_only=self.charged_only,
            pythia_settings=self.pythia_settings,
        )

    @property
    def response(self) -> DetectorResponse:
        return DetectorResponse(spec=self.detector, resolution=self.resolution, fatras_p_min=self.fatras_p_min)

    def generate(self, event_number: int) -> Crossing:
        """Stage 1, Pythia: the crossing's particles after the Fatras input cuts, and its vertices."""
        crossing = self.generator.generate(event_number)
        pt = np.hypot(crossing.px, crossing.py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.arcsinh(crossing.pz / pt)
        keep = (
            (pt >= self.pt_min)
            & (np.abs(eta) <= self.eta_max)
            & (np.hypot(crossing.x, crossing.y) <= self.vertex_rho_max)
            & (np.abs(crossing.z) <= self.vertex_z_max)
        )
        return crossing.select(keep)

    def respond(self, crossing: Crossing, event_number: int) -> dict[str, dict[str, np.ndarray]]:
        """Stage 2, ACTS: Fatras, digitization and (optionally) noise for a crossing from ``generate``."""
        out = self.response.simulate(
            crossing,
            fatras_seed=event_seed(self.seed, event_number, STREAM_FATRAS),
            digi_seed=event_seed(self.seed, event_number, STREAM_DIGI),
        )
        if self.noise:
            rng = np.random.default_rng(event_seed(self.seed, event_number, STREAM_NOISE))
            count = int(rng.poisson(self.noise_fraction * len(out["measurements"]["x"])))
            out["noise"] = self.response.noise(count, rng)
        return out

    # -- public API ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Initialise Pythia and the ACTS chain in this process now (else on the first event)."""
        self.generator.prepare()
        self.response.prepare()

    def simulate(self, event_number: int) -> dict[str, Any]:
        """Event ``event_number`` as {"hits", "particles", "truth", "vertices"} containers."""
        if int(event_number) != event_number or event_number < 0:
            raise ValueError(f"event_number must be a non-negative integer, got {event_number!r}")
        event_number = int(event_number)
        crossing = self.generate(event_number)
        event = self.assemble(crossing, self.respond(crossing, event_number))
        event["l1"] = self.l1_objects(crossing, event_number)
        return event

    def l1_objects(self, crossing: Crossing, event_number: int):
        """The crossing's L1 objects, from the full final state of all its interactions."""
        final = crossing.final_state
        if crossing.n_vertices == 0:  # nothing collided: no objects (not even a zero MET)
            return L1Objects(kind=[], pt=[], eta=[], phi=[], iso=[])
        counts = np.bincount(final["vertex"] - 1, minlength=crossing.n_vertices)
        rng = np.random.default_rng(event_seed(self.seed, event_number, STREAM_L1))
        deposits = self.l1.deposit(final, counts, rng)
        n = len(counts)
        return self.l1.build(1, [(deposits, np.arange(n), np.zeros(n, np.int64))]).objects()[0]

    def assemble(self, crossing: Crossing, response: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
        """Build the recotrig containers from the outputs of ``generate`` and ``respond``."""
        rows = response["measurements"]
        if "noise" in response:
            rows = {k: np.concatenate([v, response["noise"][k]]) for k, v in rows.items()}
        order = np.argsort(rows["geometry_id"], kind="stable")
        rows = {k: v[order] for k, v in rows.items()}
        n_hits = len(order)
        hit_id = np.arange(1, n_hits + 1, dtype=np.int64)
        gid = rows["geometry_id"]
        hits = Hits(
            hit_id=hit_id,
            x=rows["x"],
            y=rows["y"],
            z=rows["z"],
            t=rows["tt"],
            volume_id=(gid >> np.uint64(56)).astype(np.int32),
            layer_id=((gid >> np.uint64(36)) & np.uint64(0xFFF)).astype(np.int32),
            module_id=((gid >> np.uint64(8)) & np.uint64(0xFFFFF)).astype(np.int32),
            geometry_id=gid,
            loc0=rows["loc0"],
            loc1=rows["loc1"],
            var_loc0=rows["var_loc0"],
            var_loc1=rows["var_loc1"],
        )
        truth = HitTruth(
            hit_id=hit_id,
            particle_id=rows["particle_id"],
            **{k: rows[k] for k in ("tx", "ty", "tz", "tt", "tpx", "tpy", "tpz")},
        )
        particles = self._particles(crossing, response["secondaries"], rows["particle_id"])
        vertices = TruthVertices(
            vertex_id=np.arange(1, crossing.n_vertices + 1, dtype=np.int64),
            x=crossing.vertex_position[:, 0],
            y=crossing.vertex_position[:, 1],
            z=crossing.vertex_position[:, 2],
            t=crossing.vertex_position[:, 3],
            n_charged=crossing.vertex_n_charged,
            is_hard_scatter=crossing.vertex_is_hard,
        )
        return {"hits": hits, "particles": particles, "truth": truth, "vertices": vertices}

    @staticmethod
    def _particles(crossing: Crossing, secondaries: dict[str, np.ndarray], hit_particles: np.ndarray) -> Particles:
        primary_ids = encode_particle_id(crossing.vertex, 0, crossing.index, 0, 0)
        columns = {
            "particle_id": np.concatenate([primary_ids, secondaries["particle_id"]]),
            "vx": np.concatenate([crossing.x, secondaries["vx"]]),
            "vy": np.concatenate([crossing.y, secondaries["vy"]]),
            "vz": np.concatenate([crossing.z, secondaries["vz"]]),
            "vt": np.concatenate([crossing.t, secondaries["vt"]]),
            "px": np.concatenate([crossing.px, secondaries["px"]]),
            "py": np.concatenate([crossing.py, secondaries["py"]]),
            "pz": np.concatenate([crossing.pz, secondaries["pz"]]),
            "q": np.concatenate([crossing.q, secondaries["q"]]),
            "pdg": np.concatenate([crossing.pdg, secondaries["pdg"]]),
            "mass": np.concatenate([crossing.m, secondaries["m"]]),
        }
        order = np.argsort(columns["particle_id"], kind="stable")
        columns = {k: v[order] for k, v in columns.items()}
        ids = columns["particle_id"]
        if len(np.unique(ids)) != len(ids):
            raise RuntimeError("duplicate particle ids in the simulated event")
        p2 = columns["px"] ** 2 + columns["py"] ** 2 + columns["pz"] ** 2
        columns["energy"] = np.sqrt(p2 + columns["mass"] ** 2)
        columns["vertex_id"] = decode_particle_id(ids)["vertex_primary"]
        real = hit_particles[hit_particles != 0]
        position = index_of(ids, real)
        if (position < 0).any():
            raise RuntimeError("a hit's truth particle is missing from the particle table")
        columns["nhits"] = np.bincount(position, minlength=len(ids)).astype(np.int32)
        return Particles(columns)

    def metadata(self) -> dict[str, Any]:
        """JSON-serialisable description of how the events were made."""
        config = asdict(self)
        config["detector"] = self.detector.to_dict()
        config["resolution"] = {k: list(v) for k, v in asdict(self.resolution).items()}
        config["pythia_settings"] = list(self.pythia_settings)
        config["l1"] = self.l1.to_dict()
        return {
            "simulator": "recotrig.sim.Simulator",
            "config": config,
            "seed": self.seed,
            "mu": self.mu,
            "hard_scatter": self.hard_scatter,
            "generator": self.generator.metadata(),
            "detector": self.detector.to_dict(),
            "detector_response": self.response.metadata(),
            "units": {"length": "mm", "momentum": "GeV", "time": "ns"},
            "versions": _versions(),
        }


def _versions() -> dict[str, str]:
    out = {}
    for name, dist in (("acts", "pyacts"), ("pythia8mc", "pythia8mc"), ("numpy", "numpy"), ("recotrig", "recotrig")):
        try:
            out[name] = version(dist)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out
