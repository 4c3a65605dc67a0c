"""Common options and lazy set-up of the ACTS-backed algorithms."""

from __future__ import annotations

from typing import Any

from recotrig.detector import DetectorSpec
from recotrig.framework.algorithm import Algorithm, ConfigError, Option


class ActsAlgorithm(Algorithm):
    """Base of the ACTS-backed algorithms: which detector, ACTS's log level, and a per-stage CPU
    timer (``self.timer``, filled while events run; ``bench/bench_acts.py`` reads it).

    ACTS is imported in ``initialize`` only, so instances are cheap and pickle (options only).
    """

    requires = ("pyacts",)
    detector = Option("generic", "ACTS detector the hits were made with (recotrig.detector)", choices=("generic",))
    field_T = Option(2.0, "solenoid field the hits were made with [T]", low=-10.0, high=10.0)
    log_level = Option("WARNING", "ACTS log level", choices=("VERBOSE", "DEBUG", "INFO", "WARNING", "ERROR", "FATAL"))

    def initialize(self) -> None:
        try:
            from recotrig.algorithms.acts import bridge
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ConfigError(
                f"{self.name}: ACTS Python bindings are not importable ({err}); install recotrig[acts]"
            ) from None

        self._bridge = bridge
        self.setup = bridge.acts_setup(DetectorSpec(name=self.detector, field_T=self.field_T))
        self.level = bridge.log_level(self.log_level)
        self.timer = bridge.StageTimer()
        self._events = 0

    def _next_event(self) -> Any:
        """A fresh ACTS event (whiteboard + context) for the next call of ``execute``."""
        event = self._bridge.ActsEvent(self._events, level=self.level, timer=self.timer)
        self._events += 1
        self.timer.events += 1
        return event
