"""TrackML CSV event stores: a directory of per-event CSV files (plain or gzipped).

Layout (one set of files per event, ``<9d>`` the zero-padded event id; each file may also be
``.csv.gz``)::

    event<9d>-hits.csv          hit_id,x,y,z,volume_id,layer_id,module_id        (TrackML)
    event<9d>-cells.csv         hit_id,ch0,ch1,value                            (TrackML)
    event<9d>-particles.csv     particle_id,vx,vy,vz,px,py,pz,q,nhits[,vt,pdg,vertex_id,mass,energy]
    event<9d>-truth.csv         hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight[,tt]
    event<9d>-measurements.csv  hit_id[,t,geometry_id,loc0,loc1,var_loc0,var_loc1]   (recotrig)
    event<9d>-vertices.csv      vertex_id,x,y,z[,t,n_charged,n_reconstructable,is_hard_scatter] (recotrig)
    metadata.json               store metadata (optional, a JSON object); its ``run_number`` is
                                the run of every event of the store (absent: run 0), read as the
                                store's ``runs``, not as metadata

The first four are the Kaggle TrackML challenge files with their official columns (a challenge
store reads unchanged; its test set has hits only). recotrig's extra per-hit columns go to the
``measurements`` file, joined to the hits by ``hit_id``; extra particle and truth columns are
extra CSV columns (TrackML readers ignore them). Unknown columns and files are ignored. Event ids
come from the file names, so a store holds each id once and one run (``run_number`` in
``metadata.json``; a store of several runs is one directory per run, read together as a
fileset). The collections are ``hits`` (hits + measurements), ``cells``, ``particles``,
``truth`` (``HitTruth``; ``weight`` only if the file has it) and ``vertices``
(``TruthVertices``). Floats are written in the shortest form that reads back bit-identical.

Parsing and writing use pyarrow's CSV engine (C++, typed columns).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.edm import Cells, Collection, Hits, HitTruth, Particles, TruthVertices
from recotrig.framework.files import carry_over, commit, discard, temporary_path
from recotrig.framework.identity import EventKey
from recotrig.framework.lookup import DuplicateIdError, index_of
from recotrig.io.base import Event, Store, Writer
from recotrig.io.errors import StoreError

__all__ = ["EVENT_FILE", "HITS_FILE_COLUMNS", "TrackMLStore", "TrackMLWriter", "is_trackml_dir"]

#: file names of the layout: event<digits>-<kind>.csv[.gz]
EVENT_FILE = re.compile(
    r"^event(?P<event>\d+)-(?P<kind>hits|cells|particles|truth|measurements|vertices)\.csv(?P<gz>\.gz)?$"
)
#: columns of the official hits file; the other Hits columns go to the measurements file
HITS_FILE_COLUMNS = ("hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id")
METADATA_FILE = "metadata.json"
#: the metadata key holding the store's run number
RUN_KEY = "run_number"

#: collection -> (file kind, container type)
_COLLECTION_FILES: dict[str, tuple[str, type[Collection]]] = {
    "hits": ("hits", Hits),
    "cells": ("cells", Cells),
    "particles": ("particles", Particles),
    "truth": ("truth", HitTruth),
    "vertices": ("vertices", TruthVertices),
}
_ORDER = list(_COLLECTION_FILES)


def _specs(cls: type[Collection]) -> dict[str, np.dtype]:
    return {name: spec.dtype for name, spec in cls._specs.items() if not spec.jagged and not spec.shape}


def is_trackml_dir(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a directory holding at least one ``event*-hits.csv[.gz]``."""
    path = Path(path)
    if not path.is_dir():
        return False
    with os.scandir(path) as entries:
        return any((m := EVENT_FILE.match(e.name)) and m["kind"] == "hits" for e in entries)


# ------------------------------------------------------------------------------------------------
# parsing one file


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):  # utf-8-sig: a byte-order mark is not part of the first column's name
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _header(path: Path, *, event: int) -> list[str]:
    try:
        with _open_text(path) as stream:
            line = stream.readline()
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise StoreError(f"cannot read the header: {err}", path=path, event=event) from None
    if not line.strip():
        raise StoreError("the file is empty (no header line)", path=path, event=event)
    return [name.strip().strip('"') for name in line.rstrip("\r\n").split(",")]


def _arrow_type(dtype: np.dtype) -> Any:
    import pyarrow as pa

    return pa.bool_() if dtype == np.bool_ else pa.from_numpy_dtype(dtype)


