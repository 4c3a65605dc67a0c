"""Which event this is: ``EventKey(run, event)``, as HEP identifies events (EDM4hep's EventHeader
run and event numbers, CMS's run/lumi/event).

An event is known by its run number and its event number within the run. Stores carry both (a
store written before run numbers were recorded reads as run 0), the fileset refuses a repeated
key, and every output keyed per event (the engine's ``EventInfo``, ``timing.root``, the failure
records of ``run.json``, the per-event TrackML scores of ``performance.json``) carries both, as
``run_number`` and ``event_id``. Run 0 means "no run number": messages then name the event alone
(``event 7``), as before runs existed; any other run is named with it (``run 3 event 7``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

__all__ = ["EventKey", "first_repeat"]


class EventKey(NamedTuple):
    """An event's identity: run number and event number (both non-negative integers)."""

    run: int
    event: int

    def label(self, noun: str = "event") -> str:
        """``event 7`` (run 0) or ``run 3 event 7``; ``noun`` replaces the word ``event``."""
        return f"{noun} {self.event}" if self.run == 0 else f"run {self.run} {noun} {self.event}"

    def __str__(self) -> str:
        return self.label()

    @classmethod
    def of(cls, info: Any) -> EventKey:
        """The key of an ``EventInfo`` row (one without ``run_number`` is run 0)."""
        run = int(info["run_number"][0]) if "run_number" in info else 0
        return cls(run, int(info["event_id"][0]))


def first_repeat(runs: np.ndarray, events: np.ndarray) -> tuple[int, int] | None:
    """Positions ``(i, j)``, ``i < j``, of the first key (in order of ``j``) that appears twice
    among the pairs ``(runs[k], events[k])``; None when every key is distinct."""
    runs, events = np.asarray(runs, dtype=np.int64), np.asarray(events, dtype=np.int64)
    order = np.lexsort((events, runs))  # stable: a repeated key's positions stay in ascending order
    r, e = runs[order], events[order]
    later = order[1:][(r[1:] == r[:-1]) & (e[1:] == e[:-1])]  # every occurrence after a key's first
    if len(later) == 0:
        return None
    j = int(later.min())
    return int(np.flatnonzero((runs == runs[j]) & (events == events[j]))[0]), j
