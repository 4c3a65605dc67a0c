"""StoreWriter: writes chosen collections of every event as an event store.

ROOT (uproot; one tree per collection, one entry per event) or TrackML CSV (per-event files), in
event order, whatever the executor. Nothing appears under the final name until the run ends
well: a failed or interrupted run leaves no truncated file (``discard``). The store's metadata
holds the given ``metadata`` plus, under ``"run"``, the record of the run that wrote it. Behind a
filter it keeps the passing events only. Each event keeps its run number and event id.

``collections`` is a ``Many`` input (the store keys to write); ``names`` renames some in the file::

    StoreWriter(collections=["tracks_ckf", "truth_vertices"], names={"truth_vertices": "vertices"})
    # --StoreWriter.collections tracks_ckf,truth_vertices --StoreWriter.names truth_vertices=vertices
"""

from __future__ import annotations

from typing import Any

from recotrig.framework import Algorithm, Collection, ConfigError, EventInfo, Many, Option, Writer
from recotrig.framework.identity import EventKey
from recotrig.io.store import open_writer


class StoreWriter(Writer):
    """Writes collections (tracks, vertices, trigger decisions, hits, ...) to a ROOT or CSV store."""

    path = Option("recotrig-out/events.root", "output store: a .root file or a directory (TrackML CSV)", role="output")
    format = Option("auto", "store format (auto: root for *.root, else trackml)", choices=("auto", "root", "trackml"))
    names = Option({}, "name in the file of a written store key (default: the key): KEY=NAME,...", type=dict, item=str)
    metadata = Option({}, "store-level metadata (JSON-able dict)", type=dict)
    compression = Option("lz4", "ROOT compression: zstd, lz4, zlib, lzma (optionally :level) or none")

    def configure(self, **settings: Any) -> None:
        for item in settings.get("collections") or ():
            if isinstance(item, str) and ":" in item:  # the form before names
                key, _, name = item.partition(":")
                raise ConfigError(
                    f"{self.name}: collections {item!r} is the old KEY:NAME form; write "
                    f"collections=[..., {key!r}], names={{{key!r}: {name!r}}} "
                    f"(--{self.name}.names {key}={name})"
                )
        super().configure(**settings)

    def check_upstream(self, upstream: dict[str, Algorithm]) -> None:
        keys = self.keys("collections")
        unknown = sorted(set(self.names) - set(keys))
        if unknown:
            raise ConfigError(f"{self.name}: names renames {unknown}, which are not among its collections {keys}")
        stored = [self.names.get(k, k) for k in keys]
        twice = sorted({n for n in stored if stored.count(n) > 1})
        if twice:
            raise ConfigError(f"{self.name}: two collections would be stored as {twice[0]!r}: rename one in names")

    def initialize(self) -> None:
        fmt = None if self.format == "auto" else self.format
        is_root = fmt == "root" or (fmt is None and self.path.endswith(".root"))
        options = {"compression": self.compression} if is_root else {}
        metadata = dict(self.metadata)
        if self.context.record:
            metadata["run"] = self.context.record
        self._writer = open_writer(self.path, format=fmt, metadata=metadata, **options)

    def execute(self, event: EventInfo, collections: Many[Collection] = ("tracks",)) -> None:
        key = EventKey.of(event)
        self._writer.append(key.event, {self.names.get(k, k): v for k, v in collections.items()}, run=key.run)

    def finalize(self) -> None:
        self._writer.close()

    def discard(self) -> None:
        writer = getattr(self, "_writer", None)  # None: the run failed before this writer started
        if writer is not None:
            writer.abort()
