"""ROOT event stores, read and written with uproot (never ROOT itself).

recotrig layout: one file, one TTree per collection, **one entry per event** in every tree::

    TTree <name>   title "recotrig:<ContainerType>"   (e.g. hits -> "recotrig:Hits")
      event_id        int64                 the event id (same sequence in every tree)
      run_number      int64                 the event's run (same in every tree; a file written
                                            before runs were recorded has none: run 0)
      n_<name>        int32                 rows of the collection in this event
      <column>        T[n_<name>]           one branch per flat column (x, y, z, hit_id, ...)
      <column>        T[n_<column>]         fixed-shape column (Tracks.cov, (n,6,6)): the n*36
                                            values row-major; the shape comes back from the type
      <column>        T[n_<column>]         jagged column (Tracks.hit_ids): all rows' lists end to end
      <column>_count  int32[n_<name>]       ... and the length of each row's list
    TObjString metadata                     store metadata, a JSON object
    TObjString schema                       per tree: type name, the columns' specs (declared and
                                            extra), relation targets, and the type's declared schema

A tree's type is found by its registered name (``recotrig.framework.collection``); a type that is
not registered in the reading process (defined in a module not imported, or nowhere) is read as a
generic collection built from the recorded schema, so every store stays readable. The standard
trees are ``hits`` (Hits, measurement columns included), ``particles``
(Particles), ``truth`` (HitTruth) and ``vertices`` (TruthVertices); any other Collection type is
written the same way under its own name. A tree without a ``recotrig:`` title but named like a
standard collection is read with that collection's type.

ACTS layouts are recognised by their branches (see ``recotrig.io.actsroot``): the ``particles``
tree of RootParticleWriter and the per-hit tree of RootSimHitWriter.

Reading maps entry ranges to uproot ``entry_start``/``entry_stop``; nothing outside the range is
read. Every branch must hold, entry by entry, the values its counter says (``n_<name>`` rows, times
the shape of a fixed-shape column; a jagged column the sum of its ``_count``): a store where they
disagree is refused (``roottree.check_entries``), never split so that rows move between events.
Values are converted to the columns' dtypes only where no value changes (``Collection``).

Writing buffers events and adds them in chunks (``mktree`` + ``extend``) to a hidden temporary
file that is renamed to the final name at ``close()``; an exception or interrupt in between leaves
nothing under the final name.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from recotrig.framework.collection import Collection, _Column, from_schema, registered_type
from recotrig.framework.files import commit, discard, name_uuids, reproducible_clock, temporary_path
from recotrig.framework.identity import EventKey
from recotrig.io.base import STANDARD_COLLECTIONS, Event, Store, Writer
from recotrig.io.errors import StoreError
from recotrig.io.roottree import TreeSource, build, check_entries, flat_content, offsets_of, wrapped

__all__ = [
    "METADATA_KEY",
    "RUN_BRANCH",
    "SCHEMA_KEY",
    "TITLE_PREFIX",
    "RecotrigTree",
    "RootStore",
    "RootWriter",
    "is_root_file",
]

TITLE_PREFIX = "recotrig:"
#: the per-entry run number beside ``event_id`` (one per event, like EDM4hep's EventHeader.runNumber:
#: it survives merging files of several runs); absent in files written before runs were recorded
RUN_BRANCH = "run_number"
METADATA_KEY = "metadata"
SCHEMA_KEY = "schema"
_COUNT_SUFFIX = "_count"


def counter_name(branch: str) -> str:
    return f"n_{branch}"


def is_root_file(path: str | os.PathLike[str]) -> bool:
    """True if the file starts with ROOT's magic bytes."""
    try:
        with open(path, "rb") as stream:
            return stream.read(4) == b"root"
    except OSError:
        return False


# ------------------------------------------------------------------------------------------------
# the recotrig layout


