"""Tracking figures: efficiency, fake and duplicate rates versus pT and |eta| per track collection
(binomial errors, from ``performance.json``'s ``binned``), the TrackML score per event of two
finders against each other, the events where they disagree most, and an event display of those
events (hits coloured by found track, truth overlaid) when the run kept the tracks and its input
store is readable."""

from __future__ import annotations

from typing import Any

import numpy as np

from recotrig.io.store import open_store
from recotrig.report.common import Figure, Run, Skipped, figure

__all__ = ["figures", "disagreements"]

_RATES = (
    ("efficiency", "n_reconstructable", "efficiency"),
    ("fake_rate", "n_tracks", "fake rate"),
    ("duplicate_rate", "n_tracks", "duplicate rate"),
)
_AXES = (("pt", r"$p_T$ [GeV]", True), ("eta", r"$|\eta|$", False))
#: how many events of greatest disagreement are listed and displayed
N_EVENTS = 2


def _tracks(run: Run) -> dict[str, dict[str, Any]]:
    """The track collections of a run's ``performance.json`` (those with ``binned`` figures)."""
    results = (run.get("performance.json") or {}).get("results", {})
    return {key: res for key, res in results.items() if isinstance(res, dict) and "binned" in res}


def _binomial(rate: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sqrt(np.clip(rate * (1 - rate), 0, None) / n)


def _binned(runs: list[Run]) -> list[Figure]:
    out = []
    for rate, count, title in _RATES:
        fig, axes = figure(2)
        for ax, (var, xlabel, log) in zip(axes, _AXES):
            for run in runs:
                for key, res in _tracks(run).items():
                    b = res["binned"][var]
                    edges = np.asarray(b["edges"], float)
                    y = np.asarray([np.nan if v is None else v for v in b[rate]], float)
                    n = np.asarray(b[count], float)
                    shown = n > 0
                    centres = 0.5 * (edges[1:] + edges[:-1])
                    label = key if len(runs) == 1 else f"{key} ({run.label})"
                    ax.errorbar(
                        centres[shown],
                        y[shown],
                        yerr=_binomial(y, n)[shown],
                        xerr=(0.5 * np.diff(edges))[shown],
                        fmt="o",
                        ms=4,
                        label=label,
                    )
            ax.set_xlabel(xlabel)
            ax.set_ylabel(title)
            if log:
                ax.set_xscale("log")
                ax.set_xlim(0.1, None)
            ax.set_ylim(-0.02, 1.05)
            ax.legend(loc="best")
        out.append(
            Figure(
                f"tracking_{rate}",
                fig,
                f"{title.capitalize()} versus pT and |η| per track collection "
                "(binomial errors; bins without entries left out).",
            )
        )
    return out


def disagreements(run: Run) -> list[dict[str, Any]]:
    """Events where two track collections' TrackML scores differ most (first two collections of the
    run): ``[{run_number, event_id, scores: {key: score}, difference}]``, largest first."""
    tracks = _tracks(run)
    keys = list(tracks)[:2]
    if len(keys) < 2:
        return []
    per = [tracks[k]["per_event"] for k in keys]
    index = [{(r, e): s for r, e, s in zip(p["run_number"], p["event_id"], p["trackml_score"])} for p in per]
    common = [ev for ev in index[0] if ev in index[1]]
    rows = [
        {
            "run_number": r,
            "event_id": e,
            "scores": {k: index[i][(r, e)] for i, k in enumerate(keys)},
            "difference": index[0][(r, e)] - index[1][(r, e)],
        }
        for r, e in common
    ]
    return sorted(rows, key=lambda row: -abs(row["difference"]))[:N_EVENTS]


def _scores(run: Run) -> Figure | Skipped:
    tracks = _tracks(run)
    if len(tracks) < 2:
        return Skipped(
            "tracking_score_per_event",
            f"{run.label}: one track collection only "
            f"({', '.join(tracks) or 'none'}): no finder to compare the TrackML score per event with.",
        )
    (ka, a), (kb, b) = list(tracks.items())[:2]
    ia = {(r, e): s for r, e, s in zip(*(a["per_event"][c] for c in ("run_number", "event_id", "trackml_score")))}
    ib = {(r, e): s for r, e, s in zip(*(b["per_event"][c] for c in ("run_number", "event_id", "trackml_score")))}
    common = [ev for ev in ia if ev in ib]
    fig, ax = figure(width=5.2, height=4.8)
    x, y = np.asarray([ib[ev] for ev in common]), np.asarray([ia[ev] for ev in common])
    ax.plot(x, y, "o", ms=5)
    lo, hi = float(min(x.min(), y.min(), 1.0)) - 0.02, float(max(x.max(), y.max(), 0.0)) + 0.02
    ax.plot([lo, hi], [lo, hi], "--", color="grey", lw=1)
    ax.set_xlabel(f"TrackML score, {kb}")
    ax.set_ylabel(f"TrackML score, {ka}")
    return Figure(
        "tracking_score_per_event",
        fig,
        f"TrackML score per event ({len(common)} events), {ka} against "
        f"{kb}: above the diagonal, {ka} does better on that event.",
    )


def _input_file(run: Run) -> str | None:
    fileset = run.record.get("fileset") or []
    if len(fileset) == 1 and isinstance(fileset[0], dict):
        return fileset[0].get("file")
    return None


def _display(run: Run, events: list[dict[str, Any]]) -> list[Figure | Skipped]:
    stores = [p for p in ("reco.root", "tracks.root") if (run.path / p).exists()]
    source = _input_file(run)
    if not stores or source is None or not events:
        why = (
            "the output holds no tracks store (reco.root or tracks.root)"
            if not stores
            else "the run read several input files or none"
            if source is None
            else "no events to show"
        )
        return [Skipped("tracking_event_display", f"{run.label}: no event display: {why}.")]
    try:
        output = open_store(run.path / stores[0])
        inputs = open_store(source)
    except (OSError, ValueError) as err:
        return [Skipped("tracking_event_display", f"{run.label}: no event display: cannot open the stores: {err}.")]
    start = (run.record.get("entries") or [0, 0])[0]
    ids = next(iter(_tracks(run).values()))["per_event"]["event_id"]
    keys = [k for k in _tracks(run) if k in output.collections]
    out: list[Figure | Skipped] = []
    for ev in events:
        if ev["event_id"] not in ids or not keys:
            continue
        i = ids.index(ev["event_id"])  # the output store holds the processed events in order
        reco = output.read(i, i + 1, collections=keys)[0]
        event = inputs.read(start + i, start + i + 1, collections=["hits", "truth"])[0]
        hits, truth = event["hits"], event["truth"]
        x, y, z = (np.asarray(hits[c]) for c in ("x", "y", "z"))
        r = np.hypot(x, y)
        fig, axes = figure(2 * len(keys), width=4.6, height=4.4)
        for j, key in enumerate(keys):
            owner = np.full(len(x), -1)
            position = {h: n for n, h in enumerate(np.asarray(hits["hit_id"]).tolist())}
            for t, hit_ids in enumerate(reco[key]["hit_ids"].tolist()):
                owner[[position[h] for h in hit_ids if h in position]] = t
            pid = np.asarray(truth["particle_id"])
            for ax, (u, v, xl, yl) in zip(
                axes[2 * j : 2 * j + 2], ((x, y, "x [mm]", "y [mm]"), (z, r, "z [mm]", "r [mm]"))
            ):
                ax.plot(u[owner < 0], v[owner < 0], ",", color="lightgrey", rasterized=True)
                ax.scatter(u[owner >= 0], v[owner >= 0], c=owner[owner >= 0] % 20, cmap="tab20", s=1.5, rasterized=True)
                order = np.lexsort((r, pid))  # truth: each particle's hits joined outwards, one line in all
                cut = np.flatnonzero(np.diff(pid[order]) != 0) + 1
                pu, pv = np.insert(u[order], cut, np.nan), np.insert(v[order], cut, np.nan)
                found = np.isin(pid, pid[(owner >= 0) & (pid > 0)])  # the truth of the particles found
                keep = np.insert(found[order], cut, True)
                ax.plot(pu[keep], pv[keep], "-", color="black", lw=0.3, alpha=0.5, rasterized=True)
                ax.set_xlabel(xl)
                ax.set_ylabel(yl)
                ax.set_title(f"{key}", fontsize=11)
        name = f"tracking_event_{ev['run_number']}_{ev['event_id']}"
        out.append(
            Figure(
                name,
                fig,
                f"Event {ev['event_id']} (run {ev['run_number']}): x–y and r–z of its hits, "
                "coloured by the track that found them (grey: none); black lines: the truth particles.",
            )
        )
    return out


def figures(runs: list[Run]) -> list[Figure | Skipped]:
    """The tracking figures of ``runs`` (overlaid where several)."""
    if not any(_tracks(run) for run in runs):
        return [Skipped("tracking", "No track collection in performance.json: no tracking figures.")]
    out: list[Figure | Skipped] = [*_binned(runs)]
    for run in runs:
        if _tracks(run):
            out.append(_scores(run))
            out += _display(run, disagreements(run) or _first_events(run))
    return out


def _first_events(run: Run) -> list[dict[str, Any]]:
    """With one finder there is no disagreement: the display shows the first event."""
    per = next(iter(_tracks(run).values()))["per_event"]
    return [{"run_number": r, "event_id": e} for r, e in zip(per["run_number"], per["event_id"])][:1]
