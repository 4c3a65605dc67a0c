"""Bunch crossings from Pythia 8: Poisson(mu) minimum-bias interactions plus an optional hard scatter.

Each interaction gets its own vertex drawn from a Gaussian beam spot; its final-state particles are
shifted to that vertex (Pythia's own production vertices, e.g. K0S and Lambda decays, are kept as
displacements relative to it). Units are recotrig's: mm, GeV, ns.

Determinism: everything random in a crossing derives from ``(seed, event_number)`` only. The number
of pile-up interactions and the vertex positions come from a numpy generator seeded with that pair;
each Pythia instance is re-seeded (``pythia.rndm.init``) at the start of every crossing. A crossing
is therefore the same whichever events were generated before it in the process, and however events
are split over processes. (Pythia keeps no other state between events that changes the sequence:
``PhaseSpace:increaseMaximum`` is off by default, so a cross-section maximum violation gives a
weight above one instead of moving the maximum.)

Pythia is initialised once per process and per settings (lazily, on first use, and shared by all
generators with the same settings). The multiparton-interaction initialisation, 6-12 s for minimum
bias, is cached on disk (``MultipartonInteractions:reuseInit``) in ``$RECOTRIG_CACHE_DIR`` or the
user cache directory; every process *reads* the tables from that file, including the one that
wrote it, so that all processes use bit-identical tables.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.framework.files import atomic_path

__all__ = [
    "BeamSpot",
    "Crossing",
    "PileupGenerator",
    "HARD_SCATTERS",
    "event_seed",
    "cache_dir",
    "final_state",
    "cross_section_mb",
]

#: speed of light in mm/ns: Pythia's times are in mm/c
C_MM_PER_NS = 299.792458

#: Pythia settings for each hard-scatter process recotrig knows
HARD_SCATTERS: dict[str, tuple[str, ...]] = {
    "ttbar": ("Top:qqbar2ttbar = on", "Top:gg2ttbar = on"),
}
MINIMUM_BIAS: tuple[str, ...] = ("SoftQCD:inelastic = on",)

_NEUTRINOS = (12, 14, 16)
_PYTHIA_SEED_MAX = 900_000_000  # Pythia accepts seeds in [1, 900 000 000]

# random streams derived from (seed, event number): one per consumer
STREAM_CROSSING, STREAM_MINBIAS, STREAM_HARD, STREAM_FATRAS, STREAM_DIGI, STREAM_NOISE, STREAM_L1 = range(7)


def event_seed(seed: int, event_number: int, stream: int) -> int:
    """A 63-bit seed for one random stream of one event, a pure function of its arguments."""
    if seed < 0 or event_number < 0:
        raise ValueError(f"seed and event number must be non-negative, got {seed}, {event_number}")
    state = np.random.SeedSequence([int(seed), int(event_number), int(stream)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def cache_dir() -> Path:
    """Where recotrig keeps re-usable initialisation files (not the repository)."""
    env = os.environ.get("RECOTRIG_CACHE_DIR")
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "recotrig"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "recotrig-cache"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


@dataclass(frozen=True)
class BeamSpot:
    """Gaussian luminous region: transverse and longitudinal widths in mm, time spread in ns."""

    sigma_xy: float = 0.012
    sigma_z: float = 45.0
    sigma_t: float = 0.18

    def __post_init__(self) -> None:
        for name in ("sigma_xy", "sigma_z", "sigma_t"):
            if getattr(self, name) < 0:
                raise ValueError(f"BeamSpot.{name} must be >= 0, got {getattr(self, name)}")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` vertices as an (n, 4) array of x, y, z, t."""
        sigma = np.array([self.sigma_xy, self.sigma_xy, self.sigma_z, self.sigma_t])
        return rng.standard_normal((n, 4)) * sigma


