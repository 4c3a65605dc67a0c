"""Cost against pile-up: ms/event per algorithm and peak memory of the process, on one core.

    python bench/bench_scale.py                            # mu 20, 60, 120, 200, 2 events each
    python bench/bench_scale.py --mu 20 60 --events 3 3

Per mu, a ttbar store is simulated (``recotrig.sim.store.simulate``, one job, seed 11) into the
bench cache (``recotrig.models.registry.cache_dir("bench") / "scale"``) and reused when present.
Then ONE ``recotrig run -j 1`` runs on it, under ``/usr/bin/time -v`` for the peak resident set of
the process: the shipped ``pvfinder`` sequence (ActsCKF; KDEBuilder -> PVFinder; ActsAMVF with the
Gaussian and the adaptive-grid seeder, all on the CKF tracks) plus, from a steering file written
here, a second HitReader of all pixel hits (volumes 7, 8, 9) and TrackFormerFinder with the
sectored 200-500 EncReg model. The finder sends the windows of an event through ONNX Runtime one
per call, so its memory grows as (fullest window)^2: ``sectors`` is the count in 12..256 whose
windows all fit the card's ``max_hits`` and whose attention cost (sectors x fullest window^2) is
smallest, found on the store's own hits. Where the attention matrices of one call (fullest
window^2 x heads x 4 bytes) would exceed ``ATTENTION_GB``, or no count
fits, or the run fails (its address space is capped at ``ADDRESS_SPACE_GB``, so an allocation
fails in it rather than on the machine), TrackFormerFinder
is left out (the reason or the run's error recorded) and the shipped ``pvfinder`` sequence alone
runs. A failed run is recorded, not raised.
ms/event per algorithm are the run's own ``timing.json`` (``mean_ms``). Prints one JSON object;
``--plot`` draws ms/event against mu (log-log); ``--replot JSON --plot PNG`` only redraws it.

    nice -n 5 python bench/bench_scale.py --plot docs/images/scale.png > bench/results/scale.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

# one core: pin before numpy starts any thread pool (the run inherits it)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from _common import plotting, stdout_to_stderr

from recotrig.io.hit_reader import HitReader
from recotrig.models import registry
from recotrig.models.trackformer.sectors import Sectors
from recotrig.sim.store import simulate

SEED = 11
PIXELS = [7, 8, 9]
MODEL = "trackformer-encreg-200-500"
ATTENTION_GB = 8.0  # the largest attention matrices of one call allowed (the run's peak: about 1.5 GB + 2 x them)
ADDRESS_SPACE_GB = 18  # RLIMIT_AS of the run: a run that outgrows it fails alone, never the machine
STEERING = f'''"""pvfinder + TrackFormerFinder ({MODEL}) on all pixel hits of the same events."""

from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.io.hit_reader import HitReader
from recotrig.sequences import pvfinder


def build(*, input, output):
    pixels = HitReader(
        name="PixelReader", input=input, volumes={PIXELS}, hits="hits_pixel", particles="particles_pixel",
        truth="truth_pixel", truth_vertices="truth_vertices_pixel",
    )
    finder = TrackFormerFinder(name="TrackFormerEncReg", model="{MODEL}", hits="hits_pixel", tracks="tracks_tf")
    return [*pvfinder.build(input=input, output=output), pixels, finder]
'''
#: the curves of the plot: label -> timing.json algorithms summed
CURVES = {
    "ActsCKF": ["ActsCKF"],
    "ActsAMVF (adaptive grid)": ["ActsAMVFGrid"],
    "KDEBuilder + PVFinder": ["KDEBuilder", "PVFinder"],
    "TrackFormerFinder (EncReg)": ["TrackFormerEncReg"],
}


def store(mu: int, events: int) -> Path:
    path = registry.cache_dir("bench") / "scale" / f"mu{mu}_ttbar_seed{SEED}_n{events}.root"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with stdout_to_stderr():
            simulate(path, events=events, mu=mu, seed=SEED, hard_scatter="ttbar", jobs=1, progress=False)
    return path


def pixel_hits(path: Path) -> tuple[list[int], list[int], list[np.ndarray]]:
    """All hits and pixel hits per event, and the pixel hits' x, y arrays (event after event)."""
    every = HitReader(input=str(path))
    pixels = HitReader(input=str(path), volumes=PIXELS)
    n = every.n_events()
    every.prepare(0, n)
    pixels.prepare(0, n)
    totals = [len(every.read(i)[0]) for i in range(n)]
    xy = [np.asarray(pixels.read(i)[0][c]) for i in range(n) for c in "xy"]
    return totals, [len(x) for x in xy[::2]], xy


def sectors_for(xy: list[np.ndarray], overlap: float, max_hits: int) -> tuple[int, int] | None:
    """The sector count in 12..256 with the smallest attention cost (sectors x fullest window^2)
    whose windows all fit ``max_hits``, and its fullest window; None when no count fits."""
    best = None
    phis = []
    for x, y in zip(xy[::2], xy[1::2]):
        phi = np.sort(np.arctan2(y, x))
        phis.append(np.concatenate([phi - 2 * np.pi, phi, phi + 2 * np.pi]))
    for n in range(12, 257):
        half = math.pi / n + overlap
        fullest = 0
        for phi in phis:  # hits within half of each centre, on a circle unrolled twice
            lo, hi = np.searchsorted(phi, Sectors(n, overlap).centres[:, None] + [-half, half], side="right").T
            fullest = max(fullest, int((hi - lo).max()))
        if fullest <= max_hits and (best is None or n * fullest**2 < best[0] * best[1] ** 2):
            best = (n, fullest)
    return best


