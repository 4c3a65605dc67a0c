"""The Dask executor on a real LocalCluster: identical outputs, a killed worker, throughput and
the cost per chunk. Prints JSON.

- identical: a fileset of 4 toy stores (25 events each) through HitReader -> TruthTracker ->
  Performance -> StoreWriter with `-j 1` and with Dask (2 workers): ROOT output and tables compared
  byte for byte;
- killed worker: the same with one Dask worker killed (SIGKILL) mid-run: every event exactly once;
- throughput: a CPU-bound sequence (Burn, ~0.25 s a chunk), 48 chunks, Dask with 2 workers against 1 (event-loop
  time, cluster start-up excluded, and whole-run time, included);
- overhead: a sequence that does nothing, 200 one-event chunks on 1 Dask worker (and on the
  process executor): event-loop time per chunk;
- planning: a fileset of ``--planning-files`` one-event stores (default 10,000): the time to list
  and index them (what happens before the first chunk runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from recotrig.algorithms.toy import Burn, ToyReader, TruthTracker
from recotrig.framework import Sequencer
from recotrig.framework.executors import DaskExecutor, ProcessExecutor
from recotrig.framework.testing import CountingReader, KillOnce
from recotrig.io.fileset import Fileset
from recotrig.io.hit_reader import HitReader
from recotrig.io.store import open_store, write_store
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance


def make_files(folder: Path, n_files: int = 4, per_file: int = 25) -> str:
    toy = ToyReader(vertices=5)
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n_files):
        ids = list(range(1000 * k, 1000 * k + per_file))
        events = [dict(zip(("hits", "particles", "truth", "vertices"), toy.read(i))) for i in ids]
        write_store(folder / f"ev{k}.root", events, event_ids=ids)
    return str(folder / "*.root")


def reco(inp: str, out: Path, extra=()) -> list:
    return [
        HitReader(input=inp),
        *extra,
        TruthTracker(min_hits=3),
        Performance(tracks=["tracks"], output=str(out), min_hits=3),
        StoreWriter(path=str(out / "reco.root"), collections=["tracks"]),
    ]


def planning_s(n_files: int, folder: Path) -> float:
    toy = ToyReader(vertices=1, tracks_per_vertex=2)
    event = dict(zip(("hits", "particles", "truth", "vertices"), toy.read(0)))
    folder.mkdir()
    for k in range(n_files):
        write_store(folder / f"f{k:05d}.root", [event], event_ids=[k])
    t0 = time.perf_counter()
    fileset = Fileset(str(folder / "*.root"))
    seconds = time.perf_counter() - t0
    assert fileset.n_events == n_files
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--planning-files", type=int, default=10_000)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recotrig-bench-dask-"))
    files = make_files(work / "in")
    Sequencer(reco(files, work / "j1")).run(chunk_size=5, progress=False)
    Sequencer(reco(files, work / "dask")).run(executor=DaskExecutor(2), chunk_size=5, progress=False)
    names = ("reco.root", "comparison.json", "comparison.root", "performance.json")
    identical = all((work / "j1" / n).read_bytes() == (work / "dask" / n).read_bytes() for n in names)

    (work / "marker").mkdir()
    Sequencer(reco(files, work / "killed", [KillOnce(folder=str(work / "marker"), entry=37)])).run(
        executor=DaskExecutor(2), chunk_size=2, progress=False
    )
    ids = open_store(work / "killed" / "reco.root").event_ids.tolist()
    once = ids == open_store(work / "j1" / "reco.root").event_ids.tolist() and len(set(ids)) == len(ids)

    def burn(workers: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        result = Sequencer([CountingReader(events=96), Burn(work=1500)]).run(
            executor=DaskExecutor(workers), chunk_size=2, progress=False
        )
        return result.loop_s, time.perf_counter() - t0

    loops = {1: [], 2: []}
    walls = {1: [], 2: []}
    for _ in range(3):
        for workers in (1, 2):
            loop, whole = burn(workers)
            loops[workers].append(loop)
            walls[workers].append(whole)
    ratios = [a / b for a, b in zip(loops[1], loops[2])]

    def per_chunk(executor) -> float:
        result = Sequencer([CountingReader(events=200)]).run(executor=executor, chunk_size=1, progress=False)
        return 1e3 * result.loop_s / 200

    dask_ms = statistics.median(per_chunk(DaskExecutor(1)) for _ in range(3))
    process_ms = statistics.median(per_chunk(ProcessExecutor(1)) for _ in range(3))
    burn_chunk_s = statistics.median(loops[1]) / 48
    print(
        json.dumps(
            {
                "benchmark": "dask executor",
                "cpus": os.cpu_count(),
                "fileset": "4 files x 25 toy events",
                "outputs_identical_dask2_vs_j1": identical,
                "killed_worker_every_event_once": once and (work / "marker" / "killed").exists(),
                "throughput_2_vs_1_workers_event_loop": round(statistics.median(ratios), 3),
                "throughput_2_vs_1_workers_min_max": [round(min(ratios), 3), round(max(ratios), 3)],
                "throughput_goal": 1.8,
                "whole_run_s_1_and_2_workers": [
                    round(statistics.median(walls[1]), 2),
                    round(statistics.median(walls[2]), 2),
                ],
                "chunks": 48,
                "dask_overhead_ms_per_chunk": round(dask_ms, 2),
                "process_executor_overhead_ms_per_chunk": round(process_ms, 2),
                "burn_chunk_s": round(burn_chunk_s, 3),
                "dask_overhead_share_of_burn_chunk": round(dask_ms / 1e3 / burn_chunk_s, 4),
                "planning_files": a.planning_files,
                "planning_s": round(planning_s(a.planning_files, work / "many"), 2),
                "planning_goal_s": 60.0,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