@dataclass
class Crossing:
    """One bunch crossing: the selected final-state particles and the interaction vertices.

    Particle arrays have one row per particle; ``vertex`` is the 1-based index of its interaction
    (row ``vertex - 1`` of the vertex arrays) and ``index`` its 1-based number within that
    interaction. Vertex 1 is the hard scatter when there is one.
    """

    vertex: np.ndarray  # i8
    index: np.ndarray  # i8
    pdg: np.ndarray  # i4
    q: np.ndarray  # i4, charge in e
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    t: np.ndarray
    vertex_position: np.ndarray  # (n_vertices, 4): x, y, z, t
    vertex_n_charged: np.ndarray  # i4, charged final-state particles generated at each vertex
    vertex_is_hard: np.ndarray  # bool
    #: every final-state particle of every interaction, neutrinos included, before any selection
    #: (pdg, q, px, py, pz, e and ``vertex``): what the calorimeters and muon system see
    final_state: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.pdg)

    @property
    def n_vertices(self) -> int:
        return len(self.vertex_position)

    def select(self, mask: np.ndarray) -> Crossing:
        """The crossing with only the particles in ``mask`` (vertices unchanged)."""
        fixed = {k: v for k, v in self.__dict__.items() if k.startswith("vertex_") or k == "final_state"}
        kept = {k: v[mask] for k, v in self.__dict__.items() if k not in fixed}
        return Crossing(**kept, **fixed)


# -- Pythia instances: one per process and settings ---------------------------------------------
_PYTHIAS: dict[tuple[str, ...], Any] = {}
_CHARGES: dict[int, int] = {}
_LOCK = threading.Lock()


def _new_pythia(settings: tuple[str, ...], extra: tuple[str, ...]) -> Any:
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in (*settings, *extra):
        if not pythia.readString(line):
            raise ValueError(f"Pythia did not accept the setting {line!r}")
    return pythia


def _pythia_for(settings: tuple[str, ...]) -> Any:
    """An initialised Pythia for ``settings``, made once per process; MPI tables come from a file."""
    with _LOCK:
        if settings in _PYTHIAS:
            return _PYTHIAS[settings]
        key = hashlib.sha256("\n".join((_pythia_version(), *settings)).encode()).hexdigest()[:16]
        init_file = cache_dir() / f"pythia-mpi-{key}.dat"
        if not init_file.exists():
            # Write the tables under a private name, then publish atomically: concurrent
            # processes never read a half-written file.
            with atomic_path(init_file) as tmp:
                writer = _new_pythia(
                    settings,
                    ("MultipartonInteractions:reuseInit = 1", f"MultipartonInteractions:initFile = {tmp}"),
                )
                if not writer.init():
                    raise RuntimeError(f"Pythia initialisation failed for settings {list(settings)}")
                del writer
        pythia = _new_pythia(
            settings, ("MultipartonInteractions:reuseInit = 2", f"MultipartonInteractions:initFile = {init_file}")
        )
        if not pythia.init():
            raise RuntimeError(
                f"Pythia initialisation from {init_file} failed for settings {list(settings)}; "
                "delete the file to rebuild it"
            )
        _PYTHIAS[settings] = pythia
        return pythia


def _pythia_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pythia8mc")
    except PackageNotFoundError:
        return "unknown"


def _charge(pythia: Any, pdg: np.ndarray) -> np.ndarray:
    """Integer charge of each PDG id (Pythia particle data, cached per id)."""
    ids, inverse = np.unique(pdg, return_inverse=True)
    for pid in ids.tolist():
        if pid not in _CHARGES:
            _CHARGES[pid] = round(pythia.particleData.charge(pid))
    return np.array([_CHARGES[p] for p in ids.tolist()], np.int32)[inverse]