def branch_names(name: str, type_name: str, specs: dict[str, _Column]) -> dict[str, list[str]]:
    """Branches of a recotrig tree for columns with ``specs``: kind -> names (checked for clashes)."""
    flat, fixed, jagged = [], [], []
    for column, spec in specs.items():
        (jagged if spec.jagged else fixed if spec.shape else flat).append(column)
    every = ["event_id", RUN_BRANCH, counter_name(name), *flat]
    every += [b for c in fixed for b in (c, counter_name(c))]
    every += [b for c in jagged for b in (c, counter_name(c), c + _COUNT_SUFFIX)]
    seen: set[str] = set()
    clash = [b for b in every if b in seen or seen.add(b)]  # type: ignore[func-returns-value]
    if clash:
        raise StoreError(f"collection {name!r} ({type_name}) would need branch {clash[0]!r} twice")
    return {"flat": flat, "fixed": fixed, "jagged": jagged}


class RecotrigTree(TreeSource):
    """A tree in the recotrig layout: one entry per event, one branch per column."""

    layout = "recotrig"

    def __init__(self, *, name: str, cls: type[Collection], recorded: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.name = name
        self.cls = cls
        recorded = recorded or {}
        keys = set(self.tree.keys())
        # the columns' specs: as recorded by the writer, else as the type declares them
        specs = {c: _Column(c, s) for c, s in recorded.get("columns", {}).items()}
        specs.update({c: spec for c, spec in cls._specs.items() if c not in specs})
        present = {c: spec for c, spec in specs.items() if c in keys}
        missing = [c for c in cls.columns if c not in keys]
        needed = [counter_name(name), "event_id"] + [c + _COUNT_SUFFIX for c, sp in present.items() if sp.jagged]
        missing += [b for b in needed if b not in keys]
        if missing:
            raise StoreError(
                f"missing branch(es) {missing} for {cls.type_name}; the tree has {sorted(keys)}",
                path=self.path,
                tree=self.tree_name,
                column=missing[0],
            )
        self._kinds = branch_names(name, cls.type_name, present)
        self._specs = present
        self._present = list(present)
        self._extra = {c: sp.spec for c, sp in present.items() if c not in cls._specs}
        self._targets = dict(recorded.get("targets", {}))
        with wrapped("cannot read the event ids", path=self.path, tree=self.tree_name):
            self._ids = np.asarray(self.tree["event_id"].array(library="np"), dtype=np.int64)
        with wrapped("cannot read the run numbers", path=self.path, tree=self.tree_name):
            self._runs = (
                np.asarray(self.tree[RUN_BRANCH].array(library="np"), dtype=np.int64)
                if RUN_BRANCH in keys
                else np.zeros(len(self._ids), dtype=np.int64)
            )
        if len(self._runs) != len(self._ids):
            raise StoreError(
                f"{len(self._runs)} run numbers for {len(self._ids)} event ids",
                path=self.path,
                tree=self.tree_name,
                column=RUN_BRANCH,
            )

    @property
    def collections(self) -> dict[str, type[Collection]]:
        return {self.name: self.cls}

    @property
    def event_ids(self) -> np.ndarray:
        return self._ids

    @property
    def runs(self) -> np.ndarray:
        return self._runs

    def columns(self, name: str) -> list[str]:
        return list(self._present)

    def rows(self) -> dict[str, int | None]:
        with wrapped("cannot read the counter", path=self.path, tree=self.tree_name):
            return {self.name: int(np.sum(self.tree[counter_name(self.name)].array(library="np")))}

    def read(self, start: int, stop: int, names: list[str], event_ids: np.ndarray) -> dict[str, list[Collection]]:
        kinds = self._kinds
        branches = [counter_name(self.name), *kinds["flat"], *kinds["fixed"]]
        branches += [b for c in kinds["jagged"] for b in (c, c + _COUNT_SUFFIX)]
        data = self.arrays(branches, start, stop, event=int(event_ids[0]))
        counter = counter_name(self.name)
        counts = flat_content(data[counter]).astype(np.int64)
        rows = offsets_of(counts)
        # every branch agrees with the counter entry by entry, or values would move between events
        check = partial(check_entries, path=self.path, tree=self.tree_name, event_ids=event_ids)
        says = f"the counter {counter!r}"
        # column -> (values, per-row list sizes and their offsets for jagged columns)
        columns: dict[str, tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
        with wrapped(f"inconsistent branches in entries {start}..{stop - 1}", path=self.path, tree=self.tree_name):
            for column in kinds["flat"]:
                columns[column] = (check(data[column], counts, says=says, column=column), None, None)
            for column in kinds["fixed"]:
                shape = self._specs[column].shape
                size = int(np.prod(shape))
                content = check(data[column], counts * size, says=f"{says} (x {size} values a row)", column=column)
                columns[column] = (content.reshape(-1, *shape), None, None)
            for column in kinds["jagged"]:
                sizes = check(data[column + _COUNT_SUFFIX], counts, says=says, column=column + _COUNT_SUFFIX)
                inner = offsets_of(sizes)
                content = check(
                    data[column],
                    inner[rows[1:]] - inner[rows[:-1]],
                    says=f"the sum of {column + _COUNT_SUFFIX!r}",
                    column=column,
                )
                columns[column] = (content, sizes, inner)
        events = []
        for i, event in enumerate(event_ids):
            a, b = rows[i], rows[i + 1]
            values: dict[str, Any] = {}
            for column, (content, sizes, inner) in columns.items():
                if sizes is None or inner is None:
                    values[column] = content[a:b]
                else:
                    values[column] = ak.unflatten(content[inner[a] : inner[b]], sizes[a:b])
            events.append(
                build(
                    self.cls,
                    values,
                    path=self.path,
                    tree=self.tree_name,
                    event=int(event),
                    extra=self._extra,
                    targets=self._targets,
                )
            )
        return {self.name: events}


def _read_json(file: Any, key: str, path: Path) -> dict[str, Any]:
    with wrapped(f"cannot read the {key} object", path=path, tree=key):
        text = str(file[key])
    try:
        value = json.loads(text)
    except ValueError as err:
        raise StoreError(f"the {key!r} object is not JSON: {err}", path=path) from None
    if not isinstance(value, dict):
        raise StoreError(f"the {key!r} object is not a JSON object", path=path)
    return value


def read_root_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata object of a ROOT store, without reading any tree."""
    import uproot

    path = Path(path)
    if not is_root_file(path):
        raise StoreError("not a ROOT file (it does not start with 'root')", path=path)
    with wrapped("cannot open as a ROOT file (truncated or damaged?)", path=path):
        file = uproot.open(path)
    with file:
        with wrapped("cannot list the file's contents (truncated or damaged?)", path=path):
            present = METADATA_KEY in file.classnames(cycle=False)
        return _read_json(file, METADATA_KEY, path) if present else {}


# ------------------------------------------------------------------------------------------------
# the store


class RootStore(Store):
    """A ROOT file of recotrig and/or ACTS trees."""

    format = "root"

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__(path)
        if self.path.is_dir():
            raise StoreError("is a directory, not a ROOT file", path=self.path)
        if not self.path.is_file():
            raise StoreError("no such file", path=self.path)
        self._file: Any = None
        self._sources: dict[str, TreeSource] = {}
        self._ignored: list[str] = []
        self._metadata: dict[str, Any] = {}
        self._scan()

    # -- opening ---------------------------------------------------------------------------------
    def _uproot_file(self) -> Any:
        if self._file is None:
            import uproot

            if not is_root_file(self.path):
                raise StoreError("not a ROOT file (it does not start with 'root')", path=self.path)
            with wrapped("cannot open as a ROOT file (truncated or damaged?)", path=self.path):
                # memory-mapped reading is 2x faster than the default fsspec source on local files;
                # no array cache: every chunk is read once
                self._file = uproot.open(self.path, array_cache=None, handler=uproot.source.file.MemmapSource)
        return self._file

    def _get_tree(self, name: str) -> Any:
        with wrapped("cannot read the tree (truncated or damaged file?)", path=self.path, tree=name):
            return self._uproot_file()[name]

    def _scan(self) -> None:
        from recotrig.io import actsroot

        file = self._uproot_file()
        with wrapped("cannot list the file's contents (truncated or damaged?)", path=self.path):
            classes = file.classnames(cycle=False)
        if METADATA_KEY in classes:
            self._metadata = _read_json(file, METADATA_KEY, self.path)
        schema = _read_json(file, SCHEMA_KEY, self.path) if SCHEMA_KEY in classes else {}
        for tree_name, classname in classes.items():
            if classname != "TTree" or "/" in tree_name:
                continue
            kwargs = {"path": self.path, "tree_name": tree_name, "tree_getter": partial(self._get_tree, tree_name)}
            tree = kwargs["tree_getter"]()
            with wrapped("cannot read the tree header", path=self.path, tree=tree_name):
                title = tree.title or ""
                keys = set(tree.keys())
            source: TreeSource | None = None
            if title.startswith(TITLE_PREFIX):
                type_name = title[len(TITLE_PREFIX) :]
                recorded = schema.get(tree_name, {})
                cls = registered_type(type_name)
                if cls is None:
                    if not recorded.get("declared"):
                        raise StoreError(
                            f"collection type {type_name!r} is not known here and the file records no schema "
                            "for it (written before schemas were recorded?)",
                            path=self.path,
                            tree=tree_name,
                        )
                    cls = from_schema(recorded["declared"])
                source = RecotrigTree(name=tree_name, cls=cls, recorded=recorded, **kwargs)
            elif actsroot.is_acts_particles(keys):
                source = actsroot.ActsParticlesTree(**kwargs)
            elif actsroot.is_acts_hits(keys):
                source = actsroot.ActsHitsTree(**kwargs)
            elif tree_name in STANDARD_COLLECTIONS and counter_name(tree_name) in keys:
                source = RecotrigTree(name=tree_name, cls=STANDARD_COLLECTIONS[tree_name], **kwargs)
            if source is None:
                self._ignored.append(tree_name)
                continue
            for name in source.collections:
                if name in self._sources:
                    raise StoreError(
                        f"collection {name!r} is given by two trees ({self._sources[name].tree_name!r}, {tree_name!r})",
                        path=self.path,
                    )
                self._sources[name] = source
        self._event_ids, self._runs = self._common_keys()
        for source in set(self._sources.values()):
            source.bind(self._event_ids)

    def _common_keys(self) -> tuple[np.ndarray, np.ndarray]:
        """Event ids and run numbers in entry order, the same in every entry-aligned tree (ACTS
        trees record no run: run 0)."""

        def runs(source: TreeSource) -> np.ndarray:
            return source.runs if isinstance(source, RecotrigTree) else np.zeros(len(source.event_ids), np.int64)

        aligned = [s for s in dict.fromkeys(self._sources.values()) if s.entry_aligned]
        others = [s for s in dict.fromkeys(self._sources.values()) if not s.entry_aligned]
        if aligned:
            ids, first_runs = aligned[0].event_ids, runs(aligned[0])
            for source in aligned[1:]:
                if len(source.event_ids) != len(ids) or not np.array_equal(source.event_ids, ids):
                    raise StoreError(
                        f"tree has {len(source.event_ids)} entries / event ids that differ from tree "
                        f"{aligned[0].tree_name!r} ({len(ids)} entries)",
                        path=self.path,
                        tree=source.tree_name,
                    )
                if not np.array_equal(runs(source), first_runs):
                    raise StoreError(
                        f"run numbers differ from tree {aligned[0].tree_name!r}",
                        path=self.path,
                        tree=source.tree_name,
                        column=RUN_BRANCH,
                    )
            return ids, first_runs
        if others:
            return others[0].event_ids, runs(others[0])
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)

    # -- the Store interface ---------------------------------------------------------------------
    @property
    def event_ids(self) -> np.ndarray:
        return self._event_ids

    @property
    def runs(self) -> np.ndarray:
        return self._runs

    @property
    def collections(self) -> list[str]:
        return list(self._sources)

    @property
    def metadata(self) -> dict[str, Any]:
        return self._metadata

    @property
    def layout(self) -> str:
        """``recotrig``, ``acts`` or ``mixed`` (``empty`` without trees)."""
        kinds = {"recotrig" if s.layout == "recotrig" else "acts" for s in self._sources.values()}
        return kinds.pop() if len(kinds) == 1 else "mixed" if kinds else "empty"

    def tree_of(self, collection: str) -> str:
        return self._sources[collection].tree_name

    def _read(self, start: int, stop: int, names: list[str]) -> list[Event]:
        ids = self._event_ids[start:stop]
        events: list[Event] = [{} for _ in ids]
        by_source: dict[TreeSource, list[str]] = {}
        for name in names:
            by_source.setdefault(self._sources[name], []).append(name)
        for source, wanted in by_source.items():
            got = source.read(start, stop, wanted, ids)
            for name in names:
                if name in got:
                    for event, collection in zip(events, got[name]):
                        event[name] = collection
        return [{name: event[name] for name in names} for event in events]

    def info(self) -> dict[str, Any]:
        out = self._info_head()
        out["layout"] = self.layout
        out["bytes"] = self.path.stat().st_size
        collections: dict[str, Any] = {}
        for source in dict.fromkeys(self._sources.values()):
            rows = source.rows()
            size = source.bytes_on_disk()
            for name, cls in source.collections.items():
                collections[name] = {
                    "type": cls.type_name,
                    "tree": source.tree_name,
                    "layout": source.layout,
                    "columns": source.columns(name),
                    "rows_per_event": rows[name] / self.n_events if self.n_events and rows[name] is not None else None,
                    "bytes": size,
                }
        out["collections"] = collections
        if self._ignored:
            out["ignored_trees"] = list(self._ignored)
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"] = None
        return state


# ------------------------------------------------------------------------------------------------
# writing


#: compression -> (uproot class name, default level); the defaults are ROOT's own levels
_COMPRESSIONS = {"zlib": ("ZLIB", 1), "lzma": ("LZMA", 7), "lz4": ("LZ4", 4), "zstd": ("ZSTD", 5)}


def _compression(spec: str | None) -> Any:
    """``"zstd"``, ``"lz4:1"``, ... or None/``"none"`` -> an uproot compression object."""
    import uproot

    if spec is None or spec == "none":
        return None
    name, _, level = spec.lower().partition(":")
    if name not in _COMPRESSIONS or (level and not level.isdigit()):
        raise ValueError(
            f"unknown compression {spec!r}; use one of {sorted(_COMPRESSIONS)} (optionally ':level') or None"
        )
    kind, default = _COMPRESSIONS[name]
    return getattr(uproot, kind)(int(level) if level else default)


class RootWriter(Writer):
    """Writes events to a ROOT file in the recotrig layout (see the module docstring).

    Every event must hold the same collections with the same columns (the first event fixes
    them). Events are buffered and added to the trees in chunks of about ``chunk_rows`` rows or
    ``chunk_events`` events. ``compression``: ``"zstd"``, ``"lz4"``, ``"zlib"``, ``"lzma"`` with an
    optional ``":level"``, or None.
    """

    format = "root"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        metadata: Mapping[str, Any] | None = None,
        compression: str | None = "lz4",
        chunk_rows: int = 1_000_000,
        chunk_events: int = 1000,
    ):
        super().__init__(path, metadata=metadata)
        import uproot

        if self.path.is_dir():
            raise StoreError("is a directory", path=self.path)
        self.chunk_rows = chunk_rows
        self.chunk_events = chunk_events
        # the file is written as <hidden dir>/<final name>: ROOT records the file's own name inside it
        self._tempdir = temporary_path(self.path)
        self._temp = self._tempdir / self.path.name
        try:
            self._tempdir.mkdir(parents=True)
            with reproducible_clock():
                self._file = uproot.recreate(
                    self._temp, compression=_compression(compression), uuid_function=name_uuids(self.path.name)
                )
        except OSError as err:
            raise StoreError(f"cannot create: {err}", path=self.path) from None
        self._layout: dict[str, tuple[type[Collection], dict[str, str], dict[str, str], dict[str, list[str]]]] = {}
        self._trees: dict[str, Any] = {}
        self._buffer: list[tuple[EventKey, dict[str, Collection]]] = []
        self._buffered_rows = 0

    def _append(self, key: EventKey, collections: dict[str, Collection]) -> None:
        event_id = key.event
        if not self._layout and not self._trees:
            for name, collection in collections.items():
                if not name.isidentifier():
                    raise StoreError(
                        f"collection name {name!r} is not a valid tree name", path=self.path, event=event_id
                    )
                cls = type(collection)
                specs = {c: collection.spec_of(c) for c in collection.names}
                try:
                    kinds = branch_names(name, cls.type_name, specs)
                except StoreError as err:
                    raise StoreError(str(err), path=self.path, event=event_id) from None
                self._layout[name] = (cls, collection.specs, collection.targets, kinds)
        if set(collections) != set(self._layout):
            raise StoreError(
                f"event holds collections {sorted(collections)}, the store was started with {sorted(self._layout)}",
                path=self.path,
                event=event_id,
            )
        for name, collection in collections.items():
            cls, specs, targets, _ = self._layout[name]
            if type(collection) is not cls or collection.specs != specs or collection.targets != targets:
                raise StoreError(
                    f"{type(collection).type_name} with columns {collection.specs} (targets {collection.targets}); "
                    f"the store was started with {cls.type_name} with columns {specs} (targets {targets})",
                    path=self.path,
                    event=event_id,
                    tree=name,
                )
        self._buffer.append((key, collections))
        self._buffered_rows += sum(len(c) for c in collections.values())
        if self._buffered_rows >= self.chunk_rows or len(self._buffer) >= self.chunk_events:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        with reproducible_clock():
            self._flush_buffer()

    def _flush_buffer(self) -> None:
        ids = np.asarray([key.event for key, _ in self._buffer], dtype=np.int64)
        runs = np.asarray([key.run for key, _ in self._buffer], dtype=np.int64)
        for name, (cls, _, _, kinds) in self._layout.items():
            parts = [event[name] for _, event in self._buffer]
            branches = self._branches(name, cls, kinds, parts)
            branches["event_id"] = ids
            branches[RUN_BRANCH] = runs
            with wrapped(f"cannot write events {ids[0]}..{ids[-1]}", path=self.path, tree=name):
                if name not in self._trees:
                    types = {k: (v.type.content if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()}
                    types = {"event_id": types.pop("event_id"), RUN_BRANCH: types.pop(RUN_BRANCH), **types}
                    self._trees[name] = self._file.mktree(
                        name,
                        types,
                        title=TITLE_PREFIX + cls.type_name,
                        counter_name=counter_name,
                        field_name=lambda outer, inner: inner,
                    )
                self._trees[name].extend(branches)
        self._buffer.clear()
        self._buffered_rows = 0

    @staticmethod
    def _branches(
        name: str, cls: type[Collection], kinds: dict[str, list[str]], parts: list[Collection]
    ) -> dict[str, Any]:
        counts = np.asarray([len(p) for p in parts], dtype=np.int64)
        rows = ak.index.Index64(offsets_of(counts))
        fields, contents = [], []
        out: dict[str, Any] = {}
        for column in kinds["flat"]:
            fields.append(column)
            contents.append(ak.contents.NumpyArray(np.concatenate([p[column] for p in parts])))
        for column in kinds["jagged"]:
            sizes = [np.asarray(ak.num(p[column], axis=1), dtype=np.int32) for p in parts]
            fields.append(column + _COUNT_SUFFIX)
            contents.append(ak.contents.NumpyArray(np.concatenate(sizes)))
            flat = [ak.to_numpy(ak.flatten(p[column])) for p in parts]
            inner = ak.index.Index64(offsets_of(np.asarray([len(f) for f in flat])))
            out[column] = ak.Array(ak.contents.ListOffsetArray(inner, ak.contents.NumpyArray(np.concatenate(flat))))
        for column in kinds["fixed"]:
            flat = [np.ascontiguousarray(p[column]).reshape(-1) for p in parts]
            inner = ak.index.Index64(offsets_of(np.asarray([len(f) for f in flat])))
            out[column] = ak.Array(ak.contents.ListOffsetArray(inner, ak.contents.NumpyArray(np.concatenate(flat))))
        record = ak.contents.RecordArray(contents, fields, length=int(counts.sum()))
        return {name: ak.Array(ak.contents.ListOffsetArray(rows, record)), **out}

    def _finish(self) -> None:
        self._flush()
        with reproducible_clock():
            with wrapped("cannot write the metadata", path=self.path):
                self._file[METADATA_KEY] = json.dumps(self.metadata, sort_keys=True)
                schema = {
                    name: {"type": cls.type_name, "columns": specs, "targets": targets, "declared": cls.schema()}
                    for name, (cls, specs, targets, _) in self._layout.items()
                }
                self._file[SCHEMA_KEY] = json.dumps(schema, sort_keys=True)
            with wrapped("cannot close", path=self.path):
                self._file.close()
        commit(self._temp, self.path)

    def _discard(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()
        discard(self._temp)
