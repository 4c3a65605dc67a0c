"""``recotrig simulate-l1``: a store of Level-1 objects only, with premixed pile-up.

    recotrig simulate-l1 -o l1_zerobias.root --process zerobias --mu 60 -n 1000000 -j 2
    recotrig simulate-l1 -o l1_ato4l.root --process ato4l --mu 60 -n 100000
    recotrig simulate-l1 -o l1_w.root --process wlnu --mu 20 -n 100000 --lepton-filter

Crossing ``i`` overlays Poisson(mu) minimum-bias interactions drawn from a pool of ``--pool-size``
pre-generated ones (made once, cached) on hard-scatter event ``i`` of the process (none for
``zerobias``). The store holds per crossing ``l1`` (L1Objects) and ``crossing`` (CrossingInfo:
process code, pile-up count). Event ids are ``process code x 10**9 + crossing number``: stores of
different processes combine into one fileset, and a ``--lepton-filter`` store keeps the numbers of
the crossings that passed. Every crossing is of run ``--run`` (default: ``--seed``), so stores
of one process made with different seeds combine too. ``-j N`` gives the same file as ``-j 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from recotrig.edm import CrossingInfo
from recotrig.edm.trigger import PROCESS_CODES
from recotrig.framework.arguments import ArgumentParser
from recotrig.framework.limits import check_run_options
from recotrig.io.store import open_writer
from recotrig.sim.premix import PROCESSES, L1Dataset

#: event id = process code x EVENT_ID_STRIDE + crossing number
EVENT_ID_STRIDE = 1_000_000_000


def simulate_l1(
    output: str,
    *,
    process: str,
    mu: float,
    events: int,
    seed: int = 1,
    pool_size: int = 200_000,
    pool_seed: int = 1000,
    lepton_filter: bool = False,
    jobs: int = 1,
    progress: bool = True,
    compression: str = "zstd",
    run: int | None = None,
) -> dict[str, Any]:
    """Generate and write; returns the summary the command prints. ``run``: the run number of
    every crossing (default: ``seed``)."""
    run = seed if run is None else run
    if run < 0:
        raise ValueError(f"--run must be a non-negative integer, got {run}")
    if os.path.exists(output):
        raise FileExistsError(f"{output} exists; remove it or choose another --output")
    dataset = L1Dataset(process, mu, events, seed=seed, pool_size=pool_size, pool_seed=pool_seed)
    metadata = {**dataset.metadata(), "lepton_filter": lepton_filter, "process_codes": PROCESS_CODES}
    t0 = time.perf_counter()
    _make_pools(dataset, jobs=jobs, progress=progress)
    pools_s = time.perf_counter() - t0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=events, unit="crossing", desc=f"simulate-l1 {process}", file=sys.stderr)
    code = PROCESS_CODES[process]
    written, t0 = 0, time.perf_counter()
    gen_s = 0.0
    writer = open_writer(output, format="root", metadata=metadata, compression=compression)
    try:
        t_gen = time.perf_counter()
        for first, batch in dataset.batches(jobs=jobs):
            gen_s += time.perf_counter() - t_gen
            keep = batch.lepton_filter() if lepton_filter else np.ones(batch.n_events, bool)
            for i, objects in enumerate(batch.objects()):
                if keep[i]:
                    info = CrossingInfo(process=[code], n_pileup=[int(batch.n_pileup[i])])
                    writer.append(code * EVENT_ID_STRIDE + first + i, {"l1": objects, "crossing": info}, run=run)
                    written += 1
            if bar is not None:
                bar.update(batch.n_events)
            t_gen = time.perf_counter()
        path = writer.close()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    return {
        "output": str(path),
        "process": process,
        "mu": mu,
        "run": run,
        "crossings": events,
        "written": written,
        "pools_s": round(pools_s, 2),
        "wall_s": round(wall, 2),
        "crossings_per_s": round(events / wall, 1),
        "jobs": jobs,
    }


def _make_pools(dataset: L1Dataset, *, jobs: int, progress: bool) -> None:
    """Make the data set's pile-up pool and hard-scatter events where they are not cached yet,
    each with its own progress bar (the crossings' bar then counts crossings alone)."""
    pools = [
        ("pile-up pool", "interaction", dataset.pool if dataset.mu > 0 else None),
        ("hard scatters", "event", dataset.hard),
    ]
    for label, unit, pool in pools:
        if pool is None:
            continue
        bar = None
        if progress and not pool.path.exists():
            from tqdm import tqdm

            bar = tqdm(total=pool.n_events, unit=unit, desc=f"simulate-l1 {label} (made once, cached)", file=sys.stderr)
        try:
            pool.load(jobs=jobs, progress=bar.update if bar is not None else None)
        finally:
            if bar is not None:
                bar.close()


def main(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="recotrig simulate-l1", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output", required=True, help="output ROOT file")
    parser.add_argument(
        "--process", default="zerobias", choices=("zerobias", *sorted(p for p in PROCESSES if p != "minbias"))
    )
    parser.add_argument("--mu", type=float, default=60.0)
    parser.add_argument("-n", "--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run", type=int, default=None, help="run number of every crossing (default: --seed)")
    parser.add_argument("--pool-size", type=int, default=200_000, help="minimum-bias interactions in the pool")
    parser.add_argument("--pool-seed", type=int, default=1000)
    parser.add_argument(
        "--lepton-filter",
        action="store_true",
        help="keep crossings with an L1 e/gamma or isolated muon above 23 GeV (ADC2021)",
    )
    parser.add_argument("-j", "--jobs", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.events < EVENT_ID_STRIDE:
        raise ValueError(f"-n must be from 1 to {EVENT_ID_STRIDE - 1}, got {args.events}")
    check_run_options(jobs=args.jobs, cli=True)
    summary = simulate_l1(
        args.output,
        process=args.process,
        mu=args.mu,
        events=args.events,
        seed=args.seed,
        pool_size=args.pool_size,
        pool_seed=args.pool_seed,
        lepton_filter=args.lepton_filter,
        jobs=args.jobs,
        progress=not args.no_progress,
        run=args.run,
    )
    print(json.dumps(summary, indent=1))
    return 0
