"""Zero-bias crossings for trigger rates that hold: calibration on independent pile-up pools with
the statistical error of its effective sample size, validation on crossings whose pile-up is
entirely fresh.

A threshold at 1 kHz (a false-positive rate of 2.5e-5 of the 40 MHz crossings) is set by the far
tail of the zero-bias score, and that tail is made by rare pile-up interactions. Crossings
premixed from one pool share its interactions: a rare interaction of the pool appears in hundreds
of crossings, so their pass counts are correlated and the crossings count for far fewer
independent ones than their number (the held-out million of ``zerobias-mu60``, from a pool of
200,000 interactions, set thresholds that fresh zero bias passed several times more often).
Two samples here, each made of blocks cached separately (an interrupted generation resumes at
the next missing block):

* ``CALIBRATION`` (``zerobias-mu60-rates``): replicas, each ``crossings`` crossings drawn with
  replacement from a pool of its own (``pool_size`` interactions, pool seed ``seed + block``).
  The replicas are independent, so the spread of a pass fraction between them is its
  statistical error, pool reuse included; the effective sample size is ``p (1 - p) / var``.
* ``VALIDATION`` (``zerobias-mu60-fresh``): blocks of crossings whose every pile-up interaction
  is used once (``L1Dataset(fresh_pileup=True)``) from pools no other sample uses: independent
  crossings, binomial errors.
* ``REPOOLED`` (``zerobias-mu60-repooled``), a check of the method, not a calibration: crossings
  premixed (drawn with replacement) from each validation block's own pool. Premixing is
  unbiased if their rate matches the fresh crossings' made of the same interactions; a
  calibration that differs from the fresh rate while this matches differs by the content of its
  pools (how many of the rare interactions that make the tail they hold), not by premixing.

Seeds: calibration pools 6000 + block, validation pools 5000 + block; the training and test sets
use pools 1000 and 2000 (``dataset.POOL_TRAIN``, ``dataset.POOL_TEST``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.edm.trigger import pass_rate
from recotrig.firmware.emulator import calibrate as calibrate_scores
from recotrig.framework.files import atomic_path
from recotrig.models.registry import cache_dir
from recotrig.sim.premix import L1Dataset, chunk_sizes

__all__ = [
    "CALIBRATION",
    "REPOOLED",
    "SAMPLES",
    "VALIDATION",
    "RateSample",
    "calibrate",
    "generate",
    "hardest_interaction_et",
    "load",
    "rate_at",
]


@dataclass(frozen=True)
class RateSample:
    """Zero-bias crossings at ``mu`` in ``blocks`` blocks of ``crossings``: from a pool of
    ``pool_size`` interactions per block (reused), or, with ``pool_size`` 0, all fresh, or, with
    ``pool_of``, premixed from the pool of that sample's same block."""

    name: str
    mu: float
    blocks: int
    crossings: int
    pool_size: int
    seed: int
    #: premix from the pools of this sample's blocks instead of pools of its own
    pool_of: RateSample | None = None

    @property
    def fresh(self) -> bool:
        return self.pool_size == 0 and self.pool_of is None

    def dataset(self, block: int) -> L1Dataset:
        """The L1 data set of one block (its pool seed and crossing seed are ``seed + block``)."""
        if not 0 <= block < self.blocks:
            raise ValueError(f"{self.name} has blocks 0 to {self.blocks - 1}, not {block}")
        seed = self.seed + block
        if self.pool_of is not None:
            pool = self.pool_of.dataset(block)
            return L1Dataset(
                "zerobias", self.mu, self.crossings, seed=seed, pool_size=pool.pool_size, pool_seed=pool.pool_seed
            )
        if not self.fresh:
            return L1Dataset("zerobias", self.mu, self.crossings, seed=seed, pool_size=self.pool_size, pool_seed=seed)
        probe = L1Dataset("zerobias", self.mu, self.crossings, seed=seed, pool_seed=seed, fresh_pileup=True)
        return L1Dataset(
            "zerobias",
            self.mu,
            self.crossings,
            seed=seed,
            pool_size=probe.pileup_needed(),
            pool_seed=seed,
            fresh_pileup=True,
        )

    def interactions(self, block: int) -> int:
        """The minimum-bias interactions the block's pool holds (what it costs to generate)."""
        return self.dataset(block).pool_size

    def path(self, block: int) -> Path:
        return cache_dir("anomaly") / "rates" / f"{self.name}-{block:03d}.npy"

    def cached(self) -> list[int]:
        """The blocks already generated."""
        return [b for b in range(self.blocks) if self.path(b).is_file()]


