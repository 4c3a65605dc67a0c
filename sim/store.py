"""Simulated event stores: ``simulate`` writes one (ROOT and/or TrackML CSV), ``acts_options``
reads back the detector and field a store records.

``simulate`` is the one way to make a store, for ``recotrig simulate``, the bundled samples and
the trainings alike: a sequence, SimulationReader -> StoreWriter(s), so ``jobs`` spreads events
over processes with output identical to ``jobs=1``. Every keyword besides the ones named is an
option of ``SimulationReader`` (``beam_sigma_z``, ``field``, ``noise``, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recotrig.detector import DetectorSpec
from recotrig.framework import Sequencer
from recotrig.io.errors import StoreError
from recotrig.io.fileset import expand
from recotrig.io.store import open_store, read_metadata
from recotrig.io.writers import StoreWriter
from recotrig.sim.reader import SimulationReader

__all__ = ["FORMATS", "ROOT_ONLY", "STORED_NAMES", "STORE_COLLECTIONS", "acts_options", "simulate", "targets"]

STORE_COLLECTIONS = ["hits", "particles", "truth", "truth_vertices"]
#: store key -> name in the file (the readers' name)
STORED_NAMES = {"truth_vertices": "vertices"}
#: the ROOT store also holds each crossing's L1 objects (TrackML CSV has no place for them)
ROOT_ONLY = ["l1"]
#: what ``fmt`` may be: a ROOT file, a TrackML CSV folder, or both
FORMATS = ("root", "trackml", "both")


def targets(output: str | os.PathLike[str], fmt: str) -> list[tuple[str, str]]:
    """(path, format) pairs to write for an output name and a format."""
    out = Path(output)
    stem = out.with_suffix("") if out.suffix == ".root" else out
    if fmt == "root":
        return [(str(stem.with_suffix(".root")), "root")]
    if fmt == "trackml":
        return [(str(stem), "trackml")]
    return [(str(stem.with_suffix(".root")), "root"), (str(stem.parent / f"{stem.name}_csv"), "trackml")]


def simulate(
    output: str | os.PathLike[str],
    *,
    events: int = 10,
    mu: float = 60.0,
    seed: int = 1,
    hard_scatter: str = "none",
    jobs: int = 1,
    fmt: str = "root",
    compression: str = "lz4",
    progress: bool | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Simulate ``events`` crossings of ``mu`` pile-up (plus a ``hard_scatter``) with run seed ``seed``
    and write them to ``output``; an existing output is refused, never replaced. Returns the summary
    ``recotrig simulate`` prints (outputs, run, events, sizes per event, timing)."""
    reader = SimulationReader(events=events, mu=mu, seed=seed, hard_scatter=hard_scatter, **options)
    metadata = reader.metadata()
    writers = [
        StoreWriter(
            name=f"write_{f}",
            path=p,
            format=f,
            metadata=metadata,
            compression=compression,
            collections=STORE_COLLECTIONS + (ROOT_ONLY if f == "root" else []),
            names=STORED_NAMES,
        )
        for p, f in targets(output, fmt)
    ]
    for path, _ in targets(output, fmt):
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists; remove it or choose another --output")
    result = Sequencer([reader, *writers]).run(jobs=jobs, progress=progress)
    store = open_store(writers[0].path)
    info = store.info()["collections"]
    sim_row = next(r for r in result.timing if r["algorithm"] == reader.name)
    return {
        "outputs": [w.path for w in writers],
        "run": reader.run_number,
        "events": result.processed,
        "hits_per_event": info["hits"]["rows_per_event"],
        "particles_per_event": info["particles"]["rows_per_event"],
        "vertices_per_event": info["vertices"]["rows_per_event"],
        "seconds_per_event": sim_row["mean_ms"] / 1e3,
        "wall_s": result.wall_s,
        "jobs": result.jobs,
    }


def acts_options(input: str) -> dict[str, Any]:
    """``detector``/``field_T`` options from the metadata of the (first) input store, so ACTS
    refits with the store's own geometry and field; a bad record is blamed on the store."""
    first = expand(input)[0]
    try:
        return DetectorSpec.from_metadata(read_metadata(first)).acts_options()
    except (TypeError, ValueError) as err:
        if isinstance(err, StoreError):
            raise
        raise StoreError(f"its metadata does not describe a detector: {err}", path=first) from None
