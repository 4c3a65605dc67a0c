"""Timing: mean milliseconds per event of each algorithm (``timing.json``), as bars."""

from __future__ import annotations

import numpy as np

from recotrig.report.common import Figure, Run, Skipped, figure

__all__ = ["figures"]


def figures(runs: list[Run]) -> list[Figure | Skipped]:
    timed = [run for run in runs if (run.get("timing.json") or {}).get("timing")]
    if not timed:
        return [Skipped("timing", "No timing.json: no timing figure.")]
    names = list(dict.fromkeys(row["algorithm"] for run in timed for row in run.get("timing.json")["timing"]))
    fig, ax = figure(height=1.6 + 0.45 * len(names), left=2.2)
    y = np.arange(len(names))
    width = 0.8 / len(timed)
    for i, run in enumerate(timed):
        ms = {row["algorithm"]: row["mean_ms"] for row in run.get("timing.json")["timing"]}
        ax.barh(
            y + (i - (len(timed) - 1) / 2) * width, [ms.get(n, np.nan) for n in names], height=width, label=run.label
        )
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("mean time per event [ms]")
    if len(timed) > 1:
        ax.legend(loc="best")
    return [Figure("timing", fig, "Mean time per event of each algorithm (its own process's CPU time; timing.json).")]
