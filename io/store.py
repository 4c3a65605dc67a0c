"""Opening and writing event stores of any format through one interface.

    >>> store = open_store("events/")                 # TrackML CSV directory, or a .root file
    >>> store.n_events, store.collections, store.metadata
    >>> events = store.read(10, 20, collections=["hits", "truth"])   # entries 10..19
    >>> events[0]["hits"].x
    >>> write_store("out.root", events, format="root", event_ids=store.event_ids[10:20])

Formats: ``trackml`` (:mod:`recotrig.io.trackml`) and ``root`` (:mod:`recotrig.io.rootstore`,
which also reads ACTS's particle and sim-hit trees, :mod:`recotrig.io.actsroot`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from recotrig.edm import Cells
from recotrig.framework.collection import Collection
from recotrig.io.base import STANDARD_COLLECTIONS, Event, Store, Writer
from recotrig.io.errors import StoreError
from recotrig.io.rootstore import RootStore, RootWriter, is_root_file, read_root_metadata
from recotrig.io.trackml import TrackMLStore, TrackMLWriter, is_trackml_dir

__all__ = [
    "FORMATS",
    "STANDARD_COLLECTIONS",
    "Cells",
    "Event",
    "Store",
    "StoreError",
    "Writer",
    "detect_format",
    "open_store",
    "open_writer",
    "read_metadata",
    "write_store",
]

FORMATS: dict[str, tuple[type[Store], type[Writer]]] = {
    "trackml": (TrackMLStore, TrackMLWriter),
    "root": (RootStore, RootWriter),
}


def detect_format(path: str | os.PathLike[str]) -> str:
    """``trackml`` for a directory of ``event*-hits.csv[.gz]``, ``root`` for a ROOT file."""
    path = Path(path)
    if not path.exists():
        raise StoreError("no such file or directory", path=path)
    if path.is_dir():
        if is_trackml_dir(path):
            return "trackml"
        raise StoreError("directory holds no TrackML event files (event<id>-hits.csv[.gz])", path=path)
    if is_root_file(path) or path.suffix == ".root":
        return "root"
    raise StoreError("not a store: neither a TrackML directory nor a ROOT file", path=path)


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ValueError(f"unknown store format {format!r}; known: {sorted(FORMATS)}")
    return format


def open_store(path: str | os.PathLike[str], *, format: str | None = None, **options: Any) -> Store:
    """Open an event store, detecting its format unless ``format`` is given.

    ``options`` go to the format's store class (``threads=True`` for TrackML).
    """
    format = detect_format(path) if format is None else _check_format(format)
    return FORMATS[format][0](path, **options)


def read_metadata(path: str | os.PathLike[str], *, format: str | None = None) -> dict[str, Any]:
    """A store's metadata alone (how it was made: generator, detector, field), reading no event
    data: what sequences consult at configuration time (``--help`` and ``--dry-run`` included)."""
    format = detect_format(path) if format is None else _check_format(format)
    if format == "root":
        return read_root_metadata(path)
    return TrackMLStore(path).metadata


def open_writer(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    **options: Any,
) -> Writer:
    """A writer for a new store; ``format`` defaults to ``root`` for ``*.root``, else ``trackml``.

    ``options`` go to the writer class (``compression=``, ``chunk_rows=`` for ROOT;
    ``compress=``, ``overwrite=`` for TrackML).
    """
    if format is None:
        format = "root" if Path(path).suffix == ".root" else "trackml"
    return FORMATS[_check_format(format)][1](path, metadata=metadata, **options)


def write_store(
    path: str | os.PathLike[str],
    events: Iterable[Mapping[str, Collection]],
    *,
    format: str | None = None,
    event_ids: Iterable[int] | None = None,
    run: int = 0,
    metadata: Mapping[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Write ``events`` (dicts of collections) as a new store and return its path.

    ``event_ids`` default to 0, 1, 2, …, all of run ``run``; the store appears under ``path``
    only once complete.
    """
    ids = iter(event_ids) if event_ids is not None else None
    with open_writer(path, format=format, metadata=metadata, **options) as writer:
        for number, event in enumerate(events):
            if ids is None:
                event_id = number
            else:
                try:
                    event_id = next(ids)
                except StopIteration:
                    raise StoreError(f"fewer event ids than events ({number})", path=path) from None
            writer.append(event_id, event, run=run)
    return writer.path
