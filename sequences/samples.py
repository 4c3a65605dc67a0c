"""Where the bundled sample stores are (not a sequence: shared by the sequence files)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"

#: mu = 60 pile-up with a ttbar hard scatter: the main job's default input
SAMPLE_MU60 = DATA / "sample_mu60_ttbar.root"
#: mu = 20 pile-up with a ttbar hard scatter
SAMPLE_MU20 = DATA / "sample_mu20_ttbar.root"
