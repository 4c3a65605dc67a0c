"""Filesets: many event stores of one format read as one sequence of entries.

``--input`` may name one store, a glob (``'events/*.root'``, sorted), a comma-separated list, or a
text file (``*.txt``) with one path per line; any other path that exists is taken as it is, and
several paths, one per line (a repeated ``--input``), each literally (``SPEC_HELP``). The files
keep the order given (a glob: sorted by name), and entry ``i`` of the fileset is entry
``i - offset`` of the file that holds it, so ``-n``/``--skip`` count across the fileset and every
output is in one fixed order whatever the executor. An event is identified by (run, event)
(``recotrig.framework.identity.EventKey``; a store that records no run is run 0), and each must
be distinct within a file and across the fileset: a repeated (run, event) is refused, naming the
file(s) and both entries. Stores simulated with different seeds (so different runs) may all
number their events from 0 and still read together.

A file that cannot be opened is refused with its name, or, with ``skip_bad=True``, left out and
recorded in ``bad`` as (file, reason).

Planning is cheap: beyond the first store (opened in full: its collections and metadata describe
the fileset), a recotrig ROOT file is indexed from one tree's ``event_id`` and ``run_number``
branches, and opened in
full only where (and when) its events are read — in the worker that reads them. A file that
indexes but turns out damaged or different fails there, naming the file.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.framework.identity import EventKey, first_repeat
from recotrig.io.base import Event, Store
from recotrig.io.errors import StoreError
from recotrig.io.rootstore import RUN_BRANCH, TITLE_PREFIX, is_root_file
from recotrig.io.roottree import wrapped
from recotrig.io.store import detect_format, open_store

__all__ = ["Fileset", "expand"]

_GLOB = set("*?[")
#: in a list file, ``#`` at the start of a line or after a blank starts a comment (``ev#1.root`` is a name)
_COMMENT = re.compile(r"(^|\s)#.*")
#: how a fileset spec is split, for ``--help``
SPEC_HELP = (
    "Given once: a .txt file lists one path per line (relative to its folder; '#' at the start of a line "
    "or after a blank starts a comment); any other path that exists is taken as it is (a,b.root and "
    "ev[1].root are names); else a glob ('ev/*.root', sorted) or a comma-separated list. Given several "
    "times, each value is one path, taken literally: no glob, no comma split, no list file."
)


def expand(spec: str | Sequence[str]) -> list[str]:
    """The paths a fileset spec names, in order; ``StoreError`` naming what does not exist.

    A sequence of paths, or a string of several lines (what a repeated ``--input`` gives), names
    each path literally. A single string is a ``.txt`` list file, else a path that exists, else
    a glob, else a comma-separated list (``SPEC_HELP``)."""
    if not isinstance(spec, str):
        items = [str(s) for s in spec]
    elif "\n" in spec:
        items = [line for line in spec.split("\n") if line]
    elif spec.endswith(".txt") and os.path.isfile(spec):
        items = _list_file(spec)
    elif os.path.exists(spec):
        items = [spec]
    elif _GLOB & set(spec):
        items = sorted(glob.glob(spec))
        if not items:
            raise StoreError(f"the pattern {spec!r} matches no file")
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


def _list_file(path: str) -> list[str]:
    """The paths a list file names, one per line, relative to its folder; comments left out."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise StoreError(f"cannot read the file list: {err}", path=path) from None
    base = Path(path).parent
    items = []
    for line in lines:
        line = _COMMENT.sub("", line).strip()
        if line:
            items.append(line if os.path.isabs(line) else os.fspath(base / line))
    if not items:
        raise StoreError("the file list names no store", path=path)
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
        runs: list[np.ndarray] = []
        for path in self.paths:
            try:
                if not self._open:  # the first readable store, in full
                    store = open_store(path, format=format)
                    self._open[0] = store
                    self.format = store.format
                    found = store.event_ids, store.runs
                else:
                    found = self._index(path)
            except StoreError as err:
                if not skip_bad:
                    raise
                self.bad.append((path, str(err)))
                continue
            self.files.append(path)
            ids.append(np.asarray(found[0], dtype=np.int64))
            runs.append(np.asarray(found[1], dtype=np.int64))
        if not self.files:
            raise StoreError("no readable store in the fileset" + (f": {self.bad}" if self.bad else ""))
        counts = np.asarray([len(i) for i in ids], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.event_ids = np.concatenate(ids)
        #: run number of each fileset entry (0 for stores that record none)
        self.runs = np.concatenate(runs)
        self._check_distinct_keys()

    def key(self, entry: int) -> EventKey:
        """The (run, event) of fileset entry ``entry``."""
        return EventKey(int(self.runs[entry]), int(self.event_ids[entry]))

    def _index(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        """Event ids and run numbers of a store after the first: from one tree of a recotrig ROOT
        file, else by opening it in full."""
        if self.format != "root" or detect_format(path) != "root":
            store = self._checked(len(self._open), open_store(path, format=self.format))
            return store.event_ids, store.runs
        import uproot

        if not is_root_file(path):
            raise StoreError("not a ROOT file (it does not start with 'root')", path=path)
        with wrapped("cannot open as a ROOT file (truncated or damaged?)", path=path), uproot.open(path) as file:
            trees = [k for k, c in file.classnames(cycle=False).items() if c == "TTree" and "/" not in k]
            name = "hits" if "hits" in trees else (trees[0] if trees else None)
            tree = file[name] if name is not None else None
            if tree is None or not (tree.title or "").startswith(TITLE_PREFIX) or "event_id" not in tree:
                store = self._checked(len(self._open), open_store(path, format=self.format))
                return store.event_ids, store.runs
            ids = tree["event_id"].array(library="np")
            runs = tree[RUN_BRANCH].array(library="np") if RUN_BRANCH in tree else np.zeros(len(ids), np.int64)
            if len(runs) != len(ids):
                raise StoreError(
                    f"{len(runs)} run numbers for {len(ids)} event ids", path=path, tree=name, column=RUN_BRANCH
                )
            return ids, runs

    def _checked(self, index: int, store: Store) -> Store:
        first = self._open[0]
        if store.format != first.format:
            raise StoreError(
                f"a fileset holds stores of one format; this is {store.format}, {first.path} is {first.format}",
                path=store.path,
            )
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
            planned = slice(int(self.offsets[index]), int(self.offsets[index + 1]))
            same = (
                len(store.event_ids) == planned.stop - planned.start
                and np.array_equal(store.event_ids, self.event_ids[planned])
                and np.array_equal(store.runs, self.runs[planned])
            )
            if not same:
                raise StoreError(
                    "the store's event ids or run numbers changed since the fileset was planned", path=store.path
                )
            self._open[index] = store
        return self._open[index]

    def _check_distinct_keys(self) -> None:
        """Refuse a (run, event) held twice, within one file or across files, naming the file(s)
        and both entries (entries counted within each file)."""
        repeat = first_repeat(self.runs, self.event_ids)
        if repeat is None:
            return
        what = self.key(repeat[1]).label("event id")
        (fa, ea), (fb, eb) = ((self.file_of(e), e - int(self.offsets[self.file_of(e)])) for e in repeat)
        rule = "each (run, event) must be distinct within a file and across a fileset"
        if fa == fb:
            raise StoreError(f"{what} is in this file twice (entries {ea} and {eb}); {rule}", path=self.files[fa])
        raise StoreError(
            f"{what} is in {self.files[fa]} and in {self.files[fb]} (entries {ea} and {eb}); {rule} "
            "(simulate each file with its own --run, or --first-event)"
        )

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
        return [
            (path, int(self.offsets[i]), int(self.offsets[i + 1] - self.offsets[i]))
            for i, path in enumerate(self.files)
        ]

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
