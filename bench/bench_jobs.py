"""`recotrig run vertexing` with -j 2 against -j 1 on 16 events at mu = 60, in one run.

Prints JSON: the median wall-time ratio over alternating pairs, the main process's CPU time per
event (what it spends merging metrics, running writers and unpickling results; from each run's
timing.json), and whether every non-timing output (reco.root, comparison.json/.root,
performance.json, run.json) is byte-identical across -j 1, -j 2 and a rerun.

The events are simulated once into bench/.cache/ (not committed; remade by this script):
    recotrig simulate -o bench/.cache/mu60_16.root -n 16 --mu 60 --hard-scatter ttbar --seed 16 -j 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
STORE = CACHE / "mu60_16.root"
OUTPUTS = ("reco.root", "comparison.json", "comparison.root", "performance.json", "run.json")


def recotrig(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "recotrig.sequences.cli", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"recotrig {' '.join(args)} failed:\n{done.stderr}")


def run(jobs: int, out: Path) -> float:
    t0 = time.perf_counter()
    recotrig("run", "vertexing", "--input", str(STORE), "-o", str(out), "-j", str(jobs), "--no-progress")
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pairs", type=int, default=3)
    a = p.parse_args()
    CACHE.mkdir(exist_ok=True)
    if not STORE.exists():
        recotrig(
            "simulate",
            "-o",
            str(STORE),
            "-n",
            "16",
            "--mu",
            "60",
            "--hard-scatter",
            "ttbar",
            "--seed",
            "16",
            "-j",
            "2",
            "--no-progress",
        )
    ratios, walls, main_ms = [], {1: [], 2: []}, {1: [], 2: []}
    identical = True
    reference: dict[str, bytes] = {}
    for _pair in range(a.pairs):
        for jobs in (1, 2):
            out = CACHE / f"out_j{jobs}"
            walls[jobs].append(run(jobs, out))
            main_ms[jobs].append(json.loads((out / "timing.json").read_text())["main_process_cpu_ms_per_event"])
            for name in OUTPUTS:
                data = (out / name).read_bytes()
                identical &= reference.setdefault(name, data) == data
        ratios.append(walls[1][-1] / walls[2][-1])
    print(
        json.dumps(
            {
                "benchmark": "vertexing -j 2 vs -j 1",
                "events": 16,
                "mu": 60,
                "cpus": os.cpu_count(),
                "pairs": a.pairs,
                "j2_speedup_median": round(statistics.median(ratios), 3),
                "j2_speedup_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
                "j2_speedup_goal": 1.9,
                "wall_s_median": {str(j): round(statistics.median(w), 2) for j, w in walls.items()},
                "main_process_cpu_ms_per_event_median": {
                    str(j): round(statistics.median(m), 3) for j, m in main_ms.items()
                },
                "main_process_goal_ms": 1.0,
                "outputs_identical_across_j1_j2_reruns": identical,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
