"""What every event store and store writer offers, whatever the format.

A store is a sequence of events; an event is a dict ``collection name -> Collection``. Events are
addressed by *entry* (position 0..n_events-1, what ``-n/--skip`` count) and identified by their
run and event numbers, ``EventKey(run, event)`` (``recotrig.framework.identity``): the *event id*
``store.event_ids[entry]`` (from the file names or the ``event_id`` branch) and the *run number*
``store.runs[entry]`` (a ROOT store's ``run_number`` branch, a TrackML store's ``run_number`` in
``metadata.json``; a store without one is run 0).
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from recotrig.edm import Cells, Hits, HitTruth, Particles, TruthVertices
from recotrig.framework.collection import Collection
from recotrig.framework.identity import EventKey
from recotrig.io.errors import StoreError

__all__ = [
    "STANDARD_COLLECTIONS",
    "Cells",
    "Event",
    "Store",
    "Writer",
]

Event = dict[str, Collection]


#: collection name -> container type of the collections every format knows by name
STANDARD_COLLECTIONS: dict[str, type[Collection]] = {
    "hits": Hits,
    "particles": Particles,
    "truth": HitTruth,
    "vertices": TruthVertices,
    "cells": Cells,
}


class Store(ABC):
    """Read access to an event store. Use :func:`recotrig.io.store.open_store` to get one."""

    format: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    # -- what is in it ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def event_ids(self) -> np.ndarray:
        """Event ids in entry order (int64)."""

    @property
    def runs(self) -> np.ndarray:
        """Run numbers in entry order (int64); 0 where the store records none."""
        return np.zeros(len(self.event_ids), dtype=np.int64)

    def key(self, entry: int) -> EventKey:
        """The (run, event) of ``entry``."""
        return EventKey(int(self.runs[entry]), int(self.event_ids[entry]))

    @property
    @abstractmethod
    def collections(self) -> list[str]:
        """Names of the collections the store holds."""

    @property
    def metadata(self) -> dict[str, Any]:
        """Store-level metadata (empty if the store has none)."""
        return {}

    @property
    def n_events(self) -> int:
        return len(self.event_ids)

    def __len__(self) -> int:
        return self.n_events

    def entry_of(self, event_id: int, run: int | None = None) -> int:
        """The entry holding event ``event_id`` (of run ``run``, when given)."""
        found = self.event_ids == event_id
        if run is not None:
            found &= self.runs == run
        where = np.flatnonzero(found)
        if len(where) == 0:
            what = f"event id {event_id}" if run is None else EventKey(run, event_id).label("event id")
            raise StoreError(f"no {what}", path=self.path)
        return int(where[0])

    # -- reading ---------------------------------------------------------------------------------
    def read(self, start: int = 0, stop: int | None = None, *, collections: Iterable[str] | None = None) -> list[Event]:
        """Events of entries ``start .. stop-1`` (clipped to the store), one dict per event.

        ``collections`` picks what to read (default: all the store has); only those are read
        from disk.
        """
        start, stop = self._clip(start, stop)
        names = self._pick(collections)
        if stop <= start:
            return []
        return self._read(start, stop, names)

    def iterate(
        self,
        *,
        start: int = 0,
        stop: int | None = None,
        step: int = 16,
        collections: Iterable[str] | None = None,
    ) -> Iterator[tuple[int, list[Event]]]:
        """Chunks ``(first entry, events)`` of at most ``step`` events covering ``start .. stop-1``."""
        if step < 1:
            raise ValueError(f"step must be at least 1, got {step}")
        start, stop = self._clip(start, stop)
        names = self._pick(collections)
        for first in range(start, stop, step):
            yield first, self._read(first, min(first + step, stop), names)

    def _clip(self, start: int, stop: int | None) -> tuple[int, int]:
        n = self.n_events
        if start < 0 or (stop is not None and stop < 0):
            raise ValueError(f"entry range must not be negative, got start={start}, stop={stop}")
        stop = n if stop is None else min(stop, n)
        return min(start, n), stop

    def _pick(self, collections: Iterable[str] | None) -> list[str]:
        if collections is None:
            return list(self.collections)
        if isinstance(collections, str):
            collections = [collections]
        names = list(collections)
        missing = [c for c in names if c not in self.collections]
        if missing:
            raise StoreError(
                f"the store has no collection(s) {missing}; it has {self.collections}",
                path=self.path,
            )
        return names

    @abstractmethod
    def _read(self, start: int, stop: int, names: list[str]) -> list[Event]:
        """Read entries start..stop-1 (already clipped, non-empty) of the named collections."""

    # -- summary ---------------------------------------------------------------------------------
    @abstractmethod
    def info(self) -> dict[str, Any]:
        """A JSON-able summary: format, path, events, event id range, run numbers, metadata and
        per collection the columns, rows per event and bytes on disk."""

    def _info_head(self) -> dict[str, Any]:
        ids = self.event_ids
        return {
            "path": os.fspath(self.path),
            "format": self.format,
            "events": self.n_events,
            "first_event_id": int(ids[0]) if len(ids) else None,
            "last_event_id": int(ids[-1]) if len(ids) else None,
            "runs": np.unique(self.runs).tolist(),
            "metadata": self.metadata,
        }

    # -- lifetime --------------------------------------------------------------------------------
    def close(self) -> None:
        """Release open files (reading again reopens them)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({os.fspath(self.path)!r}, {self.n_events} events, {self.collections})"


class Writer(ABC):
    """Writes events one by one; nothing appears under the final name before ``close()``.

    Use as a context manager: an exception inside the ``with`` block (an interrupt included)
    discards what was written.
    """

    format: ClassVar[str] = ""

    def __init__(self, path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None):
        self.path = Path(path)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._ids: set[EventKey] = set()
        self._closed = False

    @property
    def n_events(self) -> int:
        return len(self._ids)

    def append(self, event_id: int, collections: Mapping[str, Collection], *, run: int = 0) -> None:
        """Add event ``event_id`` of run ``run`` (each (run, event) once)."""
        if self._closed:
            raise StoreError("the writer is closed", path=self.path)
        if isinstance(event_id, bool) or not isinstance(event_id, (int, np.integer)):
            raise StoreError(f"event id must be an integer, got {event_id!r}", path=self.path)
        if isinstance(run, bool) or not isinstance(run, (int, np.integer)) or run < 0:
            raise StoreError(
                f"run number must be a non-negative integer, got {run!r}", path=self.path, event=int(event_id)
            )
        key = EventKey(int(run), int(event_id))
        if key in self._ids:
            raise StoreError(
                "event id written twice" + (f" in run {key.run}" if key.run else ""), path=self.path, event=key.event
            )
        for name, value in collections.items():
            if not isinstance(value, Collection):
                raise StoreError(
                    f"collection {name!r} is a {type(value).__name__}, not a Collection",
                    path=self.path,
                    event=key.event,
                )
        self._append(key, dict(collections))
        self._ids.add(key)

    @abstractmethod
    def _append(self, key: EventKey, collections: dict[str, Collection]) -> None: ...

    def close(self) -> Path:
        """Finish the store and move it under its final name; returns that path."""
        if not self._closed:
            self._closed = True
            try:
                self._finish()
            except BaseException:
                self._discard()
                raise
        return self.path

    def abort(self) -> None:
        """Drop everything written so far (temporary files are removed)."""
        if not self._closed:
            self._closed = True
            self._discard()

    @abstractmethod
    def _finish(self) -> None: ...

    @abstractmethod
    def _discard(self) -> None: ...

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.abort()
