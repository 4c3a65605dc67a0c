"""The anomaly-detection data sets: L1 inputs (57 features) of background and signal crossings,
built with premixed pile-up (``recotrig.sim.premix``) and cached as ``.npy``.

Two data sets, each with a training, a validation and a held-out test background and the four
signals (held out: never used in training or tuning):

* ``zerobias-mu60``: zero-bias crossings, Poisson(60) minimum-bias interactions; signals on top of
  the same pile-up; no selection. The background of a rate-based trigger.
* ``adc2021-mu20``: the ADC2021-style single-lepton stream at <mu> = 20: W -> l nu, Z/gamma* -> ll
  (m > 40 GeV) and tt-bar, each required to have an L1 e/gamma or loosely isolated L1 muon above
  23 GeV, mixed in proportion to (Pythia cross section) x (selection efficiency); signals with the
  same selection. QCD multijets are left out (see ``COCKTAIL_NOTE``).

Training and validation backgrounds take their pile-up from one minimum-bias pool (seed 1000), the
test backgrounds and the signals from another (seed 2000): no pile-up interaction of a test
crossing was seen in training.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.edm.trigger import SIGNALS, SM_COCKTAIL
from recotrig.models.registry import cache_dir
from recotrig.sim.premix import L1Dataset

__all__ = ["COCKTAIL_NOTE", "DATASETS", "AnomalyData", "background", "signal"]

COCKTAIL_NOTE = (
    "QCD multijets (34 % of the ADC2021 cocktail) are left out: with a 23 GeV lepton requirement "
    "they pass at ~1e-4 (ADC2021 Table 1: 0.08 % x 9.6 %), which would need ~1e8 generated events "
    "for 10,000 selected ones here. The cocktail is W, Z, tt-bar only, so its background is more "
    "lepton-like and less jetty "
    "than ADC2021's; AUCs are not strictly comparable (ours are for an easier background mix in "
    "jet activity, a harder one in lepton content)."
)

POOL_TRAIN, POOL_TEST = 1000, 2000


@dataclass(frozen=True)
class AnomalyData:
    """One named data set's recipe."""

    name: str
    mu: float
    processes: tuple[str, ...]  # "zerobias" or the cocktail's processes
    train: tuple[int, ...]  # crossings generated per process (before the selection)
    test: tuple[int, ...]
    train_seeds: tuple[int, ...]
    test_seeds: tuple[int, ...]
    lepton_filter: bool
    n_signal: int = 20_000
    signal_seed: int = 101
    val_fraction: float = 0.1

    def key(self) -> str:
        """A short hash of the recipe: cached arrays are named by it, so a changed recipe never
        reads the arrays of an older one."""
        text = json.dumps({**asdict(self), "pools": [POOL_TRAIN, POOL_TEST], "version": 1}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


DATASETS = {
    "zerobias-mu60": AnomalyData("zerobias-mu60", 60.0, ("zerobias",), (1_120_000,), (1_000_000,), (1,), (3,), False),
    "adc2021-mu20": AnomalyData(
        "adc2021-mu20",
        20.0,
        SM_COCKTAIL,
        (320_000, 36_000, 4_000),
        (40_000, 13_000, 1_500),
        (201, 202, 203),
        (301, 302, 303),
        True,
    ),
}


def _data(name: str) -> AnomalyData:
    if name not in DATASETS:
        raise ValueError(f"unknown anomaly data set {name!r}; known: {sorted(DATASETS)}")
    return DATASETS[name]


def _features(ds: L1Dataset, lepton_filter: bool, jobs: int) -> np.ndarray:
    parts = []
    for _, batch in ds.batches(jobs=jobs):
        f = batch.features()
        parts.append(f[batch.lepton_filter()] if lepton_filter else f)
    return np.concatenate(parts)


def _cached(path: Path, make) -> tuple[np.ndarray, dict[str, Any]]:
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        x, meta = make()
        tmp = path.with_name(f".{path.name}.tmp.npy")
        np.save(tmp, x.astype(np.float32))
        meta_path.write_text(json.dumps(meta, indent=1))
        tmp.replace(path)
    return np.load(path, mmap_mode="r"), json.loads(meta_path.read_text())


def _mix(name: str, split: str, jobs: int) -> tuple[np.ndarray, dict[str, Any]]:
    data = _data(name)
    sizes = data.train if split == "train" else data.test
    seeds = data.train_seeds if split == "train" else data.test_seeds
    pool = POOL_TRAIN if split == "train" else POOL_TEST
    parts, info = {}, {}
    for process, n, seed in zip(data.processes, sizes, seeds):
        ds = L1Dataset(process, data.mu, n, seed=seed, pool_seed=pool)
        parts[process] = _features(ds, data.lepton_filter, jobs)
        xs = ds.metadata().get("cross_section_mb", 0.0)
        info[process] = {
            "generated": n,
            "selected": len(parts[process]),
            "efficiency": len(parts[process]) / n,
            "cross_section_mb": xs,
            "seed": seed,
        }
    if len(parts) == 1:
        (x,) = parts.values()
        return x, {"processes": info, "pool_seed": pool, "mu": data.mu}
    weight = {p: v["cross_section_mb"] * v["efficiency"] for p, v in info.items()}
    total = sum(weight.values())
    fraction = {p: w / total for p, w in weight.items()}
    n_total = int(min(len(parts[p]) / fraction[p] for p in parts if fraction[p] > 0))
    rng = np.random.default_rng(sum(seeds))
    chosen = []
    for p, x in parts.items():
        k = round(n_total * fraction[p])
        chosen.append(x[np.sort(rng.choice(len(x), size=min(k, len(x)), replace=False))])
        info[p]["in_cocktail"] = len(chosen[-1])
        info[p]["fraction"] = fraction[p]
    x = np.concatenate(chosen)
    x = x[rng.permutation(len(x))]
    return x, {"processes": info, "pool_seed": pool, "mu": data.mu, "note": COCKTAIL_NOTE}


def background(name: str, split: str, *, jobs: int = 2) -> tuple[np.ndarray, dict[str, Any]]:
    """Background features of ``split`` ("train", "val" or "test") and how they were made. The
    validation set is the last ``val_fraction`` of the generated training crossings."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be train, val or test, got {split!r}")
    source = "test" if split == "test" else "train"
    path = cache_dir("anomaly") / f"{name}-{source}-{_data(name).key()}.npy"
    x, meta = _cached(path, lambda: _mix(name, source, jobs))
    if source == "train":
        n_val = int(len(x) * _data(name).val_fraction)
        x = x[: len(x) - n_val] if split == "train" else x[len(x) - n_val :]
    return np.asarray(x), {**meta, "split": split, "events": len(x)}


def signal(name: str, process: str, *, jobs: int = 2) -> tuple[np.ndarray, dict[str, Any]]:
    """Held-out signal features of ``process`` in data set ``name`` (same pile-up and selection)."""
    data = _data(name)
    if process not in SIGNALS:
        raise ValueError(f"unknown signal {process!r}; known: {list(SIGNALS)}")

    def make():
        ds = L1Dataset(process, data.mu, data.n_signal, seed=data.signal_seed, pool_seed=POOL_TEST)
        x = _features(ds, data.lepton_filter, jobs)
        return x, {
            "process": process,
            "generated": data.n_signal,
            "selected": len(x),
            "mu": data.mu,
            "seed": data.signal_seed,
            "pool_seed": POOL_TEST,
        }

    x, meta = _cached(cache_dir("anomaly") / f"{name}-{process}-{data.key()}.npy", make)
    return np.asarray(x), meta
