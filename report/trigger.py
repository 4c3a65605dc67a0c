"""Trigger figures from ``trigger.json``: the ROC curve per signal with the zero-bias rate at the
40 MHz crossing rate on a second axis and the 1 and 10 kHz points marked, the score
distributions of the background and each signal with the decision's threshold, and the
emulator's integer score against the float model's score."""

from __future__ import annotations

import numpy as np

from recotrig.metrics.trigger import CROSSING_RATE_KHZ, RATES_KHZ
from recotrig.report.common import Figure, Run, Skipped, figure

__all__ = ["figures"]


def _roc(runs: list[Run]) -> Figure | Skipped:
    fig, ax = figure()
    drawn = 0
    for run in runs:
        for signal, row in (run.get("trigger.json") or {}).get("signals", {}).items():
            roc = row.get("hw", {}).get("roc")
            if not roc:
                continue
            drawn += 1
            fpr, tpr = np.asarray(roc["fpr"]), np.asarray(roc["tpr"])
            label = signal if len(runs) == 1 else f"{signal} ({run.label})"
            (line,) = ax.plot(fpr[fpr > 0], tpr[fpr > 0], "-", label=f"{label} (AUC {row['hw']['auc']:.3f})")
            for rate in RATES_KHZ:
                at = row["hw"].get(f"at_{rate:g}_kHz")
                if at and at.get("measured"):
                    ax.plot([at["fpr"]], [at["efficiency"]], "*", ms=10, color=line.get_color())
    if not drawn:
        plt_close(fig)
        return Skipped(
            "trigger_roc", "trigger.json holds no ROC points (no signal crossings, or written before it kept them)."
        )
    ax.set_xscale("log")
    ax.set_xlabel("background efficiency (false-positive rate)")
    ax.set_ylabel("signal efficiency")
    for rate in RATES_KHZ:
        ax.axvline(rate / CROSSING_RATE_KHZ, color="grey", ls=":", lw=1)
    top = ax.secondary_xaxis("top", functions=(lambda f: f * CROSSING_RATE_KHZ, lambda r: r / CROSSING_RATE_KHZ))
    top.set_xlabel("zero-bias rate at 40 MHz [kHz]")
    ax.legend(loc="lower right")
    return Figure(
        "trigger_roc",
        fig,
        "ROC curve per signal (emulator's integer score); dotted lines: 1 and 10 kHz "
        "of the 40 MHz crossings; stars: the measured efficiency there.",
    )


def _scores(run: Run) -> Figure | Skipped:
    scores = (run.get("trigger.json") or {}).get("scores")
    if not scores:
        return Skipped("trigger_scores", f"{run.label}: trigger.json holds no score histograms.")
    hist = scores["float"]
    edges = np.asarray(hist["edges"])
    fig, ax = figure()
    for name, counts in hist["counts"].items():
        c = np.asarray(counts, float)
        if c.sum():
            ax.stairs(c / c.sum(), edges, label=name)
    if scores.get("threshold") is not None:
        ax.axvline(scores["threshold"], color="black", ls="--", label="threshold")
    ax.set_yscale("log")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("fraction of crossings")
    ax.legend(loc="best")
    return Figure(
        f"trigger_scores{'' if run.label == 'run' else '_' + run.label}",
        fig,
        f"{run.label}: score distributions (unit area) of the background and each signal, with the "
        "decision's threshold.",
    )


def _emulator_vs_float(run: Run) -> Figure | Skipped:
    name = f"trigger_emulator_vs_float{'' if run.label == 'run' else '_' + run.label}"
    pairs = (run.get("trigger.json") or {}).get("score_pairs")
    if not pairs or not pairs.get("float"):
        return Skipped(name, f"{run.label}: trigger.json holds no (float, integer) score pairs.")
    x, y = np.asarray(pairs["float"], float), np.asarray(pairs["decided"], float)
    process = np.asarray(pairs["process"])
    fig, ax = figure()
    for kind in dict.fromkeys(process.tolist()):
        sel = process == kind
        ax.plot(x[sel], y[sel], ".", ms=3, alpha=0.6, label=kind)
    top = float(max(x.max(), y.max(), 1e-9))
    ax.plot([0, top], [0, top], color="grey", lw=1, ls=":", label="equal")
    ax.set_xscale("symlog", linthresh=1.0)  # scores span decades; zero stays on the axes
    ax.set_yscale("symlog", linthresh=1.0)
    threshold = pairs.get("threshold")
    if threshold is not None:
        ax.axhline(threshold, color="black", ls="--", lw=1, label="threshold (decides)")
        ax.axvline(threshold, color="black", ls=":", lw=1)
    ax.set_xlabel("float model's score")
    ax.set_ylabel("emulator's score (integer word × LSB)")
    ax.legend(loc="lower right", fontsize="small")
    otherwise = pairs.get("float_decides_otherwise")
    note = (
        f" The float score would decide {otherwise} of the run's {pairs['events']} events otherwise."
        if otherwise is not None
        else ""
    )
    return Figure(
        name,
        fig,
        f"{run.label}: the firmware emulator's integer score against the float model's, "
        f"{len(x)} events spread over the run; the decision is the emulator's (dashed line).{note}",
    )


def plt_close(fig: object) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def figures(runs: list[Run]) -> list[Figure | Skipped]:
    if not any(run.get("trigger.json") for run in runs):
        return [Skipped("trigger", "No trigger.json: no trigger figures.")]
    present = [run for run in runs if run.get("trigger.json")]
    return [_roc(runs), *(_scores(run) for run in present), *(_emulator_vs_float(run) for run in present)]
