"""L1-object data sets with premixed pile-up: event pools of L1 deposits, and crossings built from them.

An ``EventPool`` is ``n`` Pythia events of one process turned into L1 deposits (``sim.l1``) once,
kept in the recotrig cache as ``.npz``. A minimum-bias pool is the pile-up library: crossing ``i``
of an ``L1Dataset`` overlays Poisson(mu) interactions drawn uniformly, with replacement, from it
(premixing, as the experiments do), on top of hard-scatter event ``i`` of the process's own pool
(each hard event is used once). ``process="zerobias"`` has no hard scatter.

Determinism: pool chunk ``c`` (``CHUNK`` events) is generated from ``(seed, c)`` alone and dataset
chunk ``k`` (``CHUNK`` crossings) draws its pile-up from ``(seed, k)`` alone, so ``jobs=N`` gives
the same arrays as ``jobs=1``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.edm.trigger import PROCESS_CODES, SIGNALS, SM_COCKTAIL  # the fixed codes: stored files keep their meaning
from recotrig.sim.l1 import Deposits, L1Batch, L1Response
from recotrig.sim.pileup import (
    HARD_SCATTERS,
    MINIMUM_BIAS,
    STREAM_CROSSING,
    STREAM_HARD,
    STREAM_L1,
    PileupGenerator,
    cache_dir,
    cross_section_mb,
    event_seed,
    final_state,
)

__all__ = ["CHUNK", "PROCESS_CODES", "PROCESSES", "SIGNALS", "SM_COCKTAIL", "EventPool", "L1Dataset", "chunk_sizes"]

CHUNK = 2000

_LEPTONS = "11 13 15"
#: process name -> Pythia settings (FACTS-checked recipes for the signals)
PROCESSES: dict[str, tuple[str, ...]] = {
    "minbias": MINIMUM_BIAS,
    "wlnu": ("WeakSingleBoson:ffbar2W = on", "24:onMode = off", f"24:onIfAny = {_LEPTONS}"),
    "zll": ("WeakSingleBoson:ffbar2gmZ = on", "PhaseSpace:mHatMin = 40", "23:onMode = off", f"23:onIfAny = {_LEPTONS}"),
    "ttbar": HARD_SCATTERS["ttbar"],
    "ato4l": (
        "Higgs:useBSM = on",
        "HiggsBSM:gg2H2 = on",
        "35:m0 = 50",
        "35:onMode = off",
        "35:onIfMatch = 23 23",
        "23:mMin = 1",
        "23:onMode = off",
        "23:onIfAny = 11 13",
    ),
    "lq_btau": (
        "LeptoQuark:gg2LQLQbar = on",
        "LeptoQuark:qqbar2LQLQbar = on",
        "42:m0 = 80",
        "42:oneChannel = 1 1.0 0 5 -15",
    ),
    "h0_tautau": ("HiggsSM:gg2H = on", "25:m0 = 60", "25:onMode = off", "25:onIfMatch = 15 -15"),
    "hpm_taunu": (
        "Higgs:useBSM = on",
        "HiggsBSM:ffbar2H+- = on",
        "37:m0 = 60",
        "37:onMode = off",
        "37:onIfMatch = 15 16",
    ),
}


def _settings(process: str) -> tuple[str, ...]:
    if process not in PROCESSES:
        raise ValueError(f"unknown process {process!r}; known: {sorted(PROCESSES)}")
    return (*PROCESSES[process], *PileupGenerator()._common())


#: pools loaded in this process (a data set reads its pool once per process, not once per chunk)
_LOADED: dict[Path, tuple[Deposits, dict[str, Any]]] = {}


def _pool_chunk(args: tuple[str, int, int, int, L1Response]) -> tuple[dict[str, np.ndarray], float, int]:
    process, seed, chunk, n, response = args
    settings = _settings(process)
    particles, counts = final_state(settings, n, event_seed(seed, chunk, STREAM_HARD))
    deposits = response.deposit(particles, counts, np.random.default_rng(event_seed(seed, chunk, STREAM_L1)))
    return deposits.to_dict(), cross_section_mb(settings), len(counts)


def chunk_sizes(n: int) -> list[int]:
    """The sizes of the ``CHUNK``-long chunks that ``n`` events or crossings are made in."""
    return [min(CHUNK, n - start) for start in range(0, n, CHUNK)]


def _map(function, tasks: list, jobs: int) -> Iterator:
    if jobs <= 1 or len(tasks) <= 1:
        yield from map(function, tasks)
        return
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
        yield from pool.map(function, tasks)


@dataclass(frozen=True)
class EventPool:
    """``n_events`` events of ``process`` as L1 deposits, made once and cached."""

    process: str
    n_events: int
    seed: int = 1
    response: L1Response = field(default_factory=L1Response)

    def __post_init__(self) -> None:
        _settings(self.process)
        if self.n_events < 1:
            raise ValueError(f"a pool needs at least one event, got {self.n_events}")

    def key(self) -> str:
        text = json.dumps(
            {"settings": _settings(self.process), "response": self.response.to_dict(), "chunk": CHUNK, "version": 1},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        folder = cache_dir() / "l1pools"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{self.process}-seed{self.seed}-n{self.n_events}-{self.key()}.npz"

    def load(self, *, jobs: int = 1, progress: Any = None) -> tuple[Deposits, dict[str, Any]]:
        """The pool's deposits and its metadata (cross section in mb), generating it if needed."""
        path = self.path
        if path not in _LOADED:
            if not path.exists():
                self._generate(jobs, progress)
            with np.load(path) as data:
                arrays = {k: data[k] for k in data.files if k != "meta"}
                meta = json.loads(str(data["meta"]))
            while len(_LOADED) >= 2:  # a pile-up pool and a hard-scatter pool, not every pool ever opened
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[path] = (Deposits(**arrays), meta)
        return _LOADED[path]

    def _generate(self, jobs: int, progress: Any) -> None:
        sizes = chunk_sizes(self.n_events)
        tasks = [(self.process, self.seed, c, n, self.response) for c, n in enumerate(sizes)]
        parts, sigma, weight = [], 0.0, 0
        for arrays, xs, n in _map(_pool_chunk, tasks, jobs):
            parts.append(Deposits(**arrays))
            sigma, weight = sigma + xs * n, weight + n
            if progress is not None:
                progress(n)
        deposits = Deposits.concat(parts)
        meta = {
            "process": self.process,
            "n_events": self.n_events,
            "seed": self.seed,
            "settings": list(_settings(self.process)),
            "cross_section_mb": sigma / max(weight, 1),
            "response": self.response.to_dict(),
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, meta=json.dumps(meta), **deposits.to_dict())
        os.replace(tmp, self.path)


