"""The bundled sample stores in ``data/``: where they are (how they are made:
``sequences.samples``)."""

from __future__ import annotations

from pathlib import Path

from recotrig.edm.trigger import SIGNALS

__all__ = ["DATA", "L1_FILES", "L1_SAMPLE", "SAMPLE_MU20", "SAMPLE_MU60"]

DATA = Path(__file__).resolve().parent.parent / "data"

#: mu = 60 pile-up with a ttbar hard scatter: the main job's default input
SAMPLE_MU60 = DATA / "sample_mu60_ttbar.root"
#: mu = 20 pile-up with a ttbar hard scatter
SAMPLE_MU20 = DATA / "sample_mu20_ttbar.root"

#: the bundled L1 sample (the anomaly sequence's default input): zero-bias crossings and the four
#: signals at mu = 60, from a small pile-up pool of its own
#: process -> file name
L1_FILES: dict[str, str] = {"zerobias": "l1_zerobias_mu60.root", **{s: f"l1_{s}_mu60.root" for s in SIGNALS}}
L1_SAMPLE = ",".join(str(DATA / name) for name in L1_FILES.values())
