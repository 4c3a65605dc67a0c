"""Report generation time on the bundled samples (the budget: 10 s each). Prints JSON.

Each shipped sequence that the README runs on the bundled samples (``vertexing``, ``pvfinder``,
``trigger``, ``full``) is run once into a temporary folder; then ``recotrig report DIR`` is timed
as a whole command (interpreter start, imports, every figure as PNG and PDF, the page), best and
median of ``--repeat``, and once for the trigger and vertexing runs overlaid.

    python bench/bench_report.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_S = 10.0
SEQUENCES = ("vertexing", "pvfinder", "trigger", "full")


def _recotrig(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "recotrig.sequences.cli", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"recotrig {' '.join(args)} failed:\n{done.stderr}")


def _timed(args: list[str], repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        _recotrig(*args)
        times.append(time.perf_counter() - start)
    return {"best_s": min(times), "median_s": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recotrig-bench-report-"))
    results = {}
    for sequence in SEQUENCES:
        out = work / sequence
        _recotrig("run", sequence, "-o", str(out), "--no-progress")
        figures = out / "figures"
        results[sequence] = _timed(["report", str(out)], args.repeat)
        results[sequence]["figures"] = len(list(figures.glob("*.png")))
    both = ["report", str(work / "trigger"), str(work / "vertexing"), "--labels", "l1,reco", "-o", str(work / "both")]
    results["trigger+vertexing overlaid"] = _timed(both, args.repeat)
    print(
        json.dumps(
            {
                "benchmark": "report generation",
                "unit": "seconds of `recotrig report DIR` as a whole command, one process",
                "budget_s": BUDGET_S,
                "within_budget": all(r["median_s"] <= BUDGET_S for r in results.values()),
                "runs": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
