"""Trigger data: Level-1 objects and trigger decisions. pT in GeV.

The L1 input layout is AXOL1TL's (and the ADC2021 data set's): missing ET, 4 e/gamma, 4 muons and
10 jets, each (pT, eta, phi), pT-ordered within its kind and zero-padded: 19 slots, 57 numbers.
``l1_features`` turns per-event ``L1Objects`` into that matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from recotrig.framework.collection import Collection

__all__ = [
    "CROSSING_RATE_KHZ",
    "CrossingInfo",
    "L1Objects",
    "TriggerDecision",
    "L1_SLOTS",
    "L1_N_FEATURES",
    "OperatingPoint",
    "PROCESS_CODES",
    "SIGNALS",
    "SM_COCKTAIL",
    "fpr_of_rate",
    "l1_feature_names",
    "l1_features",
    "pass_rate",
    "threshold_at_fpr",
]

#: process -> the integer code stored per crossing (``CrossingInfo.process``). Fixed numbers: stored
#: files keep their meaning, so a code is never reused or renumbered; a new process takes a new code.
PROCESS_CODES: dict[str, int] = {
    "zerobias": 0,
    "minbias": 1,
    "wlnu": 2,
    "zll": 3,
    "ttbar": 4,
    "ato4l": 5,
    "lq_btau": 6,
    "h0_tautau": 7,
    "hpm_taunu": 8,
}
#: the anomalous signals (beyond the Standard Model) an L1 anomaly trigger is measured on
SIGNALS: tuple[str, ...] = ("ato4l", "lq_btau", "h0_tautau", "hpm_taunu")
#: the lepton-filtered SM cocktail (ADC2021 style; QCD left out, see the README)
SM_COCKTAIL: tuple[str, ...] = ("wlnu", "zll", "ttbar")

#: the crossing rate trigger rates are quoted against (40 MHz)
CROSSING_RATE_KHZ = 40_000.0


def fpr_of_rate(rate_khz: float) -> float:
    """The zero-bias false-positive rate that gives ``rate_khz`` out of the 40 MHz crossings."""
    return rate_khz / CROSSING_RATE_KHZ


class OperatingPoint(NamedTuple):
    """A score threshold; ``allowed``: how many background scores may lie above it, ``n_pass``: how many do."""

    threshold: float
    allowed: int
    n_pass: int


def threshold_at_fpr(background: np.ndarray, fpr: float) -> OperatingPoint:
    """A trigger's operating point: the score threshold above which at most ``floor(fpr * n)`` of the
    ``n`` background scores lie (the ``floor(fpr * n)``-th largest score; ties lower the count)."""
    b = np.sort(np.asarray(background, np.float64))[::-1]
    k = math.floor(fpr * len(b) + 1e-9)
    if k >= len(b):
        raise ValueError(f"fpr {fpr} is too large for {len(b)} background events")
    threshold = float(b[k])
    return OperatingPoint(threshold, k, int(np.count_nonzero(b > threshold)))


def pass_rate(passed: np.ndarray, replicas: Sequence[int] | None = None) -> dict[str, Any]:
    """The trigger rate at 40 MHz that zero-bias crossings' decisions ``passed`` mean, with its
    statistical error. Independent crossings: ``sqrt(k) / n`` for ``k`` of ``n`` passing (the
    binomial error at the small fractions a trigger passes). ``replicas``: the sizes of the
    consecutive blocks of ``passed`` that are independent of each other while the crossings within
    one are not (premixed from one pile-up pool: they share its interactions); the error is then
    the spread of the blocks' pass fractions (the ratio estimator's variance over clusters), never
    below the independent one. ``n_effective``: the number of independent crossings that would
    give that error. With no crossing passing, the error is that of one (an upper scale)."""
    passed = np.asarray(passed, bool)
    n = len(passed)
    if not n:
        raise ValueError("no crossings to measure a rate on")
    k = int(np.count_nonzero(passed))
    p = k / n
    var = max(k, 1) / n**2
    if replicas is not None:
        sizes = np.asarray(replicas, np.int64)
        if sizes.sum() != n or (sizes <= 0).any():
            raise ValueError(f"replica sizes {sizes.tolist()} do not add up to the {n} crossings")
        if len(sizes) > 1:
            counts = np.add.reduceat(passed.astype(np.int64), np.r_[0, np.cumsum(sizes)[:-1]])
            g = len(sizes)
            var = max(var, float(g / (g - 1) * np.sum((counts - p * sizes) ** 2)) / n**2)
    error = math.sqrt(var)
    return {
        "crossings": n,
        "passed": k,
        "fraction": p,
        "fraction_error": error,
        "rate_khz": p * CROSSING_RATE_KHZ,
        "rate_khz_error": error * CROSSING_RATE_KHZ,
        "n_effective": round(p / var) if k else None,
        "replicas": None if replicas is None else len(replicas),
    }


class L1Objects(Collection, type_name="L1Objects"):
    """Level-1 trigger objects (missing ET, e/gamma, muons, jets): kind, pT (GeV), eta, phi, and
    where the producer has them the hardware integer words the firmware sees (``hw_pt``,
    ``hw_eta``, ``hw_phi``: integers in the trigger's own LSB units). Rows are ordered by kind
    (met, electron, muon, jet) and by falling pT within a kind; only real objects are stored."""

    KINDS = {"met": 0, "electron": 1, "muon": 2, "jet": 3}
    codes = {"kind": KINDS}
    columns = {"kind": "i4", "pt": "f8", "eta": "f8", "phi": "f8"}
    optional = {"hw_pt": "i4", "hw_eta": "i4", "hw_phi": "i4", "iso": "f8"}


class CrossingInfo(Collection, type_name="CrossingInfo"):
    """One row per crossing of an L1 data set: its process (``PROCESS_CODES``)
    and how many pile-up interactions it holds."""

    codes = {"process": PROCESS_CODES}
    columns = {"process": "i4", "n_pileup": "i4"}


#: (kind, number of slots) in the order of the 57-number input layout
L1_SLOTS: tuple[tuple[str, int], ...] = (("met", 1), ("electron", 4), ("muon", 4), ("jet", 10))
L1_N_FEATURES = 3 * sum(n for _, n in L1_SLOTS)


def l1_feature_names() -> list[str]:
    """Names of the 57 inputs: met_pt, met_eta, met_phi, electron0_pt, ..., jet9_phi."""
    names = []
    for kind, n in L1_SLOTS:
        for i in range(n):
            stem = kind if kind == "met" else f"{kind}{i}"
            names += [f"{stem}_pt", f"{stem}_eta", f"{stem}_phi"]
    return names


def l1_features(objects: L1Objects) -> np.ndarray:
    """One event's objects as the 57-number input vector (float32), zero-padded per kind."""
    out = np.zeros((sum(n for _, n in L1_SLOTS), 3), np.float32)
    row = 0
    for kind, n in L1_SLOTS:
        sel = np.flatnonzero(objects["kind"] == L1Objects.KINDS[kind])
        sel = sel[np.argsort(-objects["pt"][sel], kind="stable")][:n]
        out[row : row + len(sel), 0] = objects["pt"][sel]
        out[row : row + len(sel), 1] = objects["eta"][sel]
        out[row : row + len(sel), 2] = objects["phi"][sel]
        row += n
    return out.reshape(-1)


class TriggerDecision(Collection, type_name="TriggerDecision"):
    """One row per trigger: the score the decision is made on and whether the event passed
    (``passed`` is ``score > threshold``). Where the decision comes from firmware (or its
    emulator), ``score`` is the integer score word ``hw_score`` times its LSB, and
    ``float_score`` is the unquantised (float) model's score beside it, for comparison only."""

    columns = {"score": "f8", "passed": "bool"}
    optional = {"threshold": "f8", "hw_score": "i8", "float_score": "f8"}
