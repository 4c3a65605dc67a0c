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

from recotrig.framework.arguments import ArgumentParser
from recotrig.framework.flags import add_flags, apply_flags
from recotrig.framework.limits import check_run_options
from recotrig.sim.reader import SimulationReader
from recotrig.sim.store import FORMATS, simulate


def main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="recotrig simulate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", required=True, help="output store (.root file or CSV directory name)")
    parser.add_argument("--format", choices=FORMATS, default="root")
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
    check_run_options(jobs=args.jobs, cli=True)
    options = {k: v for k, v in reader.options().items() if k in reader.option_specs() and k != "events"}
    summary = simulate(
        args.output,
        fmt=args.format,
        jobs=args.jobs,
        progress=False if args.no_progress else None,
        compression=args.compression,
        events=args.events,
        **options,
    )
    print(json.dumps(summary, indent=1))
    return 0
