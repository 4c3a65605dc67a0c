"""Trigger data: Level-1 objects and trigger decisions. pT in GeV."""

from __future__ import annotations

from recotrig.framework.collection import Collection

__all__ = ["L1Objects", "TriggerDecision"]


class L1Objects(Collection, type_name="L1Objects"):
    """Level-1 trigger objects (missing ET, e/gamma, muons, jets): kind, pT (GeV), eta, phi, and
    where the producer has them the hardware integer words the firmware sees (``hw_pt``,
    ``hw_eta``, ``hw_phi``: integers in the trigger's own LSB units)."""

    KINDS = {"met": 0, "electron": 1, "muon": 2, "jet": 3}
    columns = {"kind": "i4", "pt": "f8", "eta": "f8", "phi": "f8"}
    optional = {"hw_pt": "i4", "hw_eta": "i4", "hw_phi": "i4"}


class TriggerDecision(Collection, type_name="TriggerDecision"):
    """One row per trigger: its score and whether the event passed; the integer score word where
    the decision comes from firmware (or its emulator)."""

    columns = {"score": "f8", "passed": "bool"}
    optional = {"threshold": "f8", "hw_score": "i8"}
