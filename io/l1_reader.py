"""L1Reader: the Level-1 trigger objects of each crossing (and, in L1 data sets, its process).

Reads ROOT stores made by ``recotrig simulate`` (tree ``l1``) or ``recotrig simulate-l1`` (trees
``l1`` and ``crossing``), in chunks of entries like HitReader. A store without L1 objects fails
before any event runs, naming the file; an object with NaN or infinite pT, eta or phi fails its
event, naming the file, the event and the column (or is skipped and counted under
``--error-policy skip``).
"""

from __future__ import annotations

import numpy as np

from recotrig.edm import CrossingInfo, L1Objects
from recotrig.framework import Option
from recotrig.io.errors import StoreError
from recotrig.io.fileset_reader import FilesetReader


class L1Reader(FilesetReader):
    """Reads L1Objects (+ CrossingInfo where the store has it)."""

    outputs = ("l1", "crossing")
    input = Option("", "event store(s) with L1 objects: a ROOT file, a glob, a comma list or a .txt list", role="input")

    SOURCES = {"l1": "l1", "crossing": "crossing"}
    REQUIRED = ("l1", "L1 objects (tree 'l1')")

    def _format(self) -> str | None:
        return "root"

    def read(self, entry: int) -> tuple[L1Objects, CrossingInfo | None]:
        event, path = self._event(entry)
        objects = event["l1"]
        for column in ("pt", "eta", "phi"):
            values = np.asarray(objects[column])
            bad = np.flatnonzero(~np.isfinite(values))
            if len(bad):
                raise StoreError(
                    f"L1 object {int(bad[0])} has {column} = {values[bad[0]]}",
                    path=path,
                    event=self.event_id(entry),
                    tree="l1",
                    column=column,
                )
        if (np.asarray(objects["pt"]) < 0).any():
            row = int(np.flatnonzero(np.asarray(objects["pt"]) < 0)[0])
            raise StoreError(
                f"L1 object {row} has a negative pT", path=path, event=self.event_id(entry), tree="l1", column="pt"
            )
        return objects, event.get("crossing")
