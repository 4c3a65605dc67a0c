"""StoreWriter: writes chosen collections of every event as an event store.

ROOT (uproot; one tree per collection, one entry per event) or TrackML CSV (per-event files), in
event order, whatever the executor. Nothing appears under the final name until the run ends
well: a failed or interrupted run leaves no truncated file (``discard``). The store's metadata
holds the given ``metadata`` plus, under ``"run"``, the record of the run that wrote it. Behind a
filter it keeps the passing events only. Each event keeps its run number and event id.
"""

from __future__ import annotations

from typing import Any

from ..framework import Collection, EventInfo, Option, Port, Writer
from ..framework.identity import EventKey
from .store import open_writer


class StoreWriter(Writer):
    """Writes collections (tracks, vertices, trigger decisions, hits, ...) to a ROOT or CSV store."""

    path = Option("recotrig-out/events.root", "output store: a .root file or a directory (TrackML CSV)",
                  role="output")
    format = Option("auto", "store format (auto: root for *.root, else trackml)", choices=("auto", "root", "trackml"))
    collections = Option(["tracks"], "store keys to write, each KEY or KEY:NAME (NAME = name in the file)", type=list)
    metadata = Option({}, "store-level metadata (JSON-able dict)", type=dict)
    compression = Option("lz4", "ROOT compression: zstd, lz4, zlib, lzma (optionally :level) or none")

    def _names(self) -> dict[str, str]:
        pairs = {}
        for item in self.collections:
            key, _, name = item.partition(":")
            pairs[key] = name or key
        return pairs

    def input_ports(self) -> list[Port]:
        return super().input_ports() + [Port(key, key, Collection) for key in self._names()]

    def initialize(self) -> None:
        fmt = None if self.format == "auto" else self.format
        is_root = fmt == "root" or (fmt is None and self.path.endswith(".root"))
        options = {"compression": self.compression} if is_root else {}
        metadata = dict(self.metadata)
        if self.context.record:
            metadata["run"] = self.context.record
        self._writer = open_writer(self.path, format=fmt, metadata=metadata, **options)

    def execute(self, event: EventInfo, **collections: Any) -> None:
        names = self._names()
        key = EventKey.of(event)
        self._writer.append(key.event, {names[k]: v for k, v in collections.items() if v is not None}, run=key.run)

    def finalize(self) -> None:
        self._writer.close()

    def discard(self) -> None:
        writer = getattr(self, "_writer", None)  # None: the run failed before this writer started
        if writer is not None:
            writer.abort()
