"""Trigger data: Level-1 objects and trigger decisions. pT in GeV.

The L1 input layout is AXOL1TL's (and the ADC2021 data set's): missing ET, 4 e/gamma, 4 muons and
10 jets, each (pT, eta, phi), pT-ordered within its kind and zero-padded: 19 slots, 57 numbers.
``l1_features`` turns per-event ``L1Objects`` into that matrix.
"""

from __future__ import annotations

import numpy as np

from recotrig.framework.collection import Collection

__all__ = ["CrossingInfo", "L1Objects", "TriggerDecision", "L1_SLOTS", "L1_N_FEATURES", "l1_feature_names", "l1_features"]


class L1Objects(Collection, type_name="L1Objects"):
    """Level-1 trigger objects (missing ET, e/gamma, muons, jets): kind, pT (GeV), eta, phi, and
    where the producer has them the hardware integer words the firmware sees (``hw_pt``,
    ``hw_eta``, ``hw_phi``: integers in the trigger's own LSB units). Rows are ordered by kind
    (met, electron, muon, jet) and by falling pT within a kind; only real objects are stored."""

    KINDS = {"met": 0, "electron": 1, "muon": 2, "jet": 3}
    columns = {"kind": "i4", "pt": "f8", "eta": "f8", "phi": "f8"}
    optional = {"hw_pt": "i4", "hw_eta": "i4", "hw_phi": "i4", "iso": "f8"}


class CrossingInfo(Collection, type_name="CrossingInfo"):
    """One row per crossing of an L1 data set: its process (``recotrig.sim.premix.PROCESS_CODES``)
    and how many pile-up interactions it holds."""

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
    """One row per trigger: its score and whether the event passed; the integer score word where
    the decision comes from firmware (or its emulator)."""

    columns = {"score": "f8", "passed": "bool"}
    optional = {"threshold": "f8", "hw_score": "i8"}
