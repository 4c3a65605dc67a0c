"""CPU cost of the ACTS baselines per event and stage, at several pile-up levels, on one core.

    python bench/bench_acts.py                     # mu 20, 60, 200 with 5, 3, 1 events
    python bench/bench_acts.py --mu 20 200 --events 10 2

Events are simulated first (recotrig.sim, not timed), then each algorithm runs on them in this
process: ActsCKF (space points, triplet seeding, seed parameters, CKF, greedy ambiguity
resolution), ActsAMVF with the Gaussian and the adaptive-grid seeder on the CKF tracks, and
ActsTrackFit refitting the CKF tracks' hit lists (the path an ML track finder takes). Stage
times are CPU seconds per event (``time.process_time``) as recorded by the algorithms; the
bridge's own conversions (``measurements``, ``convert``, ``vertex_*``) are listed separately.
CKF efficiency: particles with pT > 1 GeV, |eta| < 2.5, >= 7 hits, made at a radius < 24 mm,
matched by a track with > 50 % of its hits from them (metrics.tracking). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib.metadata import version

# one core: pin before numpy/ACTS start any thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import awkward as ak
import numpy as np
from _common import stdout_to_stderr

from recotrig.algorithms.acts import ActsAMVF, ActsCKF, ActsTrackFit
from recotrig.edm import Particles, Tracks
from recotrig.metrics.tracking import TrackingMetrics
from recotrig.sim.simulate import Simulator


def efficiency_particles(particles: Particles) -> np.ndarray:
    pt = np.hypot(particles.px, particles.py)
    eta = np.arcsinh(particles.pz / np.maximum(pt, 1e-12))
    return (np.abs(eta) < 2.5) & (np.hypot(particles.vx, particles.vy) < 24.0)


def bench_mu(mu: float, n_events: int, seed: int, fit: bool) -> dict:
    start = time.process_time()
    simulator = Simulator(mu=mu, seed=seed)
    events = [simulator.simulate(i) for i in range(n_events)]
    sim_cpu = (time.process_time() - start) / n_events

    ckf = ActsCKF(name="ckf")
    gauss = ActsAMVF(name="amvf_gaussian", seeder="gaussian")
    grid = ActsAMVF(name="amvf_adaptive_grid", seeder="adaptive_grid")
    refit = ActsTrackFit(name="fit")
    algorithms = [ckf, gauss, grid] + ([refit] if fit else [])
    for alg in algorithms:
        alg.initialize()
    metrics = TrackingMetrics(min_pt=1.0, min_hits=7)
    n_tracks, n_hits, n_vertices = [], [], {"gaussian": [], "adaptive_grid": []}
    for event in events:
        tracks = ckf.execute(hits=event["hits"])
        n_tracks.append(len(tracks))
        n_hits.extend(ak.to_numpy(ak.num(tracks.hit_ids)).tolist())
        particles = event["particles"]
        metrics.add_event(tracks, event["truth"], particles.select(efficiency_particles(particles)))
        n_vertices["gaussian"].append(len(gauss.execute(tracks=tracks)))
        n_vertices["adaptive_grid"].append(len(grid.execute(tracks=tracks)))
        if fit:
            refit.execute(tracks=Tracks(hit_ids=tracks.hit_ids), hits=event["hits"])
    for alg in algorithms:
        alg.finalize()

    stages = {f"ckf.{k}": v for k, v in ckf.timer.per_event().items()}
    for alg in (gauss, grid) + ((refit,) if fit else ()):
        stages.update({f"{alg.name}.{k}": v for k, v in alg.timer.per_event().items()})
    summary = {
        "seeding": sum(stages[f"ckf.{k}"] for k in ("space_points", "seeding", "seed_parameters")),
        "ckf": stages["ckf.ckf"],
        "ambiguity": stages["ckf.ambiguity"],
        "amvf_gaussian": stages["amvf_gaussian.amvf_gaussian"],
        "amvf_adaptive_grid": stages["amvf_adaptive_grid.amvf_adaptive_grid"],
    }
    if fit:
        summary["kalman_fit"] = sum(
            stages[f"fit.{k}"] for k in ("space_points", "start_parameters", "estimate", "fit", "perigee")
        )
    result = metrics.result()
    return {
        "mu": mu,
        "events": n_events,
        "hits_per_event": float(np.mean([len(e["hits"]) for e in events])),
        "simulation_cpu_s_per_event": sim_cpu,
        "cpu_s_per_event": {k: round(v, 5) for k, v in summary.items()},
        "cpu_s_per_event_detail": {k: round(v, 5) for k, v in sorted(stages.items())},
        "tracks_per_event": float(np.mean(n_tracks)),
        "vertices_per_event": {k: float(np.mean(v)) for k, v in n_vertices.items()},
        "truth_vertices_per_event": float(np.mean([len(e["vertices"]) for e in events])),
        "ckf_efficiency": result["efficiency"],
        "ckf_fake_rate": result["fake_rate"],
        "ckf_duplicate_rate": result["duplicate_rate"],
        "reconstructable_particles": result["n_reconstructable"],
        "mean_hits_per_track": float(np.mean(n_hits)) if n_hits else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mu", type=float, nargs="+", default=[20, 60, 200], help="pile-up levels")
    parser.add_argument("--events", type=int, nargs="+", default=[5, 3, 1], help="events per pile-up level")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed")
    parser.add_argument("--no-fit", action="store_true", help="skip the Kalman refit of the CKF tracks")
    args = parser.parse_args()
    counts = args.events if len(args.events) == len(args.mu) else [args.events[0]] * len(args.mu)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    with stdout_to_stderr():
        runs = [bench_mu(mu, n, args.seed, not args.no_fit) for mu, n in zip(args.mu, counts)]
    print(json.dumps({
        "benchmark": "acts_baselines",
        "unit": "CPU seconds per event (one core)",
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "pyacts": version("pyacts")},
        "runs": runs,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
