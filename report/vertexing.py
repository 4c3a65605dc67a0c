"""Vertexing figures: each vertex finder's window efficiency against its false positives per
event (an operating point each; ``threshold_scan`` is where a PV-Finder threshold-scan curve joins
them once ``performance.json`` holds one), and the z resolutions recorded per finder."""

from __future__ import annotations

from typing import Any

import numpy as np

from recotrig.report.common import Figure, Run, Skipped, figure

__all__ = ["figures", "threshold_scan"]


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


def _efficiency_vs_fp(runs: list[Run]) -> Figure:
    fig, ax = figure()
    curves = 0
    for run in runs:
        for key, res in _vertices(run).items():
            label = key if len(runs) == 1 else f"{key} ({run.label})"
            scan = threshold_scan(res)
            if scan is not None:
                curves += 1
                ax.plot(scan["fp_per_event"], scan["efficiency"], "-", label=f"{label} (threshold scan)")
            n, k = res.get("n_window_eligible") or 0, res.get("window_efficiency")
            err = np.sqrt(k * (1 - k) / n) if n and k is not None else 0.0
            ax.errorbar([res["window_fp_per_event"]], [k], yerr=[err], fmt="o", ms=7, label=label)
    ax.set_xlabel("false positives per event")
    ax.set_ylabel("window efficiency")
    ax.legend(loc="best")
    note = "" if curves else " No threshold-scan curve is recorded in performance.json yet: operating points only."
    return Figure(
        "vertex_efficiency_vs_fp",
        fig,
        "Window efficiency against false positives per event, one point per vertex finder (binomial error)." + note,
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
        Skipped(
            "vertex_z_residuals",
            "z residual distributions: performance.json keeps their core σ and RMS "
            "only (shown above), not the residuals.",
        ),
    ]
