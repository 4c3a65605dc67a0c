"""FilesetReader: what every reader of an event-store fileset shares (HitReader, L1Reader).

The fileset is opened lazily, once per process (workers reopen it: open files never travel);
``SOURCES`` maps each output to the store collection it is read from, and a store without the
``REQUIRED`` collection is refused before any event runs, naming the input. Entries are read in
chunks (``prepare``), so ``-n/--skip`` map to entry ranges and a large file streams.
"""

from __future__ import annotations

from typing import Any, ClassVar

from recotrig.framework import Option, Reader
from recotrig.framework.identity import EventKey
from recotrig.io.errors import StoreError
from recotrig.io.fileset import Fileset


class FilesetReader(Reader):
    """A reader of the collections ``SOURCES`` names from the fileset ``input``."""

    #: output -> the store collection it is read from
    SOURCES: ClassVar[dict[str, str]] = {}
    #: (store collection, what to call it in the error) a store must hold
    REQUIRED: ClassVar[tuple[str, str]] = ("", "")

    input: Any
    skip_bad_files = Option(False, "leave out (and record) files of the fileset that cannot be opened")

    def _format(self) -> str | None:
        """The store format to force (None: detected)."""
        return None

    def _store(self) -> Fileset:
        if getattr(self, "_open", None) is None:
            if not self.input:
                raise StoreError(
                    f"{type(self).__name__}: no input store given (--input or {type(self).__name__}.input)"
                )
            self._open = Fileset(self.input, format=self._format(), skip_bad=self.skip_bad_files)
            self._cache: dict[int, dict] = {}
            required, what = self.REQUIRED
            if required not in self._open.collections:
                raise StoreError(f"the store has no {what}; it has {self._open.collections}", path=self.input)
            self._wanted = [c for c in dict.fromkeys(self.SOURCES.values()) if c in self._open.collections]
        return self._open

    def __getstate__(self) -> dict:
        return super().__getstate__()  # open files stay behind; workers reopen

    def provides(self) -> set[str]:
        held = set(self._store().collections)
        return {out for out, collection in self.SOURCES.items() if collection in held}

    def absent(self) -> dict[str, str]:
        return {
            out: f"{self.name}'s store {self.input} does not hold (it has {self._store().collections})"
            for out in self.SOURCES
            if out not in self.provides()
        }

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

    def event_key(self, entry: int) -> EventKey:
        return self._store().key(entry)

    def prepare(self, start: int, stop: int) -> None:
        store = self._store()
        try:
            self._cache = dict(zip(range(start, stop), store.read(start, stop, collections=self._wanted)))
        except StoreError as err:
            if err.column is None:  # the file cannot be read (a broken basket): the chunk's input failed
                raise
            self._cache = {}  # a refused value names its event: each event is read on its own, only that one fails

    def _event(self, entry: int) -> tuple[dict, str]:
        """The store collections of ``entry`` (from the prepared chunk when there) and its file."""
        store = self._store()
        event = self._cache.pop(entry, None)
        if event is None:
            event = store.read(entry, entry + 1, collections=self._wanted)[0]
        return event, store.files[store.file_of(entry)]
