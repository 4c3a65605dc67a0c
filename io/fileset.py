"""Filesets: many event stores of one format read as one sequence of entries.

``--input`` may name one store, a glob (``'events/*.root'``, sorted), a comma-separated list, or a
text file (``*.txt``) with one path per line (blank lines and ``#`` comments ignored). The files
keep the order given (a glob: sorted by name), and entry ``i`` of the fileset is entry
``i - offset`` of the file that holds it, so ``-n``/``--skip`` count across the fileset and every
output is in one fixed order whatever the executor. Event ids must be distinct across the fileset
(simulate each file with its own ``--first-event``): a repeated id is refused, naming both files.

A file that cannot be opened is refused with its name, or, with ``skip_bad=True``, left out and
recorded in ``bad`` as (file, reason).

Planning is cheap: beyond the first store (opened in full: its collections and metadata describe
the fileset), a recotrig ROOT file is indexed from one tree's ``event_id`` branch, and opened in
full only where (and when) its events are read — in the worker that reads them. A file that
indexes but turns out damaged or different fails there, naming the file.
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
from recotrig.io.rootstore import TITLE_PREFIX, is_root_file
from recotrig.io.roottree import wrapped
from recotrig.io.store import detect_format, open_store

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
        self.format = format
        self.bad: list[tuple[str, str]] = []
        self.files: list[str] = []
        self._open: dict[int, Store] = {}
        ids: list[np.ndarray] = []
        for path in self.paths:
            try:
                if not self._open:  # the first readable store, in full
                    store = open_store(path, format=format)
                    self._open[0] = store
                    self.format = store.format
                    found = store.event_ids
                else:
                    found = self._index(path)
            except StoreError as err:
                if not skip_bad:
                    raise
                self.bad.append((path, str(err)))
                continue
            self.files.append(path)
            ids.append(np.asarray(found, dtype=np.int64))
        if not self.files:
            raise StoreError("no readable store in the fileset" + (f": {self.bad}" if self.bad else ""))
        counts = np.asarray([len(i) for i in ids], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.event_ids = np.concatenate(ids)
        if len(self.files) > 1:
            self._check_distinct_ids()

    def _index(self, path: str) -> np.ndarray:
        """Event ids of a store after the first: from one tree of a recotrig ROOT file, else by
        opening it in full."""
        if self.format != "root" or detect_format(path) != "root":
            return self._checked(len(self._open), open_store(path, format=self.format)).event_ids
        import uproot

        if not is_root_file(path):
            raise StoreError("not a ROOT file (it does not start with 'root')", path=path)
        with wrapped("cannot open as a ROOT file (truncated or damaged?)", path=path):
            with uproot.open(path) as file:
                trees = [k for k, c in file.classnames(cycle=False).items() if c == "TTree" and "/" not in k]
                name = "hits" if "hits" in trees else (trees[0] if trees else None)
                tree = file[name] if name is not None else None
                if tree is None or not (tree.title or "").startswith(TITLE_PREFIX) or "event_id" not in tree:
                    return self._checked(len(self._open), open_store(path, format=self.format)).event_ids
                return tree["event_id"].array(library="np")

    def _checked(self, index: int, store: Store) -> Store:
        first = self._open[0]
        if store.format != first.format:
            raise StoreError(f"a fileset holds stores of one format; this is {store.format}, {first.path} is "
                             f"{first.format}", path=store.path)
        if set(store.collections) != set(first.collections):
            raise StoreError(
                f"holds collections {sorted(store.collections)}, the fileset's first store "
                f"({first.path}) holds {sorted(first.collections)}",
                path=store.path,
            )
        return store

    def store(self, index: int) -> Store:
        """The ``index``-th readable file, opened (and checked against the first) on first use."""
        if index not in self._open:
            store = self._checked(index, open_store(self.files[index], format=self.format))
            if len(store.event_ids) != self.offsets[index + 1] - self.offsets[index] or not np.array_equal(
                store.event_ids, self.event_ids[self.offsets[index]:self.offsets[index + 1]]
            ):
                raise StoreError("the store's event ids changed since the fileset was planned", path=store.path)
            self._open[index] = store
        return self._open[index]

    def _check_distinct_ids(self) -> None:
        ids, first = np.unique(self.event_ids, return_index=True)
        if len(ids) == len(self.event_ids):
            return
        repeated = np.setdiff1d(np.arange(len(self.event_ids)), first)[0]
        event = int(self.event_ids[repeated])
        where = [self.files[self.file_of(int(e))] for e in np.flatnonzero(self.event_ids == event)[:2]]
        raise StoreError(f"event id {event} is in {where[0]} and in {where[1]}; event ids must be distinct across a "
                         "fileset (simulate each file with its own --first-event)")

    @property
    def collections(self) -> list[str]:
        return list(self._open[0].collections)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._open[0].metadata

    @property
    def n_events(self) -> int:
        return int(self.offsets[-1])

    def file_of(self, entry: int) -> int:
        """Index (in ``stores``) of the file holding fileset entry ``entry``."""
        return int(np.searchsorted(self.offsets, entry, side="right") - 1)

    def segments(self) -> list[tuple[str, int, int]]:
        """(path, first fileset entry, number of entries) per readable file, in order."""
        return [(path, int(self.offsets[i]), int(self.offsets[i + 1] - self.offsets[i]))
                for i, path in enumerate(self.files)]

    def read(self, start: int, stop: int, *, collections: list[str]) -> list[Event]:
        """Events of fileset entries start..stop-1 (which may span files)."""
        events: list[Event] = []
        while start < stop:
            i = self.file_of(start)
            end = min(stop, int(self.offsets[i + 1]))
            local = start - int(self.offsets[i])
            events += self.store(i).read(local, local + end - start, collections=collections)
            start = end
        return events
