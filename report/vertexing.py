"""Vertexing figures from ``performance.json``: each vertex finder's window efficiency against
its false positives per event (an operating point each, and the threshold-scan curve of a finder
that records one, PV-Finder's), the z resolutions per finder, the pair-finding efficiency against
the distance between two truth vertices, the window z residuals, and the run's first event along
z (the KDE, PV-Finder's network output, the truth vertices and each finder's)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from recotrig.report.common import Figure, Run, Skipped, figure

__all__ = ["figures", "threshold_scan"]

#: the pair-finding efficiency is drawn in bins of this many of performance.json's bins
PAIR_BINS = 4


def _vertices(run: Run) -> dict[str, dict[str, Any]]:
    results = (run.get("performance.json") or {}).get("results", {})
    return {k: r for k, r in results.items() if isinstance(r, dict) and "window_efficiency" in r}


def threshold_scan(result: dict[str, Any]) -> dict[str, list[float]] | None:
    """The efficiency-versus-false-positives curve of a threshold scan in a vertex collection's
    ``performance.json`` entry (``threshold_scan``: lists ``efficiency`` and ``fp_per_event``), or
    ``None`` while the run records none: the figure then shows operating points only."""
    scan = result.get("threshold_scan")
    if isinstance(scan, dict) and {"efficiency", "fp_per_event"} <= set(scan):
        return scan
    return None


def _values(values: list[Any]) -> np.ndarray:
    """A JSON list as floats (``null``, written for NaN, back to NaN)."""
    return np.asarray([np.nan if v is None else v for v in values], float)


def _label(key: str, run: Run, runs: list[Run]) -> str:
    return key if len(runs) == 1 else f"{key} ({run.label})"


def _efficiency_vs_fp(runs: list[Run]) -> Figure:
    fig, ax = figure()
    curves, points = 0, []
    for run in runs:
        for key, res in _vertices(run).items():
            label = _label(key, run, runs)
            scan = threshold_scan(res)
            color = None
            if scan is not None:
                curves += 1
                (line,) = ax.plot(
                    _values(scan["fp_per_event"]), _values(scan["efficiency"]), "-", label=f"{label} (threshold scan)"
                )
                color = line.get_color()
            n, k = res.get("n_window_eligible") or 0, res.get("window_efficiency")
            err = np.sqrt(k * (1 - k) / n) if n and k is not None else 0.0
            points.append(res["window_fp_per_event"] or 0.0)
            ax.errorbar([res["window_fp_per_event"]], [k], yerr=[err], fmt="o", ms=7, color=color, label=label)
    if curves:  # the scan reaches far more false positives than any finder makes: show around the points
        ax.set_xlim(0, max(1.0, 3 * max(points, default=0.0)))
    ax.set_xlabel("false positives per event")
    ax.set_ylabel("window efficiency")
    ax.legend(loc="best")
    note = (
        " The curve is the threshold scan: the vertices found with one peak-score threshold for every event,"
        " stepped from low to high. It passes through a finder's operating point (same colour) where that"
        " threshold is fixed; the per-event default's point, each event's threshold from its own KDE, lies beside it."
        if curves
        else " No threshold-scan curve is recorded in performance.json: operating points only."
    )
    return Figure(
        "vertex_efficiency_vs_fp",
        fig,
        "Window efficiency against false positives per event, one point per vertex finder (binomial error)." + note,
    )


def _pair_efficiency(runs: list[Run]) -> Figure | Skipped:
    entries = [(run, key, res) for run in runs for key, res in _vertices(run).items() if "vv_pair_efficiency" in res]
    if not entries:
        return Skipped("vertex_pair_efficiency", "performance.json records no pair-finding efficiency.")
    fig, ax = figure()
    limits: set[int] = set()  # runs whose tracks' own limit is drawn (the same for each finder of a run)
    for run, key, res in entries:
        curve = res["vv_pair_efficiency"]
        resolution = res.get("vv_resolution")
        text = f"{resolution:.2f} mm" if resolution is not None else "not reached"
        # drawn in bins of PAIR_BINS stored ones (the ratio of the summed pairs): fewer, steadier points
        edges = _values(curve["edges"])[::PAIR_BINS]
        reco = np.add.reduceat(_values(curve["reco_pairs"]), np.arange(0, len(edges) - 1) * PAIR_BINS)
        true = np.add.reduceat(_values(curve["truth_pairs"]), np.arange(0, len(edges) - 1) * PAIR_BINS)
        level = curve.get("plateau_level") or np.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(true > 0, reco / true / level, np.nan)
        line = ax.stairs(ratio, edges, label=f"{_label(key, run, runs)}: {text}")
        if resolution is not None:
            ax.axvline(resolution, color=line.get_edgecolor(), ls="--", lw=1)
        found = res.get("vv_found_pair_efficiency")
        if found is not None:  # the truth pairs with both vertices found (docs/metrics.md)
            both = np.add.reduceat(_values(found["found_pairs"]), np.arange(0, len(edges) - 1) * PAIR_BINS)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(true > 0, both / true / (found.get("plateau_level") or np.nan), np.nan)
            at = res.get("vv_found_resolution")
            text = f"{at:.2f} mm" if at is not None else "not reached"
            ax.stairs(ratio, edges, color=line.get_edgecolor(), ls=":", label=f"both found: {text}")
        separable = res.get("vv_separable_pair_efficiency")
        if separable is not None and id(run) not in limits:  # what the tracks' own z0 tell apart
            limits.add(id(run))
            apart = np.add.reduceat(_values(separable["separable_pairs"]), np.arange(0, len(edges) - 1) * PAIR_BINS)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio = np.where(true > 0, apart / true / (separable.get("plateau_level") or np.nan), np.nan)
            at = res.get("vv_separable_resolution")
            text = f"{at:.2f} mm" if at is not None else "not reached"
            sigma = res.get("separable_sigma", 3.0)
            label = f"{_label('tracks', run, runs)} {sigma:g} σ apart: {text}"
            ax.stairs(ratio, edges, color="black", ls="-.", label=label)
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_ylim(0, max(1.6, ax.get_ylim()[1]))
    ax.set_xlabel(r"$|\Delta z|$ between two vertices [mm]")
    ax.set_ylabel("pair-finding efficiency")
    ax.legend(loc="upper right")
    return Figure(
        "vertex_pair_efficiency",
        fig,
        "Pair-finding efficiency: reconstructed over truth vertex pairs per |Δz| bin, divided by its level where "
        f"the vertices are far apart (drawn in bins of {PAIR_BINS} stored bins); dashed: the vertex-vertex "
        "resolution, where the stored curve first reaches one half; dotted: the truth pairs whose two vertices are "
        "both found (window-matched each to a vertex of its own) over all truth pairs, divided by its own level; "
        "black dash-dotted: the truth pairs whose own tracks' weighted mean z0 lie that many standard errors apart "
        "(every track assigned to its true vertex), the limit the tracks' z resolution sets (docs/metrics.md).",
    )


def _residuals(runs: list[Run]) -> Figure | Skipped:
    entries = [
        (run, key, res) for run in runs for key, res in _vertices(run).items() if "window_z_residual_hist" in res
    ]
    if not entries:
        return Skipped("vertex_z_residuals", "performance.json records no z residual histogram.")
    fig, ax = figure()
    for run, key, res in entries:
        hist = res["window_z_residual_hist"]
        sigma = res.get("window_z_sigma_core")
        core = f"core σ {1e3 * sigma:.0f} µm" if sigma is not None else "no residuals"
        ax.stairs(_values(hist["counts"]), 1e3 * _values(hist["edges"]), label=f"{_label(key, run, runs)}: {core}")
    ax.set_xlabel(r"$z_{reco} - z_{truth}$ [µm]")
    ax.set_ylabel("vertices")
    ax.legend(loc="upper right")
    return Figure(
        "vertex_z_residuals",
        fig,
        "z residuals of the vertices that found an eligible truth vertex within the window, per finder.",
    )


def _event_view(runs: list[Run]) -> Figure | Skipped:
    views = [(run, (run.get("performance.json") or {}).get("event_view")) for run in runs]
    views = [(run, view) for run, view in views if isinstance(view, dict)]
    if not views:
        return Skipped("vertex_event_view", "performance.json records no event view (a run without vertices).")
    first = views[0][1]
    event = (first["run_number"], first["event_id"])
    same = [(run, v) for run, v in views if (v["run_number"], v["event_id"]) == event]  # overlay one event only
    truth = _values(first["truth_z"])
    eligible = np.asarray(first["truth_eligible"], bool)
    centre = float(np.median(truth[eligible] if eligible.any() else truth)) if len(truth) else 0.0
    fig, axes = plt.subplots(2, 2, figsize=(12.8, 6.4), sharex="col", height_ratios=(3, 2), squeeze=False)
    fig.subplots_adjust(left=0.13, right=0.94, bottom=0.1, top=0.95, wspace=0.36, hspace=0.08)
    levels = {"truth": 0}
    for column, zoom in enumerate((None, (centre - 10.0, centre + 10.0))):
        top, bottom = axes[0, column], axes[1, column]
        right = top.twinx()
        if "kde" in first:
            top.plot(_values(first["kde"]["z"]), _values(first["kde"]["kde_a"]), color="grey", lw=1, label="KDE")
        for run, view in same:
            if "density" in view:
                name = "network output" if len(runs) == 1 else f"network output ({run.label})"
                right.plot(_values(view["density"]["z"]), _values(view["density"]["density"]), lw=1, label=name)
        top.set_ylabel("KDE [mm$^{-2}$]")
        right.set_ylabel("vertices per bin")
        bottom.plot(truth[~eligible], np.zeros((~eligible).sum()), "|", color="grey", ms=8)
        bottom.plot(truth[eligible], np.zeros(eligible.sum()), "|", color="black", ms=14, mew=2)
        for run, view in same:
            for key, z in view["vertices"].items():
                level = levels.setdefault(_label(key, run, runs), len(levels))
                bottom.plot(_values(z), np.full(len(z), level), "v", ms=5)
        bottom.set_yticks(range(len(levels)), list(levels))
        bottom.set_ylim(-0.7, len(levels) - 0.3)
        bottom.set_xlabel("z [mm]")
        if zoom is not None:
            bottom.set_xlim(*zoom)
        elif len(truth):
            bottom.set_xlim(truth.min() - 10, truth.max() + 10)
        if column == 0:
            lines = top.get_lines() + right.get_lines()
            if lines:
                top.legend(lines, [line.get_label() for line in lines], loc="upper left")
    shown = "the KDE and PV-Finder's network output (right axis)" if "kde" in first else "no KDE in this run"
    return Figure(
        "vertex_event_view",
        fig,
        f"Run {event[0]}, event {event[1]} along z (left: all of it; right: 20 mm around the median z of the "
        f"eligible truth vertices): above, {shown}; below, the truth vertices (black: eligible for the window "
        "efficiency, grey: fewer reconstructable tracks) and each finder's vertices.",
    )


def _resolution(runs: list[Run]) -> Figure:
    fig, ax = figure(left=2.4, width=7.4)
    names, values = [], []
    for run in runs:
        for key, res in _vertices(run).items():
            names.append(key if len(runs) == 1 else f"{key} ({run.label})")
            values.append([res.get(c) or np.nan for c in ("z_sigma_core", "window_z_sigma_core", "vv_resolution")])
    v = 1e3 * np.asarray(values, float)
    y = np.arange(len(names))
    for j, label in enumerate(("z resolution, core σ", "window z resolution, core σ", "vertex-vertex resolution")):
        ax.barh(y + (j - 1) * 0.27, v[:, j], height=0.27, label=label)
    ax.set_yticks(y, names)
    ax.set_xlabel("[µm]")
    ax.legend(loc="best")
    return Figure(
        "vertex_resolution",
        fig,
        "Vertex z resolutions (robust core σ of the z residuals) and the vertex-vertex resolution, per finder.",
    )


def figures(runs: list[Run]) -> list[Figure | Skipped]:
    if not any(_vertices(run) for run in runs):
        return [Skipped("vertexing", "No vertex collection in performance.json: no vertexing figures.")]
    return [
        _efficiency_vs_fp(runs),
        _resolution(runs),
        _pair_efficiency(runs),
        _residuals(runs),
        _event_view(runs),
    ]
