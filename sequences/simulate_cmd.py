"""``recotrig simulate``: write a simulated event store (ROOT and/or TrackML CSV).

    recotrig simulate -o events.root -n 20 --mu 60 --hard-scatter ttbar --seed 1 -j 2
    recotrig simulate -o events --format both      # events.root and events_csv/
    recotrig simulate -o more.root -n 20 --seed 2   # run 2: reads together with run 1 as a fileset

Every event is written with its run number (``--run``, default the seed) beside its event id
(``--first-event`` + entry): stores of different runs may number their events alike.

It is a sequence under the hood — SimulationReader -> StoreWriter(s) — so ``-j`` spreads events
over processes with output identical to ``-j 1``, and a progress bar shows events/s.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from ..framework import Sequencer
from ..framework.arguments import ArgumentParser
from ..framework.flags import add_flags, apply_flags
from ..framework.sequencer import MAX_JOBS
from ..io.store import open_store
from ..io.writers import StoreWriter
from ..sim.reader import SimulationReader

STORE_COLLECTIONS = ["hits", "particles", "truth", "truth_vertices:vertices"]
#: the ROOT store also holds each crossing's L1 objects (TrackML CSV has no place for them)
ROOT_ONLY = ["l1"]


def targets(output: str, fmt: str) -> list[tuple[str, str]]:
    """(path, format) pairs to write for ``--output`` and ``--format``."""
    out = Path(output)
    stem = out.with_suffix("") if out.suffix == ".root" else out
    if fmt == "root":
        return [(str(stem.with_suffix(".root")), "root")]
    if fmt == "trackml":
        return [(str(stem), "trackml")]
    return [(str(stem.with_suffix(".root")), "root"), (str(stem.parent / f"{stem.name}_csv"), "trackml")]


def simulate(output: str, *, fmt: str = "root", jobs: int = 1, progress: bool | None = None,
             compression: str = "lz4", **options: Any) -> dict[str, Any]:
    """Simulate and write; returns the summary printed by the command."""
    reader = SimulationReader(**options)
    metadata = reader.metadata()
    writers = [
        StoreWriter(name=f"write_{f}", path=p, format=f, metadata=metadata, compression=compression,
                    collections=STORE_COLLECTIONS + (ROOT_ONLY if f == "root" else []))
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


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="recotrig simulate", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", required=True, help="output store (.root file or CSV directory name)")
    parser.add_argument("--format", choices=("root", "trackml", "both"), default="root")
    parser.add_argument("-n", "--events", type=int, default=10)
    parser.add_argument("-j", "--jobs", type=int, default=1)
    parser.add_argument("--compression", default="lz4", help="ROOT compression (zstd, lz4, zlib, lzma[:level])")
    parser.add_argument("--no-progress", action="store_true")
    reader = SimulationReader()
    add_flags(parser, reader, qualified=False, skip=("events",))  # the same flags mechanism as recotrig run
    args = parser.parse_args(argv)
    apply_flags(args, [reader])
    if args.events < 1:
        raise ValueError(f"-n must be at least 1, got {args.events}")
    if not 1 <= args.jobs <= MAX_JOBS:
        raise ValueError(f"-j must be from 1 to {MAX_JOBS}, got {args.jobs}")
    options = {k: v for k, v in reader.options().items() if k in reader.option_specs() and k != "events"}
    summary = simulate(args.output, fmt=args.format, jobs=args.jobs, progress=False if args.no_progress else None,
                       compression=args.compression, events=args.events, **options)
    print(json.dumps(summary, indent=1))
    return 0
