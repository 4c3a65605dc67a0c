"""L1Reader: the Level-1 trigger objects of each crossing (and, in L1 data sets, its process).

Reads ROOT stores made by ``recotrig simulate`` (tree ``l1``) or ``recotrig simulate-l1`` (trees
``l1`` and ``crossing``), in chunks of entries like HitReader. A store without L1 objects fails
before any event runs, naming the file; an object with NaN or infinite pT, eta or phi fails its
event, naming the file, the event and the column (or is skipped and counted under
``--error-policy skip``).
"""

from __future__ import annotations

import numpy as np

from ..edm import CrossingInfo, L1Objects
from ..framework import Option, Reader
from .errors import StoreError
from .fileset import Fileset


class L1Reader(Reader):
    """Reads L1Objects (+ CrossingInfo where the store has it)."""

    outputs = ("l1", "crossing")
    input = Option("", "event store(s) with L1 objects: a ROOT file, a glob, a comma list or a .txt list",
                   role="input")
    skip_bad_files = Option(False, "leave out (and record) files of the fileset that cannot be opened")

    SOURCES = {"l1": "l1", "crossing": "crossing"}

    def _store(self) -> Fileset:
        if getattr(self, "_open", None) is None:
            if not self.input:
                raise StoreError("L1Reader: no input store given (--input or L1Reader.input)")
            self._open = Fileset(self.input, format="root", skip_bad=self.skip_bad_files)
            self._cache: dict[int, dict] = {}
            if "l1" not in self._open.collections:
                first = self._open.segments()[0][0] if self._open.segments() else self.input
                raise StoreError(f"the store has no L1 objects (tree 'l1'); it has {self._open.collections}",
                                 path=first)
            self._wanted = [c for c in self.SOURCES.values() if c in self._open.collections]
        return self._open

    def provides(self) -> set[str]:
        held = set(self._store().collections)
        return {out for out, collection in self.SOURCES.items() if collection in held}

    def absent(self) -> dict[str, str]:
        return {out: f"{self.name}'s store {self.input} does not hold (it has {self._store().collections})"
                for out in self.SOURCES if out not in self.provides()}

    def n_events(self) -> int:
        return self._store().n_events

    def segments(self) -> list[tuple[str, int, int]]:
        return self._store().segments()

    def bad_inputs(self) -> list[tuple[str, str]]:
        return list(self._store().bad)

    def files(self) -> dict[str, list[str]]:
        return {"input": [path for path, _, _ in self.segments()]} if self.input else {}

    def event_id(self, entry: int) -> int:
        return int(self._store().event_ids[entry])

    def prepare(self, start: int, stop: int) -> None:
        self._cache = dict(zip(range(start, stop), self._store().read(start, stop, collections=self._wanted)))

    def read(self, entry: int) -> tuple[L1Objects, CrossingInfo | None]:
        store = self._store()
        event = self._cache.pop(entry, None)
        if event is None:
            event = store.read(entry, entry + 1, collections=self._wanted)[0]
        objects = event["l1"]
        path = store.files[store.file_of(entry)]
        for column in ("pt", "eta", "phi"):
            values = np.asarray(objects[column])
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                raise StoreError(f"L1 object {int(bad[0])} has {column} = {values[bad[0]]}", path=path,
                                 event=self.event_id(entry), tree="l1", column=column)
        if (np.asarray(objects["pt"]) < 0).any():
            row = int(np.flatnonzero(np.asarray(objects["pt"]) < 0)[0])
            raise StoreError(f"L1 object {row} has a negative pT", path=path, event=self.event_id(entry), tree="l1",
                             column="pt")
        return objects, event.get("crossing")