def _dataset_chunk(args: tuple[L1Dataset, int, int]) -> L1Batch:
    dataset, chunk, n = args
    return dataset.chunk(chunk, n)


@dataclass(frozen=True)
class L1Dataset:
    """``n_events`` crossings of ``process`` (a hard process or ``"zerobias"``) with Poisson(``mu``)
    pile-up from a minimum-bias pool of ``pool_size`` events (``pool_seed``). ``fresh_pileup``
    uses every pool event once instead (the pool then needs enough events: ``pileup_needed``)."""

    process: str
    mu: float
    n_events: int
    seed: int = 1
    pool_size: int = 200_000
    pool_seed: int = 1000
    fresh_pileup: bool = False
    response: L1Response = field(default_factory=L1Response)

    def __post_init__(self) -> None:
        if self.process != "zerobias":
            _settings(self.process)
        if not 0 <= self.mu <= 1000:
            raise ValueError(f"mu must be in [0, 1000], got {self.mu}")
        if self.process == "zerobias" and self.mu == 0:
            raise ValueError("zero-bias crossings need mu > 0 (they hold nothing but pile-up)")
        if self.n_events < 1:
            raise ValueError(f"a data set needs at least one crossing, got {self.n_events}")

    @property
    def pool(self) -> EventPool:
        return EventPool("minbias", self.pool_size, self.pool_seed, self.response)

    @property
    def hard(self) -> EventPool | None:
        return None if self.process == "zerobias" else EventPool(self.process, self.n_events, self.seed, self.response)

    def _n_pileup(self, chunk: int, n: int) -> tuple[np.random.Generator, np.ndarray]:
        rng = np.random.default_rng(event_seed(self.seed, chunk, STREAM_CROSSING))
        return rng, rng.poisson(self.mu, n) if self.mu > 0 else np.zeros(n, np.int64)

    def pileup_needed(self) -> int:
        sizes = chunk_sizes(self.n_events)
        return int(sum(self._n_pileup(c, n)[1].sum() for c, n in enumerate(sizes)))

    def chunk(self, chunk: int, n: int) -> L1Batch:
        """Crossings ``chunk * CHUNK`` .. ``+ n`` of the data set."""
        n_pu, events, crossing = self.pileup(chunk, n)
        sources = []
        if self.mu > 0:
            sources.append((self.pool.load()[0], events, crossing))
        if self.hard is not None:
            hard, _ = self.hard.load()
            sources.append((hard, chunk * CHUNK + np.arange(n), np.arange(n)))
        batch = self.response.build(n, sources)
        batch.n_pileup = n_pu.astype(np.int32)
        return batch

    def pileup(self, chunk: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pile-up of crossings ``chunk * CHUNK`` .. ``+ n``: the number of interactions of each
        crossing, and for each interaction its event in the pool and its crossing (0 .. n - 1)."""
        rng, n_pu = self._n_pileup(chunk, n)
        crossing = np.repeat(np.arange(n), n_pu)
        if self.mu == 0:
            return n_pu, np.zeros(0, np.int64), crossing
        pool, _ = self.pool.load()
        if self.fresh_pileup:
            first = sum(self._n_pileup(c, CHUNK)[1].sum() for c in range(chunk))
            events = first + np.arange(n_pu.sum())
            if len(events) and events[-1] >= len(pool):
                raise ValueError(f"fresh pile-up needs {self.pileup_needed()} pool events, the pool has {len(pool)}")
        else:
            events = rng.integers(0, len(pool), int(n_pu.sum()))
        return n_pu, events, crossing

    def batches(self, *, jobs: int = 1) -> Iterator[tuple[int, L1Batch]]:
        """(first crossing number, batch) for the whole data set, in order."""
        if self.mu > 0:
            self.pool.load(jobs=jobs)
        if self.hard is not None:
            self.hard.load(jobs=jobs)
        sizes = chunk_sizes(self.n_events)
        tasks = [(self, c, n) for c, n in enumerate(sizes)]
        for c, batch in enumerate(_map(_dataset_chunk, tasks, jobs)):
            yield c * CHUNK, batch

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "generator": "recotrig.sim.premix.L1Dataset",
            "process": self.process,
            "mu": self.mu,
            "n_events": self.n_events,
            "seed": self.seed,
            "pool": {"size": self.pool_size, "seed": self.pool_seed, "settings": list(_settings("minbias"))},
            "fresh_pileup": self.fresh_pileup,
            "l1_response": self.response.to_dict(),
        }
        if self.hard is not None:
            meta["hard_settings"] = list(_settings(self.process))
            meta["cross_section_mb"] = self.hard.load()[1]["cross_section_mb"]
        return meta
