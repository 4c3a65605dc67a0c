"""Engine benchmark: the sequencer's own cost per algorithm call, and the -j 2 speedup.

Prints JSON. Both figures are ratios measured in one run on the same events:
- overhead: (wall time with K pass-through algorithms - wall time with none) / (events * K),
  for per-event algorithms and for algorithms on the chunk path;
- speedup: wall(-j 1) / wall(-j 2) for a CPU-bound toy algorithm (goal >= 1.8 on an idle 2-core
  machine; process start-up and result transfer are included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from recotrig.algorithms.toy import Burn
from recotrig.framework import Sequencer
from recotrig.framework.testing import CountingReader, Pass, PassChunk


def wall(algorithms, **run) -> float:
    t0 = time.perf_counter()
    Sequencer(algorithms).run(progress=False, **run)
    return time.perf_counter() - t0


def chain(k: int, events: int, cls=Pass):
    algs = [CountingReader(events=events)]
    previous = "event"
    for i in range(k):
        algs.append(cls(name=f"pass{i}", inp=previous, out=f"key{i}"))
        previous = f"key{i}"
    return algs


def overhead_us(events: int, k: int, repeats: int, cls=Pass) -> float:
    per_call = []
    for _ in range(repeats):
        base = wall(chain(0, events))
        full = wall(chain(k, events, cls))
        per_call.append((full - base) / (events * k) * 1e6)
    return statistics.median(per_call)


def speedup(events: int, work: int, repeats: int) -> tuple[float, ...]:
    ratios, serial, parallel = [], [], []
    for _ in range(repeats):
        t1 = wall([CountingReader(events=events), Burn(work=work)], jobs=1)
        t2 = wall([CountingReader(events=events), Burn(work=work)], jobs=2)
        serial.append(t1)
        parallel.append(t2)
        ratios.append(t1 / t2)
    return statistics.median(ratios), statistics.median(serial), statistics.median(parallel), min(ratios), max(ratios)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=20000)
    p.add_argument("--chain", type=int, default=10)
    p.add_argument("--burn-events", type=int, default=200)
    p.add_argument("--burn-work", type=int, default=100)
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    ratio, t1, t2, low, high = speedup(a.burn_events, a.burn_work, a.repeats)
    print(
        json.dumps(
            {
                "benchmark": "engine",
                "cpus": os.cpu_count(),
                "overhead_us_per_call": round(overhead_us(a.events, a.chain, a.repeats), 2),
                "overhead_chunk_path_us_per_call": round(overhead_us(a.events, a.chain, a.repeats, PassChunk), 2),
                "overhead_goal_us": 5.0,
                "j2_speedup": round(ratio, 3),
                "j2_speedup_goal": 1.8,
                "j2_speedup_min_max": [round(low, 3), round(high, 3)],
                "repeats": a.repeats,
                "burn_serial_s": round(t1, 3),
                "burn_j2_s": round(t2, 3),
                "burn_events": a.burn_events,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
