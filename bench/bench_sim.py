"""Benchmark of the simulation chain: seconds per event for Pythia generation and for ACTS
Fatras + digitization (+ conversion to recotrig containers), at several pile-up values.

    python bench/bench_sim.py --mu 20 60 200 --events 3

Prints one JSON object on stdout. Set-up costs (Pythia and geometry initialisation, the first event
of each process) are measured separately and kept out of the per-event numbers. Single process,
single thread.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

import numpy as np
from _common import stdout_to_stderr


def bench(mu_values: list[float], events: int, *, hard_scatter: str | None, seed: int) -> dict[str, Any]:
    from recotrig.sim.simulate import Simulator

    results: dict[str, Any] = {
        "unit": "seconds per event: CPU time of this process (wall-clock time in *_wall)",
        "events_per_point": events,
        "hard_scatter": hard_scatter,
        "python": platform.python_version(),
        "points": [],
    }
    warm = time.perf_counter()
    Simulator(mu=1, seed=seed, hard_scatter=hard_scatter).prepare()  # Pythia + ACTS set-up
    results["setup_seconds_wall"] = round(time.perf_counter() - warm, 3)

    for mu in mu_values:
        sim = Simulator(mu=mu, seed=seed, hard_scatter=hard_scatter)
        cpu = np.zeros((events, 3))
        wall = np.zeros(events)
        hits, particles = [], []
        for event in range(events):
            w0, t0 = time.perf_counter(), time.process_time()
            crossing = sim.generate(event)
            t1 = time.process_time()
            response = sim.respond(crossing, event)
            t2 = time.process_time()
            out = sim.assemble(crossing, response)
            t3 = time.process_time()
            wall[event] = time.perf_counter() - w0
            cpu[event] = (t1 - t0, t2 - t1, t3 - t2)
            hits.append(len(out["hits"]))
            particles.append(len(out["particles"]))
        mean = cpu.mean(axis=0)
        point = {
            "mu": mu,
            "pythia_s_per_event": round(float(mean[0]), 4),
            "fatras_digi_s_per_event": round(float(mean[1]), 4),
            "containers_s_per_event": round(float(mean[2]), 4),
            "total_s_per_event": round(float(mean.sum()), 4),
            "total_s_per_event_wall": round(float(wall.mean()), 4),
            "hits_per_event": round(float(np.mean(hits)), 1),
            "particles_per_event": round(float(np.mean(particles)), 1),
        }
        results["points"].append(point)
        print(f"mu={mu}: {point}", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mu", type=float, nargs="+", default=[20, 60, 200], help="pile-up values")
    parser.add_argument("--events", type=int, default=3, help="events per pile-up value")
    parser.add_argument("--hard-scatter", default=None, choices=[None, "ttbar"], help="add a hard scatter")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with stdout_to_stderr():
        results = bench(args.mu, args.events, hard_scatter=args.hard_scatter, seed=args.seed)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
