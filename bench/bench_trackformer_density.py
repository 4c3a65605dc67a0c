"""TrackML score against the hit density: the 200-500 models on the bundled mu = 60 sample's pixel
hits, reduced to N random particles per crossing (HitReader's ``tracks_per_event``; 0: all of
them, about 3,000). Prints JSON.

    python bench/bench_trackformer_density.py --plot docs/images/trackformer_density.png \
        > bench/results/trackformer_density.json
    python bench/bench_trackformer_density.py --replot bench/results/trackformer_density.json --plot PNG

Per N, three `recotrig run`s (one process each, one core), all with ``SECTORS`` phi sectors, so
that only the density changes: ``trackformer_dense`` in one pass (``--TrackFormerEncCla.passes
false``), in the cards' passes, and ``trackformer_hybrid`` (ActsCKF from 0.2 GeV seeds, then the
models on the hits its tracks leave). The TrackML score and ms/event of every finder, from the
runs' own outputs (``bench_trackformer.run``).
"""

from __future__ import annotations

import argparse
import json

from _common import plotting, stdout_to_stderr
from bench_trackformer import run

from recotrig.io.hit_reader import HitReader
from recotrig.sequences.samples import SAMPLE_MU60
from recotrig.sequences.trackformer_hybrid import SECTORS

PARTICLES = (300, 1000, 2000, 0)
SETTINGS = {
    "one pass": (
        "trackformer_dense",
        "--TrackFormerEncCla.passes",
        "false",
        "--TrackFormerEncReg.passes",
        "false",
        "--TrackFormerEncCla.sectors",
        str(SECTORS),
        "--TrackFormerEncReg.sectors",
        str(SECTORS),
    ),
    "passes": (
        "trackformer_dense",
        "--TrackFormerEncCla.sectors",
        str(SECTORS),
        "--TrackFormerEncReg.sectors",
        str(SECTORS),
    ),
    "after ActsCKF": ("trackformer_hybrid",),
}
#: the curves drawn: label -> (setting, finder row)
CURVES = {
    "EncCla, one pass": ("one pass", "TrackFormerEncCla [tracks_enccla]"),
    "EncCla, passes": ("passes", "TrackFormerEncCla [tracks_enccla]"),
    "EncCla after ActsCKF (0.2 GeV seeds)": ("after ActsCKF", "TrackFormerEncCla [tracks_enccla]"),
    "ActsCKF (0.5 GeV seeds)": ("passes", "ActsCKF [tracks_ckf]"),
    "ActsCKF (0.2 GeV seeds)": ("after ActsCKF", "ActsCKF [tracks_ckf]"),
}


def plot(points: list[dict], path: str) -> None:
    """TrackML score against the pixel hits per crossing, one curve per ``CURVES`` entry."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use([mplhep.style.ROOT, {"font.size": 11, "legend.fontsize": 9}])
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for label, (setting, row) in CURVES.items():
        xs = [p["pixel_hits_per_event"] for p in points]
        ys = [p["settings"][setting]["finders"][row]["trackml_score"] for p in points]
        ax.plot(xs, ys, "o-" if "EncCla" in label else "s--", label=label)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel(r"pixel hits per crossing ($\mu$ = 60 ttbar, particles kept at random)")
    ax.set_ylabel("TrackML score")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def pixel_hits(particles: int) -> float:
    """Mean pixel hits per crossing of the sample with ``particles`` kept (the sequences' reduction)."""
    reader = HitReader(input=str(SAMPLE_MU60), volumes=[7, 8, 9], tracks_per_event=particles)
    reader.prepare(0, reader.n_events())
    return sum(len(reader.read(e)[0]) for e in range(reader.n_events())) / reader.n_events()


def main() -> None:
    args = plotting(argparse.ArgumentParser(description=__doc__.splitlines()[0]), plot)
    if args is None:
        return
    points = []
    with stdout_to_stderr():
        for n in PARTICLES:
            settings = {
                name: run(sequence, str(SAMPLE_MU60), "--HitReader.tracks_per_event", str(n), *options)
                for name, (sequence, *options) in SETTINGS.items()
            }
            points.append(
                {
                    "particles": n,
                    "pixel_hits_per_event": pixel_hits(n),
                    "settings": settings,
                }
            )
    results = {"benchmark": "trackformer score against hit density", "store": SAMPLE_MU60.name, "points": points}
    if args.plot:
        plot(points, args.plot)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