def run(path: Path, sequence: str, *options: str) -> dict:
    """One ``recotrig run -j 1`` in a temporary output folder (removed after): its ms/event per
    algorithm, CKF tracks/event and peak resident set, or its error line."""
    with tempfile.TemporaryDirectory(prefix="recotrig-bench-scale-") as tmp:
        return measure(Path(tmp), path, sequence, *options)


def measure(out: Path, path: Path, sequence: str, *options: str) -> dict:
    rss = out / "time.txt"
    command = [
        "/usr/bin/time",
        "-v",
        "-o",
        str(rss),
        sys.executable,
        "-m",
        "recotrig.sequences.cli",
        "run",
        sequence,
        "--input",
        str(path),
        "-o",
        str(out / "run"),
        "-j",
        "1",
        "--no-progress",
        *options,
    ]
    limit = ADDRESS_SPACE_GB << 30
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)),
    )
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", rss.read_text() if rss.exists() else "")
    result: dict = {"peak_rss_mb": int(peak.group(1)) / 1024 if peak else None}
    if done.returncode:
        result["error"] = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return result
    timing = json.loads((out / "run" / "timing.json").read_text())["timing"]
    result["ms_per_event"] = {r["algorithm"]: r["mean_ms"] for r in timing}
    ckf = json.loads((out / "run" / "performance.json").read_text())["results"]["tracks_ckf"]
    result["ckf_tracks_per_event"] = ckf["n_tracks"] / ckf["n_events"]
    return result


def plot(points: list[dict], path: str) -> None:
    """ms/event against mu, log-log, one curve per ``CURVES`` entry, with mu and mu^2 slopes
    through ActsCKF's first point; the mu values without a TrackFormer point are named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep
    from matplotlib.ticker import NullFormatter

    plt.style.use([mplhep.style.ROOT, {"font.size": 11, "legend.fontsize": 9, "xtick.minor.visible": False}])
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for label, algorithms in CURVES.items():
        xs, ys = [], []
        for p in points:
            ms = p.get("ms_per_event", {})
            if all(a in ms for a in algorithms):
                xs.append(p["mu"])
                ys.append(sum(ms[a] for a in algorithms))
        if xs:
            ax.plot(xs, ys, "o-", label=label)
    mus = np.array([p["mu"] for p in points], float)
    anchor = points[0].get("ms_per_event", {}).get("ActsCKF", 1.0)
    for power, style in ((1, ":"), (2, "--")):
        ax.plot(
            mus, anchor * (mus / mus[0]) ** power, style, color="grey", alpha=0.5, lw=1, label=rf"$\propto\mu^{power}$"
        )
    missing = [f"{p['mu']:g}" for p in points if "trackformer_skipped" in p]
    if missing:
        ax.text(
            0.98,
            0.03,
            f"TrackFormerFinder: no point at $\\mu$ = {', '.join(missing)} (memory)",
            transform=ax.transAxes,
            ha="right",
            fontsize=8,
            color="grey",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"pile-up $\mu$")
    ax.set_ylabel("ms / event (one core)")
    ax.set_xticks(mus, [f"{m:g}" for m in mus])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mu", type=int, nargs="+", default=[20, 60, 120, 200])
    parser.add_argument("--events", type=int, nargs="+", default=[2, 2, 2, 2])
    args = plotting(parser, plot)
    if args is None:
        return
    if len(args.events) != len(args.mu):
        parser.error("--events needs one count per --mu")
    card = registry.load(MODEL, family="trackformer").card
    steering = registry.cache_dir("bench") / "scale" / "scale_sequence.py"
    steering.parent.mkdir(parents=True, exist_ok=True)
    steering.write_text(STEERING)
    points = []
    for mu, events in zip(args.mu, args.events):
        path = store(mu, events)
        totals, pixels, xy = pixel_hits(path)
        best = sectors_for(xy, card["sectors"]["overlap"], card["max_hits"])
        sectors, fullest = best or (None, None)
        attention_gb = fullest**2 * card["hyper_parameters"]["heads"] * 4 / 1e9 if best else None  # one window a call
        point = {
            "mu": mu,
            "events": len(totals),
            "store": path.name,
            "hits_per_event": sum(totals) / len(totals),
            "pixel_hits_per_event": sum(pixels) / len(pixels),
            "trackformer_sectors": sectors,
            "trackformer_fullest_window": fullest,
            "trackformer_max_hits": card["max_hits"],
            "trackformer_attention_gb": attention_gb,
        }
        if best is None:
            point["trackformer_skipped"] = (
                f"no sector count in 12..256 keeps every window within {card['max_hits']} hits"
            )
        elif attention_gb > ATTENTION_GB:
            point["trackformer_skipped"] = (
                f"the attention matrices of one call would take {attention_gb:.1f} GB (> {ATTENTION_GB} GB)"
            )
        if "trackformer_skipped" not in point:
            point["sequence"] = steering.name
            point.update(run(path, str(steering), "--TrackFormerEncReg.sectors", str(sectors)))
            if "error" in point:
                point["trackformer_skipped"] = f"the run failed: {point.pop('error')}"
                point.pop("peak_rss_mb")
        if "trackformer_skipped" in point:
            point["sequence"] = "pvfinder"
            point.update(run(path, "pvfinder"))
        print(f"mu {mu}: done", file=sys.stderr, flush=True)
        points.append(point)
    if args.plot:
        plot(points, args.plot)
    print(
        json.dumps(
            {
                "benchmark": "cost against pile-up",
                "unit": "ms/event: mean per algorithm from the run's timing.json (wall clock, one core, -j 1)",
                "peak_memory": "peak_rss_mb: maximum resident set size of the recotrig run process (/usr/bin/time -v)",
                "sequence": "pvfinder + PixelReader (volumes 7, 8, 9) + TrackFormerFinder " + MODEL,
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, one used",
                "python": platform.python_version(),
                "points": points,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
