"""Filesets: many event stores of one format read as one sequence of entries.

``--input`` may name one store, a glob (``'events/*.root'``, sorted), a comma-separated list, or a
text file (``*.txt``) with one path per line (blank lines and ``#`` comments ignored). The files
keep the order given (a glob: sorted by name), and entry ``i`` of the fileset is entry
``i - offset`` of the file that holds it, so ``-n``/``--skip`` count across the fileset and every
output is in one fixed order whatever the executor. Event ids must be distinct across the fileset
(simulate each file with its own ``--first-event``): a repeated id is refused, naming both files.

A file that cannot be opened is refused with its name, or, with ``skip_bad=True``, left out and
recorded in ``bad`` as (file, reason).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.io.base import Event, Store
from recotrig.io.errors import StoreError
from recotrig.io.store import open_store

__all__ = ["Fileset", "expand"]

_GLOB = set("*?[")


def expand(spec: str | Sequence[str]) -> list[str]:
    """The paths a fileset spec names, in order; ``StoreError`` naming what does not exist."""
    if not isinstance(spec, str):
        items = [str(s) for s in spec]
    elif _GLOB & set(spec):
        items = sorted(glob.glob(spec))
        if not items:
            raise StoreError(f"the pattern {spec!r} matches no file")
    elif spec.endswith(".txt") and os.path.isfile(spec):
        base = Path(spec).parent
        items = []
        for line in Path(spec).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                items.append(line if os.path.isabs(line) else os.fspath(base / line))
        if not items:
            raise StoreError("the file list names no store", path=spec)
    elif "," in spec:
        items = [s.strip() for s in spec.split(",") if s.strip()]
    else:
        items = [spec]
    for item in items:
        if not os.path.exists(item):
            raise StoreError("no such file or directory (named in the fileset)", path=item)
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item in seen:
            raise StoreError(f"named twice in the fileset (items {seen[item]} and {i})", path=item)
        seen[item] = i
    return items


class Fileset:
    """Stores opened once each, addressed by fileset entry."""

    def __init__(self, spec: str | Sequence[str], *, format: str | None = None, skip_bad: bool = False):
        self.paths = expand(spec)
        self.bad: list[tuple[str, str]] = []
        self.stores: list[Store] = []
        for path in self.paths:
            try:
                store = open_store(path, format=format)
                store.event_ids  # noqa: B018 - opening reads the entry index; a damaged file fails here
            except StoreError as err:
                if not skip_bad:
                    raise
                self.bad.append((path, str(err)))
                continue
            self.stores.append(store)
        if not self.stores:
            raise StoreError("no readable store in the fileset" + (f": {self.bad}" if self.bad else ""))
        formats = {s.format for s in self.stores}
        if len(formats) > 1:
            raise StoreError(f"a fileset holds stores of one format; these are {sorted(formats)}")
        first = self.stores[0]
        for store in self.stores[1:]:
            if set(store.collections) != set(first.collections):
                raise StoreError(
                    f"holds collections {sorted(store.collections)}, the fileset's first store "
                    f"({first.path}) holds {sorted(first.collections)}",
                    path=store.path,
                )
        counts = np.asarray([s.n_events for s in self.stores], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.event_ids = np.concatenate([s.event_ids for s in self.stores]) if self.stores else np.zeros(0, np.int64)
        if len(self.stores) > 1:
            self._check_distinct_ids()

    def _check_distinct_ids(self) -> None:
        ids, first = np.unique(self.event_ids, return_index=True)
        if len(ids) == len(self.event_ids):
            return
        repeated = np.setdiff1d(np.arange(len(self.event_ids)), first)[0]
        event = int(self.event_ids[repeated])
        where = [str(self.stores[self.file_of(int(e))].path) for e in np.flatnonzero(self.event_ids == event)[:2]]
        raise StoreError(f"event id {event} is in {where[0]} and in {where[1]}; event ids must be distinct across a "
                         "fileset (simulate each file with its own --first-event)")

    @property
    def collections(self) -> list[str]:
        return list(self.stores[0].collections)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.stores[0].metadata

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])

    def file_of(self, entry: int) -> int:
        """Index (in ``stores``) of the file holding fileset entry ``entry``."""
        return int(np.searchsorted(self.offsets, entry, side="right") - 1)

    def segments(self) -> list[tuple[str, int, int]]:
        """(path, first fileset entry, number of entries) per readable file, in order."""
        return [(os.fspath(s.path), int(self.offsets[i]), s.n_events) for i, s in enumerate(self.stores)]

    def read(self, start: int, stop: int, *, collections: list[str]) -> list[Event]:
        """Events of fileset entries start..stop-1 (which may span files)."""
        events: list[Event] = []
        while start < stop:
            i = self.file_of(start)
            end = min(stop, int(self.offsets[i + 1]))
            local = start - int(self.offsets[i])
            events += self.stores[i].read(local, local + end - start, collections=collections)
            start = end
        return events