def final_state(settings: tuple[str, ...], n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``n`` Pythia events of ``settings`` after re-seeding with ``seed``: all final-state particles
    (neutrinos included) as flat numpy columns (pdg, q, px, py, pz, e, m; production point x, y, z
    in mm and t in ns, relative to the interaction) and the particle count of each event."""
    names = ("pdg", "q", "px", "py", "pz", "e", "m", "x", "y", "z", "t")
    if n == 0:
        return {k: np.zeros(0, np.int32 if k in ("pdg", "q") else np.float64) for k in names}, np.zeros(0, np.int64)
    import awkward as ak

    pythia = _pythia_for(settings)
    pythia.rndm.init(int(seed % _PYTHIA_SEED_MAX) + 1)
    parts: list[dict[str, np.ndarray]] = []
    all_counts: list[np.ndarray] = []
    made = 0
    while made < n:  # failed events are skipped by nextBatch: ask again for the rest
        batch = pythia.nextBatch(n - made)
        prt = batch.prt
        final = prt[prt.status > 0]
        counts = np.asarray(ak.num(final, axis=1), np.int64)
        flat = ak.flatten(final)
        vprod = flat.vProd
        missing = np.asarray(ak.is_none(vprod))
        columns = {
            "pdg": np.asarray(flat.id, np.int32),
            "px": np.asarray(flat.p.px, np.float64),
            "py": np.asarray(flat.p.py, np.float64),
            "pz": np.asarray(flat.p.pz, np.float64),
            "e": np.asarray(flat.p.e, np.float64),
            "m": np.asarray(flat.m, np.float64),
        }
        for name, comp in (("x", "px"), ("y", "py"), ("z", "pz"), ("t", "e")):
            values = np.asarray(ak.fill_none(getattr(vprod, comp), 0.0), np.float64)
            values[missing] = 0.0
            columns[name] = values
        columns["t"] = columns["t"] / C_MM_PER_NS
        columns["q"] = _charge(pythia, columns["pdg"])
        parts.append(columns)
        all_counts.append(counts)
        made += len(counts)
    merged = {k: np.concatenate([p[k] for p in parts]) for k in names}
    return merged, np.concatenate(all_counts)


def cross_section_mb(settings: tuple[str, ...]) -> float:
    """Pythia's estimate of the cross section of the events generated so far with ``settings``
    in this process [mb] (``sigmaGen``)."""
    return float(_pythia_for(settings).infoPython().sigmaGen())


@dataclass(frozen=True)
class PileupGenerator:
    """Poisson(``mu``) minimum-bias pp interactions at ``ecm_gev`` per crossing, plus an optional
    hard scatter (``"ttbar"`` or None). ``charged_only`` keeps only charged final-state particles;
    otherwise all final-state particles but neutrinos. ``pythia_settings`` are extra Pythia lines
    applied to every process. Picklable; Pythia is created lazily in each process."""

    mu: float = 0.0
    hard_scatter: str | None = None
    seed: int = 1
    beam_spot: BeamSpot = field(default_factory=BeamSpot)
    charged_only: bool = True
    ecm_gev: float = 14000.0
    pythia_settings: tuple[str, ...] = ()
    pythia_verbose: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.mu <= 1000:
            raise ValueError(f"mu must be in [0, 1000], got {self.mu}")
        if self.hard_scatter is not None and self.hard_scatter not in HARD_SCATTERS:
            raise ValueError(f"unknown hard scatter {self.hard_scatter!r}; known: {sorted(HARD_SCATTERS)} or None")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        object.__setattr__(self, "pythia_settings", tuple(self.pythia_settings))

    # -- settings ---------------------------------------------------------------------------------
    def _common(self) -> tuple[str, ...]:
        lines = [f"Beams:eCM = {self.ecm_gev:.6g}", "Random:setSeed = on", "Next:numberCount = 0"]
        lines += ["Print:quiet = on"] + ([] if self.pythia_verbose else ["Print:errors = off"])
        return (*lines, *self.pythia_settings)

    def settings(self) -> dict[str, list[str]]:
        """The Pythia settings of each process used (for metadata)."""
        out = {"minimum_bias": [*MINIMUM_BIAS, *self._common()]}
        if self.hard_scatter is not None:
            out["hard_scatter"] = [*HARD_SCATTERS[self.hard_scatter], *self._common()]
        return out

    def metadata(self) -> dict[str, Any]:
        return {
            "mu": self.mu,
            "hard_scatter": self.hard_scatter,
            "seed": self.seed,
            "beam_spot": asdict(self.beam_spot),
            "charged_only": self.charged_only,
            "ecm_gev": self.ecm_gev,
            "pythia_settings": self.settings(),
        }

    def prepare(self) -> None:
        """Initialise the Pythia instance(s) of this process now (otherwise done on first use)."""
        if self.mu > 0:
            _pythia_for((*MINIMUM_BIAS, *self._common()))
        if self.hard_scatter is not None:
            _pythia_for((*HARD_SCATTERS[self.hard_scatter], *self._common()))

    # -- generation -------------------------------------------------------------------------------
    def _interactions(self, settings: tuple[str, ...], n: int, seed: int) -> list[dict[str, np.ndarray]]:
        """``n`` Pythia events after re-seeding; final-state particles of each as numpy arrays."""
        columns, counts = final_state(settings, n, seed)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [{k: v[bounds[i] : bounds[i + 1]] for k, v in columns.items()} for i in range(len(counts))]

    def n_pileup(self, event_number: int) -> int:
        """The number of minimum-bias interactions in a crossing."""
        rng = np.random.default_rng(event_seed(self.seed, event_number, STREAM_CROSSING))
        return int(rng.poisson(self.mu)) if self.mu > 0 else 0

    def generate(self, event_number: int) -> Crossing:
        """Generate crossing ``event_number``: same seed and number give identical arrays."""
        rng = np.random.default_rng(event_seed(self.seed, event_number, STREAM_CROSSING))
        n_pu = int(rng.poisson(self.mu)) if self.mu > 0 else 0
        n_hard = 0 if self.hard_scatter is None else 1
        positions = self.beam_spot.draw(rng, n_hard + n_pu)

        interactions = []
        if n_hard:
            hard = (*HARD_SCATTERS[self.hard_scatter], *self._common())
            interactions += self._interactions(hard, 1, event_seed(self.seed, event_number, STREAM_HARD))
        interactions += self._interactions(
            (*MINIMUM_BIAS, *self._common()), n_pu, event_seed(self.seed, event_number, STREAM_MINBIAS)
        )

        names = ("vertex", "index", "pdg", "q", "px", "py", "pz", "e", "m", "x", "y", "z", "t")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
        n_charged = np.zeros(len(interactions), np.int32)
        final = {k: [] for k in ("pdg", "q", "px", "py", "pz", "e", "vertex")}
        for iv, cols in enumerate(interactions):
            for k in ("pdg", "q", "px", "py", "pz", "e"):
                final[k].append(cols[k])
            final["vertex"].append(np.full(len(cols["pdg"]), iv + 1, np.int64))
            charged = cols["q"] != 0
            n_charged[iv] = int(np.count_nonzero(charged))
            keep = charged if self.charged_only else ~np.isin(np.abs(cols["pdg"]), _NEUTRINOS)
            n = int(np.count_nonzero(keep))
            parts["vertex"].append(np.full(n, iv + 1, np.int64))
            parts["index"].append(np.arange(1, n + 1, dtype=np.int64))
            for k in ("pdg", "q", "px", "py", "pz", "e", "m"):
                parts[k].append(cols[k][keep])
            for k, offset in zip(("x", "y", "z", "t"), positions[iv]):
                parts[k].append(cols[k][keep] + offset)
        dtypes = {"vertex": np.int64, "index": np.int64, "pdg": np.int32, "q": np.int32}
        arrays = {
            k: (np.concatenate(v) if v else np.zeros(0, dtypes.get(k, np.float64))).astype(dtypes.get(k, np.float64))
            for k, v in parts.items()
        }
        is_hard = np.zeros(len(interactions), bool)
        is_hard[:n_hard] = True
        return Crossing(
            **arrays,
            vertex_position=positions,
            vertex_n_charged=n_charged,
            vertex_is_hard=is_hard,
            final_state={
                k: np.concatenate(v) if v else np.zeros(0, np.int64 if k in ("pdg", "q", "vertex") else float)
                for k, v in final.items()
            },
        )
