"""The limits of a run's execution options, checked in one place.

``-j``/``jobs``, ``--workers``/``workers``, ``--retries``/``retries`` and
``--chunk-size``/``chunk_size`` are checked by :func:`check_run_options`, which the command line,
``Sequencer.run`` and the executors all call. A value out of range raises ``ConfigError`` with one
line, spelled the way the caller named the option: the flag on the command line (``-j must be from
1 to 64, got 0``), the keyword in Python (``jobs must be an integer from 1 to 64, got 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recotrig.framework.algorithm import ConfigError

__all__ = ["MAX_JOBS", "MAX_RETRIES", "check_run_options"]

#: most worker processes a run starts, whatever -j says (more only add memory and start-up)
MAX_JOBS = 64
#: most times a failing chunk is re-run
MAX_RETRIES = 100


@dataclass(frozen=True)
class Limit:
    """An integer option's range (``high`` None: no upper bound) and its two spellings."""

    keyword: str
    flag: str
    low: int
    high: int | None = None

    def check(self, value: Any, *, cli: bool = False) -> int:
        if (
            isinstance(value, int)
            and not isinstance(value, bool)
            and value >= self.low
            and (self.high is None or value <= self.high)
        ):
            return value
        span = f"from {self.low} to {self.high}" if self.high is not None else f"at least {self.low}"
        if cli:
            raise ConfigError(f"{self.flag} must be {span}, got {value}")
        raise ConfigError(
            f"{self.keyword} must be an integer {'of ' if self.high is None else ''}{span}, got {value!r}"
        )


JOBS = Limit("jobs", "-j", 1, MAX_JOBS)
WORKERS = Limit("workers", "--workers", 1, MAX_JOBS)
RETRIES = Limit("retries", "--retries", 0, MAX_RETRIES)
CHUNK_SIZE = Limit("chunk_size", "--chunk-size", 1)


def check_run_options(
    *, jobs: Any = None, workers: Any = None, retries: Any = None, chunk_size: Any = None, cli: bool = False
) -> None:
    """Check the given options (None: not given, or the default); ``cli``: name them by their flags."""
    for limit, value in ((JOBS, jobs), (WORKERS, workers), (RETRIES, retries), (CHUNK_SIZE, chunk_size)):
        if value is not None:
            limit.check(value, cli=cli)