def read_csv_columns(
    path: Path,
    spec: Mapping[str, np.dtype],
    *,
    required: list[str],
    event: int,
    threads: bool = False,
) -> dict[str, np.ndarray]:
    """The columns of ``path`` named in ``spec`` (others ignored), typed; ``required`` must exist."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    header = _header(path, event=event)
    missing = [c for c in required if c not in header]
    if missing:
        raise StoreError(
            f"missing column(s) {missing}; the file has {header}", path=path, event=event, column=missing[0]
        )
    wanted = [c for c in spec if c in header]
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(use_threads=threads),
            convert_options=pcsv.ConvertOptions(
                column_types={c: _arrow_type(spec[c]) for c in wanted},
                include_columns=wanted,
            ),
        )
    except (pa.ArrowException, OSError, EOFError, ValueError) as err:
        _diagnose(path, header, {c: spec[c] for c in wanted}, event=event)
        raise StoreError(f"cannot parse: {err}", path=path, event=event) from None
    out: dict[str, np.ndarray] = {}
    for name in wanted:
        column = table.column(name)
        if column.null_count and spec[name].kind != "f":
            row = pc.index(pc.is_null(column), True).as_py()
            raise StoreError("missing value (empty or NA)", path=path, event=event, column=name, row=row)
        array = column.to_numpy()
        out[name] = array if array.dtype == spec[name] else array.astype(spec[name])
    return out


def _diagnose(path: Path, header: list[str], spec: Mapping[str, np.dtype], *, event: int) -> None:
    """Find the first row that cannot be parsed and raise a StoreError naming it (slow, error path)."""
    index = {name: header.index(name) for name in spec}
    try:
        with _open_text(path) as stream:
            reader = csv.reader(stream)
            next(reader, None)
            for row, fields in enumerate(reader):
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise StoreError(
                        f"line {row + 2} has {len(fields)} fields, the header has {len(header)}",
                        path=path,
                        event=event,
                        row=row,
                    )
                for name, dtype in spec.items():
                    text = fields[index[name]].strip()
                    if not _parses(text, dtype):
                        what = "an integer" if dtype.kind in "iu" else "a boolean" if dtype.kind == "b" else "a number"
                        raise StoreError(
                            f"value {text!r} (line {row + 2}) is not {what}",
                            path=path,
                            event=event,
                            column=name,
                            row=row,
                        )
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as err:
        raise StoreError(f"cannot read (truncated or corrupt?): {err}", path=path, event=event) from None


def _parses(text: str, dtype: np.dtype) -> bool:
    if dtype.kind == "f":
        if text in ("", "NA", "N/A", "NULL", "null", "NaN", "nan", "-nan", "-NaN"):
            return True
        try:
            float(text)
        except ValueError:
            return False
        return True
    if dtype.kind == "b":
        return text in ("0", "1", "true", "false", "True", "False", "TRUE", "FALSE")
    try:
        value = int(text)
    except ValueError:
        return False
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


# ------------------------------------------------------------------------------------------------
# the store


class TrackMLStore(Store):
    """A TrackML-layout directory. ``threads`` lets pyarrow parse one file on several cores."""

    format = "trackml"

    def __init__(self, path: str | os.PathLike[str], *, threads: bool = False):
        super().__init__(path)
        self.threads = threads
        if not self.path.is_dir():
            raise StoreError("not a directory (a TrackML store is a directory of event*-hits.csv files)", path=path)
        files: dict[str, dict[int, Path]] = {}
        with os.scandir(self.path) as entries:
            for entry in entries:
                match = EVENT_FILE.match(entry.name)
                if match is None:
                    continue
                by_event = files.setdefault(match["kind"], {})
                event = int(match["event"])
                if event > np.iinfo(np.int64).max:
                    raise StoreError(
                        f"the event number {event} in the file name does not fit a 64-bit event id", path=entry.path
                    )
                if event in by_event:  # event0-hits.csv beside event000000000-hits.csv, or .csv beside .csv.gz
                    first, second = sorted([by_event[event].name, entry.name])
                    raise StoreError(
                        f"two {match['kind']} files for event {event}: {first} and {second}; remove one",
                        path=self.path,
                        event=event,
                    )
                by_event[event] = Path(entry.path)
        if not files:
            raise StoreError("no event*-<kind>.csv[.gz] files in this directory", path=path)
        self._files = files
        ids = sorted(set().union(*(set(by_event) for by_event in files.values())))
        self._event_ids = np.asarray(ids, dtype=np.int64)
        self._collections = [name for name in _ORDER if _COLLECTION_FILES[name][0] in files]
        if "measurements" in files and "hits" not in self._collections:
            self._collections.insert(0, "hits")
        self._metadata: dict[str, Any] | None = None
        self._run = 0

    @property
    def event_ids(self) -> np.ndarray:
        return self._event_ids

    @property
    def collections(self) -> list[str]:
        return list(self._collections)

    @property
    def metadata(self) -> dict[str, Any]:
        """The store's metadata; its ``run_number`` is not part of it but the events' run (``runs``)."""
        if self._metadata is None:
            metadata = _read_metadata(self.path / METADATA_FILE)
            run = metadata.pop(RUN_KEY, 0)
            if isinstance(run, bool) or not isinstance(run, int) or run < 0:
                raise StoreError(
                    f"{RUN_KEY!r} must be a non-negative integer, got {run!r}", path=self.path / METADATA_FILE
                )
            self._run, self._metadata = run, metadata
        return self._metadata

    @property
    def runs(self) -> np.ndarray:
        _ = self.metadata  # reads the run
        return np.full(self.n_events, self._run, dtype=np.int64)

    def file(self, kind: str, event: int) -> Path:
        """The file of ``kind`` (hits, cells, particles, truth, measurements, vertices) for an event."""
        by_event = self._files.get(kind, {})
        try:
            return by_event[event]
        except KeyError:
            expected = self.path / f"event{event:09d}-{kind}.csv"
            raise StoreError(
                f"{kind} file missing for this event (expected {expected.name}[.gz]); "
                f"{len(by_event)} of {self.n_events} events have one",
                path=expected,
                event=event,
            ) from None

    def _read(self, start: int, stop: int, names: list[str]) -> list[Event]:
        return [
            {name: self._read_collection(name, int(event)) for name in names} for event in self._event_ids[start:stop]
        ]

    def _read_collection(self, name: str, event: int) -> Collection:
        kind, cls = _COLLECTION_FILES[name]
        spec = _specs(cls)
        if name == "hits":
            return self._read_hits(event, spec)
        path = self.file(kind, event)
        columns = read_csv_columns(path, spec, required=list(cls.columns), event=event, threads=self.threads)
        return self._build(cls, columns, path, event)

    def _read_hits(self, event: int, spec: dict[str, np.dtype]) -> Hits:
        path = self.file("hits", event)
        columns = read_csv_columns(path, spec, required=list(Hits.columns), event=event, threads=self.threads)
        if "measurements" in self._files:
            extra_path = self.file("measurements", event)
            extra_spec = {c: t for c, t in spec.items() if c == "hit_id" or c not in columns}
            extra = read_csv_columns(extra_path, extra_spec, required=["hit_id"], event=event, threads=self.threads)
            order = _align(columns["hit_id"], extra.pop("hit_id"), path=extra_path, event=event)
            for column, values in extra.items():
                columns[column] = values if order is None else values[order]
        return self._build(Hits, columns, path, event)

    @staticmethod
    def _build(cls: type[Collection], columns: dict[str, np.ndarray], path: Path, event: int) -> Collection:
        try:
            return cls({name: columns[name] for name in cls._specs if name in columns})
        except ValueError as err:
            raise StoreError(str(err), path=path, event=event) from None

    def info(self) -> dict[str, Any]:
        out = self._info_head()
        sample = [int(e) for e in self._event_ids[:5]]
        collections: dict[str, Any] = {}
        for name in self._collections:
            kinds = [_COLLECTION_FILES[name][0]] + (["measurements"] if name == "hits" else [])
            paths = [p for k in kinds for p in self._files.get(k, {}).values()]
            first = self._files.get(kinds[0], {})
            rows = [_count_rows(first[e]) for e in sample if e in first]
            header = _header(next(iter(first.values())), event=next(iter(first))) if first else []
            if name == "hits" and "measurements" in self._files:
                some = next(iter(self._files["measurements"].items()))
                header += [c for c in _header(some[1], event=some[0]) if c not in header]
            collections[name] = {
                "type": _COLLECTION_FILES[name][1].__name__,
                "columns": [c for c in header if c in _COLLECTION_FILES[name][1]._specs],
                "files": len(paths),
                "bytes": sum(p.stat().st_size for p in paths),
                "rows_per_event": float(np.mean(rows)) if rows else None,
                "rows_sampled_events": len(rows),
            }
        out["collections"] = collections
        return out


def _align(hit_ids: np.ndarray, extra_ids: np.ndarray, *, path: Path, event: int) -> np.ndarray | None:
    """Indices into the measurements rows in hits order (None when already aligned)."""
    if len(hit_ids) == len(extra_ids) and np.array_equal(hit_ids, extra_ids):
        return None
    try:
        found = index_of(extra_ids, hit_ids)
    except DuplicateIdError as err:
        raise StoreError(f"column 'hit_id' has {err}", path=path, event=event, column="hit_id") from None
    bad = np.flatnonzero(found < 0)
    if len(bad):
        raise StoreError(
            f"hit_id {int(hit_ids[bad[0]])} of the hits file has no row here ({len(bad)} hits missing)",
            path=path,
            event=event,
            column="hit_id",
        )
    return found


def _count_rows(path: Path) -> int:
    with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as stream:
        lines = 0
        last = b"\n"
        while block := stream.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines - 1 + (last != b"\n")


def _read_metadata(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise StoreError(f"cannot read the metadata: {err}", path=path) from None
    if not isinstance(value, dict):
        raise StoreError("the metadata is not a JSON object", path=path)
    return value


# ------------------------------------------------------------------------------------------------
# writing


class TrackMLWriter(Writer):
    """Writes events in the TrackML layout.

    Files are written into a hidden temporary directory beside ``path``; ``close()`` puts it in
    place in one step (``framework.files.commit``; over an existing ``path`` the other files it
    holds are carried into the new directory first), so a run that fails or is interrupted leaves
    ``path`` as it was. ``compress`` writes
    ``.csv.gz`` (gzip level ``compress_level``). A directory that already holds a store is
    refused unless ``overwrite``; its event files are then replaced at ``close()``.
    ``metadata.json`` is written when there is metadata.
    """

    format = "trackml"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metadata: Mapping[str, Any] | None = None,
        compress: bool = False,
        compress_level: int = 1,
        overwrite: bool = False,
    ):
        super().__init__(path, metadata=metadata)
        self.compress = compress
        self.compress_level = compress_level
        if self.path.exists() and not self.path.is_dir():
            raise StoreError("exists and is not a directory", path=self.path)
        if self.path.is_dir() and _layout_files(self.path) and not overwrite:
            raise StoreError(
                "the directory already holds a store; pass overwrite=True or choose another", path=self.path
            )
        self._temp = temporary_path(self.path)
        self._run: int | None = None  # the store's one run, fixed by the first event
        try:
            self._temp.mkdir(parents=True)
        except OSError as err:
            raise StoreError(f"cannot create: {err}", path=self.path) from None

    def _append(self, key: EventKey, collections: dict[str, Collection]) -> None:
        event_id = key.event
        if self._run is not None and key.run != self._run:
            raise StoreError(
                f"a TrackML store holds one run: this event is of run {key.run}, the store's of run "
                f"{self._run}; write each run to its own store (or use the ROOT format)",
                path=self.path,
                event=event_id,
            )
        for name, collection in collections.items():
            if name not in _COLLECTION_FILES:
                raise StoreError(
                    f"the TrackML layout has no file for collection {name!r} ({type(collection).__name__}); "
                    f"it stores {_ORDER}; use the ROOT format for others",
                    path=self.path,
                    event=event_id,
                )
            cls = _COLLECTION_FILES[name][1]
            if type(collection) is not cls:
                raise StoreError(
                    f"collection {name!r} must be {cls.__name__}, got {type(collection).__name__}",
                    path=self.path,
                    event=event_id,
                )
        for name, collection in collections.items():
            arrays = collection.to_arrays()
            order = [c for c in type(collection)._specs if c in arrays]
            if name == "hits":
                self._write(event_id, "hits", {c: arrays[c] for c in order if c in HITS_FILE_COLUMNS})
                extra = [c for c in order if c not in HITS_FILE_COLUMNS]
                if extra:
                    self._write(event_id, "measurements", {c: arrays[c] for c in ["hit_id", *extra]})
            else:
                self._write(event_id, _COLLECTION_FILES[name][0], {c: arrays[c] for c in order})
        self._run = key.run

    def _write(self, event_id: int, kind: str, columns: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        name = f"event{event_id:09d}-{kind}.csv{'.gz' if self.compress else ''}"
        target = self._temp / name
        table = pa.table({c: (v.astype(np.uint8) if v.dtype == np.bool_ else v) for c, v in columns.items()})
        options = pcsv.WriteOptions(quoting_style="none", quoting_header="none")
        try:
            if self.compress:
                with (
                    open(target, "wb") as raw,
                    gzip.GzipFile(
                        filename="", mode="wb", fileobj=raw, compresslevel=self.compress_level, mtime=0
                    ) as sink,
                ):
                    pcsv.write_csv(table, sink, options)
            else:
                pcsv.write_csv(table, str(target), options)
        except (OSError, pa.ArrowException) as err:
            raise StoreError(f"cannot write: {err}", path=self.path / name, event=event_id) from None

    def _finish(self) -> None:
        self.metadata.pop(RUN_KEY, None)  # the run is the events', not the caller's
        if self._run:
            self.metadata[RUN_KEY] = self._run
        try:
            if self.metadata:
                text = json.dumps(self.metadata, indent=1, sort_keys=True) + "\n"
                (self._temp / METADATA_FILE).write_text(text, encoding="utf-8")
            if self.path.is_dir():  # overwrite=True: the files that are not the store's stay
                carry_over(self.path, self._temp, leave=[p.name for p in _layout_files(self.path)])
            commit(self._temp, self.path)  # the whole directory in one step
        except (OSError, TypeError, ValueError) as err:
            raise StoreError(f"cannot finish the store: {err}", path=self.path) from None

    def _discard(self) -> None:
        discard(self._temp)


def _layout_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if EVENT_FILE.match(p.name) or p.name == METADATA_FILE]
