"""The bundled sample stores: where they are and the commands that make them.

    python -m recotrig.sequences.samples [DIR]    # regenerate both into DIR (default: data/)

(not a sequence: shared by the sequence files, ``make sample`` and the reproduction test)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from recotrig.io.samples import DATA, L1_FILES, L1_SAMPLE, SAMPLE_MU20, SAMPLE_MU60

__all__ = ["COMMANDS", "DATA", "L1_COMMANDS", "L1_SAMPLE", "SAMPLE_MU20", "SAMPLE_MU60", "regenerate"]

#: file name -> the ``sim.store.simulate`` keywords that make it (``recotrig simulate`` flags alike)
COMMANDS: dict[str, dict[str, Any]] = {
    SAMPLE_MU60.name: {"events": 4, "mu": 60.0, "hard_scatter": "ttbar", "seed": 60, "compression": "zstd:19"},
    SAMPLE_MU20.name: {"events": 3, "mu": 20.0, "hard_scatter": "ttbar", "seed": 20, "compression": "zstd:19"},
}

#: L1 file name -> the ``simulate_l1`` keywords that make it (``recotrig simulate-l1`` flags alike):
#: zero-bias crossings and the four signals at mu = 60, from a small pile-up pool of its own
_L1_COMMON: dict[str, Any] = {"mu": 60.0, "pool_size": 20000, "pool_seed": 3000}
L1_COMMANDS: dict[str, dict[str, Any]] = {
    name: {
        "process": process,
        "events": 10000 if process == "zerobias" else 500,
        **_L1_COMMON,
        "seed": 7 if process == "zerobias" else 101,
    }
    for process, name in L1_FILES.items()
}


def regenerate(folder: Path, *, jobs: int = 1) -> list[Path]:
    """Remake every bundled store into ``folder`` (replacing the files of the same names there)."""
    from recotrig.sequences.simulate_l1_cmd import simulate_l1
    from recotrig.sim.store import simulate

    made = []
    for name, options in COMMANDS.items():
        target = folder / name
        target.unlink(missing_ok=True)
        simulate(target, jobs=jobs, progress=False, **options)
        made.append(target)
    for name, options in L1_COMMANDS.items():
        target = folder / name
        target.unlink(missing_ok=True)
        simulate_l1(str(target), jobs=jobs, progress=False, **options)
        made.append(target)
    return made


if __name__ == "__main__":
    regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA)
