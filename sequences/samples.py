"""The bundled sample stores: where they are and the commands that make them.

    python -m recotrig.sequences.samples [DIR]    # regenerate both into DIR (default: data/)

(not a sequence: shared by the sequence files, ``make sample`` and the reproduction test)
"""

from __future__ import annotations

import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"

#: mu = 60 pile-up with a ttbar hard scatter: the main job's default input
SAMPLE_MU60 = DATA / "sample_mu60_ttbar.root"
#: mu = 20 pile-up with a ttbar hard scatter
SAMPLE_MU20 = DATA / "sample_mu20_ttbar.root"

#: file name -> `recotrig simulate` arguments that make it
COMMANDS: dict[str, list[str]] = {
    SAMPLE_MU60.name: ["-n", "4", "--mu", "60", "--hard-scatter", "ttbar", "--seed", "60", "--compression", "zstd:19"],
    SAMPLE_MU20.name: ["-n", "3", "--mu", "20", "--hard-scatter", "ttbar", "--seed", "20", "--compression", "zstd:19"],
}


#: the bundled L1 sample (the anomaly sequence's default input): zero-bias crossings and the four
#: signals at mu = 60, from a small pile-up pool of its own; file name -> `recotrig simulate-l1` arguments
_L1_COMMON = ["--mu", "60", "--pool-size", "20000", "--pool-seed", "3000", "--seed"]
L1_COMMANDS: dict[str, list[str]] = {
    "l1_zerobias_mu60.root": ["--process", "zerobias", "-n", "10000", *_L1_COMMON, "7"],
    **{f"l1_{signal}_mu60.root": ["--process", signal, "-n", "500", *_L1_COMMON, "101"]
       for signal in ("ato4l", "lq_btau", "h0_tautau", "hpm_taunu")},
}
L1_SAMPLE = ",".join(str(DATA / name) for name in L1_COMMANDS)


def regenerate(folder: Path, *, jobs: int = 1) -> list[Path]:
    from .simulate_cmd import main as simulate
    from .simulate_l1_cmd import main as simulate_l1

    made = []
    for name, args in COMMANDS.items():
        target = folder / name
        target.unlink(missing_ok=True)
        simulate(["-o", str(target), "-j", str(jobs), "--no-progress", *args])
        made.append(target)
    for name, args in L1_COMMANDS.items():
        target = folder / name
        target.unlink(missing_ok=True)
        simulate_l1(["-o", str(target), "-j", str(jobs), "--no-progress", *args])
        made.append(target)
    return made


if __name__ == "__main__":
    regenerate(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA)