#: calibration: 30 independent pools of 100,000 interactions (3 million in all), 25,000 crossings each
CALIBRATION = RateSample("zerobias-mu60-rates", 60.0, 30, 25_000, 100_000, 6000)
#: validation: 9 blocks of 5,000 crossings with all-fresh pile-up (about 2.7 million interactions)
VALIDATION = RateSample("zerobias-mu60-fresh", 60.0, 9, 5_000, 0, 5000)
#: method check: 25,000 crossings premixed from each validation block's pool
REPOOLED = RateSample("zerobias-mu60-repooled", 60.0, VALIDATION.blocks, 25_000, 0, 90_000, pool_of=VALIDATION)
#: the samples a threshold may be calibrated on (``recotrig firmware calibrate --dataset``)
SAMPLES = {s.name: s for s in (CALIBRATION, VALIDATION)}


def generate(sample: RateSample, block: int, *, jobs: int = 1, progress: Callable[[str], None] | None = None) -> Path:
    """Make (or find) one block's L1 features, cached as ``.npy`` with a ``.json`` record."""
    path = sample.path(block)
    if path.is_file():
        return path
    ds = sample.dataset(block)
    if progress:
        progress(f"{sample.name} block {block}: pool of {ds.pool_size} interactions (seed {ds.pool_seed})")
    ds.pool.load(jobs=jobs)
    if progress:
        progress(f"{sample.name} block {block}: {ds.n_events} crossings")
    x = np.concatenate([batch.features() for _, batch in ds.batches(jobs=jobs)]).astype(np.float32)
    with atomic_path(path.with_suffix(".json")) as temp:
        temp.write_text(json.dumps({**ds.metadata(), "sample": sample.name, "block": block}, indent=1))
    with atomic_path(path) as temp, open(temp, "wb") as stream:
        np.save(stream, x)
    return path


def load(
    sample: RateSample | str,
    blocks: Iterable[int] | None = None,
    *,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> list[np.ndarray]:
    """The L1 features of each cached block of ``sample`` (or of ``blocks``, generating those
    missing)."""
    if isinstance(sample, str):
        if sample not in SAMPLES:
            raise ValueError(f"unknown rate sample {sample!r}; known: {sorted(SAMPLES)}")
        sample = SAMPLES[sample]
    if blocks is None:
        blocks = sample.cached()
    return [np.load(generate(sample, b, jobs=jobs, progress=progress), mmap_mode="r") for b in blocks]


def hardest_interaction_et(sample: RateSample, block: int) -> tuple[np.ndarray, np.ndarray]:
    """For one block: each crossing's largest summed tower ET of one pile-up interaction [GeV],
    and that sum for every interaction of the block's pool (what the pool holds)."""
    ds = sample.dataset(block)
    et = ds.pool.load()[0].total_et()
    hardest = []
    for chunk, n in enumerate(chunk_sizes(ds.n_events)):
        _, events, crossing = ds.pileup(chunk, n)
        top = np.zeros(n)
        np.maximum.at(top, crossing, et[events])
        hardest.append(top)
    return np.concatenate(hardest), et


def rate_at(scores: Sequence[np.ndarray], threshold: float, *, replicas: bool) -> dict[str, Any]:
    """The rate at 40 MHz of the crossings scoring above ``threshold``, from the scores of each
    block (``edm.trigger.pass_rate``): ``replicas`` for the blocks of ``CALIBRATION`` (error from
    their spread), else every crossing independent (``VALIDATION``)."""
    passed = np.concatenate([np.asarray(b) > threshold for b in scores])
    return pass_rate(passed, [len(b) for b in scores] if replicas else None)


def calibrate(scores: Sequence[np.ndarray], rate_khz: float) -> dict[str, Any]:
    """The integer threshold for ``rate_khz`` from the integer scores of each block of
    ``CALIBRATION`` (``firmware.emulator.calibrate``, the error from the replicas' spread)."""
    return calibrate_scores(np.concatenate(scores), rate_khz, replicas=[len(b) for b in scores])
