"""PV-Finder (KDEBuilder + PVFinder) against ACTS AMVF (Gaussian and adaptive-grid seeders) on the
identical ACTS CKF tracks of held-out events, one core.

    python bench/bench_pvfinder.py                       # mu 6, 20, 60, 200 (held-out stores)
    python bench/bench_pvfinder.py --mu 60 --events 10
    python bench/bench_pvfinder.py --held-out check --mu 6 60 200   # the second held-out seeds
    python bench/bench_pvfinder.py --held-out wide --mu 60 200       # 200 and 60 crossings

The held-out stores are ``recotrig.training.pvfinder.train.STORES`` (test_mu*, or check_mu* with
``--held-out check``: seeds never used in
training or tuning), simulated into the cache when missing. Per event: HitReader, ActsCKF once,
then each vertex finder on the same tracks; CPU seconds per event of each finder's whole
``execute`` (``time.process_time``; AMVF's includes its CSV hand-over, its ACTS stage alone is
given separately). ``pvfinder`` is the default, each event's threshold chosen from its KDE's scale
(``operating_point="auto"``); where the card has an operating point tuned for the store's
pile-up (``mu6``, ``mu60``, ``mu200``, on their own validation stores) it is run on the same KDE
too (``pvfinder_mu6``, ...): what a user who knew the pile-up would choose by hand.
Vertexing figures: ``metrics.vertexing.VertexMetrics`` with the ACTS-style
track-based matching (truth vertices with >= 2 matched CKF tracks) and the window definitions
(0.5 mm, >= 5 matched tracks). Each PV-Finder entry also has its threshold-scan curve, and
``at_amvf_fp`` gives its window efficiency read off that curve at each AMVF seeder's false
positives per event (``metrics.vertexing.efficiency_at_fp``) beside AMVF's own efficiency.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib.metadata import version

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from _common import stdout_to_stderr

from recotrig.algorithms.acts import ActsAMVF, ActsCKF
from recotrig.algorithms.ml.pvfinder import PVFinder
from recotrig.algorithms.vertexing.kde_builder import KDEBuilder
from recotrig.io.hit_reader import HitReader
from recotrig.metrics.vertexing import VertexMetrics, efficiency_at_fp
from recotrig.models import registry
from recotrig.training.pvfinder.train import STORES, store

FIGURES = (
    "efficiency",
    "efficiency_clean",
    "merge_rate",
    "split_rate",
    "fake_rate",
    "window_efficiency",
    "window_fp_per_event",
    "z_sigma_core",
    "window_z_sigma_core",
    "vv_resolution",
    "vv_resolution_error",
    "vv_found_resolution",
    "vv_found_resolution_error",
    "vv_separable_resolution",
    "vv_separable_resolution_error",
    "n_reco",
    "n_reconstructable",
    "n_window_eligible",
    "n_events",
)


def bench_mu(mu: int, events: int | None, model: str, held_out: str = "test") -> dict:
    path = store(f"{held_out}_mu{mu}")
    reader = HitReader(input=str(path))
    n = min(events or reader.n_events(), reader.n_events())
    card = registry.load(model, family="pvfinder").card
    ckf = ActsCKF()
    kde = KDEBuilder(**card["binning"])
    pvf = PVFinder(model=model)
    point = f"mu{mu}" if f"mu{mu}" in card.get("operating_points", {}) else None
    tuned = {f"pvfinder_{point}": PVFinder(model=model, operating_point=point)} if point else {}
    finders = {
        "amvf_gaussian": ActsAMVF(name="amvf_gaussian", seeder="gaussian"),
        "amvf_adaptive_grid": ActsAMVF(name="amvf_adaptive_grid", seeder="adaptive_grid"),
    }
    for alg in (ckf, kde, pvf, *tuned.values(), *finders.values()):
        alg.initialize()
    metrics = {k: VertexMetrics() for k in ("pvfinder", *tuned, *finders)}
    cpu = dict.fromkeys(("kde_builder", "pvfinder", *finders), 0.0)
    n_tracks, status_counts = [], np.zeros(3, np.int64)  # TrackUse: used, bad, outside
    reader.prepare(0, n)
    for entry in range(n):
        hits, particles, truth, truth_vertices = reader.read(entry)
        tracks = ckf.execute(hits=hits)
        n_tracks.append(len(tracks))
        t0 = time.process_time()
        histogram, use = kde.execute(tracks=tracks)
        t1 = time.process_time()
        vertices, candidates = {}, {}
        vertices["pvfinder"], candidates["pvfinder"], _ = pvf.execute(kde=histogram, tracks=tracks, kde_tracks=use)
        t2 = time.process_time()
        cpu["kde_builder"] += t1 - t0
        cpu["pvfinder"] += t2 - t1
        for key, alg in tuned.items():  # the same KDE, the operating point tuned for this pile-up
            vertices[key], candidates[key], _ = alg.execute(kde=histogram, tracks=tracks, kde_tracks=use)
        status_counts += np.bincount(np.asarray(use.status), minlength=3)
        for key, finder in finders.items():
            t0 = time.process_time()
            vertices[key] = finder.execute(tracks=tracks)
            cpu[key] += time.process_time() - t0
        for key, v in vertices.items():
            metrics[key].add_event(
                v, truth_vertices, tracks=tracks, truth=truth, particles=particles, candidates=candidates.get(key)
            )
    acts_stage = {k: f.timer.per_event().get(k, float("nan")) for k, f in finders.items()}
    for alg in (ckf, kde, pvf, *tuned.values(), *finders.values()):
        alg.finalize()
    ms = {k: 1e3 * v / n for k, v in cpu.items()}
    ms["kde_builder_plus_pvfinder"] = ms["kde_builder"] + ms["pvfinder"]
    full = {k: m.result() for k, m in metrics.items()}
    results = {k: {f: full[k][f] for f in FIGURES} for k in metrics}
    for key in ("pvfinder", *tuned):
        scan = full[key]["threshold_scan"]
        results[key]["threshold_scan"] = scan
        results[key]["at_amvf_fp"] = {
            amvf: {
                "fp_per_event": full[amvf]["window_fp_per_event"],
                "amvf_efficiency": full[amvf]["window_efficiency"],
                "pvfinder_efficiency": efficiency_at_fp(scan, full[amvf]["window_fp_per_event"]),
            }
            for amvf in finders
        }
    return {
        "mu": mu,
        "store": path.name,
        "events": n,
        "tracks_per_event": float(np.mean(n_tracks)),
        "kde_tracks": dict(zip(("used", "bad_covariance_or_parameters", "outside_z_range"), status_counts.tolist())),
        "ms_per_event": ms,
        "ms_per_event_acts_stage_only": {k: 1e3 * v for k, v in acts_stage.items()},
        "speed_up": {k: ms[k] / ms["kde_builder_plus_pvfinder"] for k in finders},
        "figures": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--mu",
        type=int,
        nargs="+",
        default=[6, 20, 60, 200],
        choices=sorted(int(k.removeprefix("test_mu")) for k in STORES if k.startswith("test_mu")),
    )
    parser.add_argument(
        "--held-out",
        choices=("test", "check", "wide"),
        default="test",
        help="held-out stores: 'test' (seeds 21-24), 'check', the second seeds (31-33; mu 6, 60, 200), or "
        "'wide', larger ones (200 crossings at mu 60, 60 at mu 200; seeds 34, 35)",
    )
    parser.add_argument("--events", type=int, default=None, help="events per store (default: all)")
    parser.add_argument("--model", default="pvfinder-unet-mu60")
    args = parser.parse_args()
    missing = [mu for mu in args.mu if f"{args.held_out}_mu{mu}" not in STORES]
    if missing:
        parser.error(f"--held-out {args.held_out} has no store at mu = {missing}")
    with stdout_to_stderr():
        runs = [bench_mu(mu, args.events, args.model, args.held_out) for mu in args.mu]
    print(
        json.dumps(
            {
                "benchmark": "pvfinder",
                "unit": "ms of CPU per event (one core); figures from metrics.vertexing",
                "model": args.model,
                "machine": {
                    "python": platform.python_version(),
                    "cpu": platform.machine(),
                    "pyacts": version("pyacts"),
                },
                "runs": runs,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
