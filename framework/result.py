"""What a run gives back: the ``RunResult``, its timing tables and the metrics' summaries.

The engine fills the counts, the timing and the record; the metrics fill their summaries at the end
of the run through typed methods (``add_report``, ``add_comparison``, ``add_trigger``), and the
command line and the Python API read the fields: nothing travels under string keys.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recotrig.framework.worker import EventFailure

__all__ = ["RunResult", "per_event_table", "timing_rows"]


@dataclass
class RunResult:
    """What a run did: events processed and skipped, filter counts, where the time went, and what
    its metrics found."""

    start: int
    stop: int
    processed: int
    failures: list[EventFailure]
    timing: list[dict[str, Any]]
    wall_s: float
    jobs: int = 1
    #: filter name -> {"seen": n, "passed": m}
    filters: dict[str, dict[str, int]] = field(default_factory=dict)
    #: CPU seconds of the main process (all its threads) while events ran: receiving and unpickling
    #: results, merging accumulators, serial algorithms (with -j 1 the events themselves run there)
    main_cpu_s: float = 0.0
    #: seconds of the event loop alone (from the executor's start to the last chunk's result)
    loop_s: float = 0.0
    #: per processed event: "run_number", "event_id" and, per algorithm, its time in ms (NaN where it did not run)
    per_event: dict[str, Any] = field(default_factory=dict)
    #: the run's configuration and provenance (``record.py``)
    record: dict[str, Any] = field(default_factory=dict)
    #: input files left out (``skip_bad_files``): file, reason, and the entries lost (None: at opening)
    bad_files: list[dict[str, Any]] = field(default_factory=list)
    #: the metrics' tables as text, in execution order (printed after the timing table)
    reports: list[str] = field(default_factory=list)
    #: the comparison table (one row per collection, labelled "<producer> [<key>]"; no timing), or
    #: None when no metric made one; several comparison metrics add their rows in execution order
    comparison: list[dict[str, Any]] | None = None
    #: the comparison's rows' mean time per event of the producing algorithm [ms], by row label
    comparison_ms_per_event: dict[str, float] = field(default_factory=dict)
    #: trigger figures (signal efficiencies, ROC AUC, decisions) by the name of the metric that made them
    triggers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_report(self, text: str) -> None:
        """A metric's table as text, shown after the timing table."""
        self.reports.append(text)

    def add_comparison(self, rows: list[dict[str, Any]]) -> None:
        """Rows of the comparison table, each with an ``algorithm`` label and an ``ms_per_event``; the
        timing is kept apart (``comparison_ms_per_event``), so ``comparison`` is equal for equal runs."""
        self.comparison = (self.comparison or []) + [
            {k: v for k, v in row.items() if k != "ms_per_event"} for row in rows
        ]
        self.comparison_ms_per_event.update({row["algorithm"]: row["ms_per_event"] for row in rows})

    def add_trigger(self, metric: str, figures: dict[str, Any]) -> None:
        """The trigger figures that the metric named ``metric`` found."""
        self.triggers[metric] = figures

    @property
    def events_per_s(self) -> float:
        return (self.processed + len(self.failures)) / self.wall_s if self.wall_s > 0 else math.inf

    def timing_table(self) -> str:
        head = f"{'algorithm':<28}{'calls':>8}{'mean ms':>11}{'median ms':>11}{'share':>8}"
        lines = [head, "-" * len(head)]
        for row in self.timing:
            lines.append(
                f"{row['algorithm']:<28}{row['calls']:>8}{row['mean_ms']:>11.3f}{row['median_ms']:>11.3f}"
                f"{row['share']:>7.1%}"
            )
        lines.append(
            f"{self.processed} events processed, {len(self.failures)} skipped, {self.wall_s:.2f} s wall, "
            f"{self.events_per_s:.1f} events/s, -j {self.jobs}"
        )
        for bad in self.bad_files:
            lost = f" (entries {bad['entries'][0]}..{bad['entries'][1] - 1})" if bad["entries"] else ""
            lines.append(f"bad file skipped: {bad['file']}{lost}: {bad['reason']}")
        for name, counts in self.filters.items():
            rate = counts["passed"] / counts["seen"] if counts["seen"] else math.nan
            lines.append(f"filter {name}: {counts['passed']} of {counts['seen']} events passed ({rate:.1%})")
        return "\n".join(lines)


def per_event_table(names: list[str], rows: list[tuple]) -> dict[str, Any]:
    """Columns of the per-event timing: run number, event id and each algorithm's time [ms]."""
    keys = np.asarray([row[:2] for row in rows], dtype=np.int64).reshape(len(rows), 2)
    table = np.asarray([row[2:] for row in rows], dtype=float).reshape(len(rows), len(names))
    out: dict[str, Any] = {"run_number": keys[:, 0], "event_id": keys[:, 1]}
    out.update({name: 1e3 * table[:, i] for i, name in enumerate(names)})
    return out


def timing_rows(order: list[str], timings: dict[str, list[float]]) -> list[dict[str, Any]]:
    """One row per algorithm: calls, mean and median time, total and share of the run."""
    total = sum(sum(v) for v in timings.values()) or 1.0
    rows = []
    for name in order:
        values = timings.get(name, [])
        rows.append(
            {
                "algorithm": name,
                "calls": len(values),
                "mean_ms": 1e3 * statistics.fmean(values) if values else 0.0,
                "median_ms": 1e3 * statistics.median(values) if values else 0.0,
                "total_s": sum(values),
                "share": sum(values) / total,
            }
        )
    return rows
