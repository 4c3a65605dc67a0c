"""Shared by the benchmark scripts (run as ``python bench/<name>.py``)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def plotting(parser: argparse.ArgumentParser, plot: Callable[[list[dict], str], None]) -> argparse.Namespace | None:
    """A benchmark's ``--plot PNG`` and ``--replot JSON`` flags added to ``parser`` and parsed: with
    ``--replot``, ``plot`` draws the ``points`` of that earlier output and None is returned (nothing
    to measure); else the parsed flags."""
    parser.add_argument("--plot", metavar="PNG", help="draw the figure here")
    parser.add_argument("--replot", metavar="JSON", help="only draw --plot from this script's earlier output")
    args = parser.parse_args()
    if not args.replot:
        return args
    if not args.plot:
        parser.error("--replot needs --plot")
    plot(json.loads(Path(args.replot).read_text())["points"], args.plot)
    return None


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send file descriptor 1 to stderr while the block runs: C++ libraries (ACTS, Pythia) log on
    it, and a benchmark's stdout must be its JSON only."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """The shortest of ``repeat`` wall-clock timings of ``fn()``, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
