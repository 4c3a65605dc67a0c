"""The report page: ``build`` reads the files of one or more finished output directories, draws
every figure family (tracking, vertexing, trigger, timing), and writes ``report.html`` — one
self-contained file, every figure embedded as a PNG, no external resource — with each figure
also as ``figures/NAME.png`` and ``figures/NAME.pdf`` beside it, all committed atomically."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from recotrig.framework.files import atomic_path
from recotrig.report import timing, tracking, trigger, vertexing
from recotrig.report.common import STYLE, Figure, ReportError, Run, Skipped, load_run

__all__ = ["FAMILIES", "build", "figures"]

#: the figure families, in page order: (title, module with ``figures(runs)``)
FAMILIES = (("Tracking", tracking), ("Vertexing", vertexing), ("Trigger", trigger), ("Timing", timing))
#: where a report of several runs goes when no output is given
DEFAULT_OUTPUT = "recotrig-report"

_CSS = """body{font-family:sans-serif;margin:1.5em auto;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}
td.n{text-align:right;font-family:monospace}figure{display:inline-block;margin:.5em;vertical-align:top}
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:13px;max-width:640px}
p.skip{color:#666;font-style:italic}code{font-size:12px}"""


def build(
    output_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    labels: Sequence[str] | None = None,
    output: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the report of output directory ``output_dir`` (or of several, overlaid, named by
    ``labels``) into directory ``output`` (default: the run's own directory; for several runs
    ``recotrig-report``) and return the path of its ``report.html``. ``ReportError`` (a
    ``ValueError``) naming the file when a directory is not a recotrig output or a file is corrupt."""
    dirs = [output_dir] if isinstance(output_dir, (str, os.PathLike)) else list(output_dir)
    if not dirs:
        raise ReportError("no output directory given")
    labels = list(labels) if labels else (["run"] if len(dirs) == 1 else [Path(d).name or str(d) for d in dirs])
    if len(labels) != len(dirs):
        raise ReportError(f"{len(labels)} labels for {len(dirs)} output directories")
    runs = [load_run(d, label) for d, label in zip(dirs, labels)]
    target = Path(output) if output is not None else (runs[0].path if len(runs) == 1 else Path(DEFAULT_OUTPUT))
    sections = []
    with plt.style.context(STYLE):
        for title, family in FAMILIES:
            items = family.figures(runs)
            sections.append((title, [_emit(item, target) if isinstance(item, Figure) else item for item in items]))
    page = _page(runs, sections)
    with atomic_path(target / "report.html") as temp:
        temp.write_text(page)
    return target / "report.html"


def figures(output_dir: str | os.PathLike[str], *, label: str = "run") -> dict[str, Any]:
    """The figures of output directory ``output_dir`` as matplotlib Figures by name, drawn as
    ``build`` draws them but written nowhere (``ReportError`` as for ``build``). They are closed in
    pyplot (no figure window is left open), and still show and save."""
    run = load_run(output_dir, label)
    out = {}
    with plt.style.context(STYLE):
        for _, family in FAMILIES:
            for item in family.figures([run]):
                if isinstance(item, Figure):
                    plt.close(item.figure)
                    out[item.name] = item.figure
    return out


def _emit(item: Figure, target: Path) -> tuple[Figure, str]:
    """Save a figure as PNG and PDF under ``target/figures`` and return it with its PNG as base64."""
    buffer = io.BytesIO()
    item.figure.savefig(buffer, format="png", dpi=80)
    png = buffer.getvalue()
    with atomic_path(target / "figures" / f"{item.name}.png") as temp:
        temp.write_bytes(png)
    with atomic_path(target / "figures" / f"{item.name}.pdf") as temp:
        item.figure.savefig(temp, format="pdf")
    plt.close(item.figure)
    return item, base64.b64encode(png).decode()


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:.4f}" if isinstance(value, float) else str(value)
    return _esc(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=n>{_number(c)}</td>" if isinstance(c, (int, float)) or c is None else f"<td>{_esc(c)}</td>"
            for c in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


_NAMES = {"fake": "fake rate", "fp_per_event": "FP/event", "duplicate": "dup", "resolution_mm": "res [mm]"}


def _comparison(run: Run) -> str:
    table = run.get("comparison.json")
    if not table:
        return "<p class=skip>No comparison.json: no comparison table.</p>"
    columns = [c for c in table.get("columns", []) if any(r.get(c) is not None for r in table.get("rows", []))]
    return _table([_NAMES.get(c, c) for c in columns], [[r.get(c) for c in columns] for r in table.get("rows", [])])


def _definitions(run: Run) -> str:
    """The selections behind each figure, from the options the run recorded."""
    perf = run.options("Performance")
    results = (run.get("performance.json") or {}).get("results", {})
    first = {
        kind: next((r for r in results.values() if isinstance(r, dict) and kind in r), {})
        for kind in ("binned", "window_efficiency")
    }
    items = []
    if first["binned"]:
        t = first["binned"]
        items.append(
            f"<li><b>Tracking efficiency</b>: found particles over reconstructable ones — pT ≥ "
            f"{_esc(perf.get('min_pt', t.get('min_pt')))} GeV, ≥ {_esc(perf.get('min_hits', t.get('min_hits')))}"
            f" hits, |η| &lt; {_esc(perf.get('max_abs_eta', '?'))}, produced within "
            f"{_esc(perf.get('max_vertex_r', '?'))} mm of the beam line; a track matches a particle with "
            f"purity ≥ {_esc(t.get('min_purity'))}. Fake and duplicate rates: over all tracks.</li>"
        )
    if first["window_efficiency"]:
        v = first["window_efficiency"]
        items.append(
            f"<li><b>Vertex efficiency</b> (ACTS style): truth vertices with ≥ {_esc(v.get('min_tracks'))} "
            f"reconstructable tracks, matched by {_esc(v.get('matching'))}; merge, split and fake rates over "
            f"reconstructed vertices.</li>"
        )
        items.append(
            f"<li><b>Window efficiency</b> (LHCb / PV-Finder style): truth vertices with ≥ "
            f"{_esc(v.get('window_min_tracks'))} tracks found within |Δz| ≤ {_esc(v.get('z_window'))} mm; "
            "<b>FP/event</b>: reconstructed vertices with no truth vertex in the window, per event.</li>"
        )
    if run.get("trigger.json"):
        t = run.get("trigger.json")
        items.append(
            f"<li><b>Trigger</b>: signal efficiency against {_esc(', '.join(t.get('background', [])))} "
            f"({_esc(t.get('n_background'))} crossings); an event passes when its score is above the "
            "threshold; rates are the background fraction × 40 MHz.</li>"
        )
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _record(run: Run) -> str:
    record = run.record
    files = [
        [role, f.get("path"), f.get("bytes"), f.get("sha256")]
        for role, entries in record.get("files", {}).items()
        for f in entries
    ]
    options = [
        [a.get("name"), ", ".join(f"{k}={v}" for k, v in a.get("options", {}).items())]
        for a in record.get("algorithms", [])
    ]
    timing_info = run.get("timing.json") or {}
    head = (
        f"<p>sequence <code>{_esc(record.get('sequence'))}</code>, entries {_esc(record.get('entries'))}, "
        f"{_esc((run.get('run.json') or {}).get('processed'))} events processed; executor "
        f"{_esc(timing_info.get('executor', '-'))}, {_esc(timing_info.get('jobs', '-'))} job(s), wall "
        f"{_number(timing_info.get('wall_s'))} s</p>"
    )
    return head + _table(["role", "file", "bytes", "sha256"], files) + _table(["algorithm", "options"], options)


def _page(runs: list[Run], sections: list[tuple[str, list[Any]]]) -> str:
    title = "recotrig report: " + ", ".join(f"{r.label} ({r.record.get('sequence')})" for r in runs)
    parts = [
        f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_esc(title)}</title>"
        f"<link rel=icon href='data:,'><style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
    ]
    for run in runs:
        parts.append(f"<h2>{_esc(run.label)}: <code>{_esc(run.path)}</code></h2>{_definitions(run)}{_comparison(run)}")
        events = tracking.disagreements(run)
        if events:
            keys = list(events[0]["scores"])
            parts.append(
                "<p>Events where the finders disagree most (TrackML score):</p>"
                + _table(
                    ["run", "event", *keys, "difference"],
                    [[e["run_number"], e["event_id"], *e["scores"].values(), e["difference"]] for e in events],
                )
            )
    for title_, items in sections:
        parts.append(f"<h2>{_esc(title_)}</h2>")
        for item in items:
            if isinstance(item, Skipped):
                parts.append(f"<p class=skip>{_esc(item.reason)}</p>")
            else:
                fig, png = item
                parts.append(
                    f"<figure id='{_esc(fig.name)}'><img class=figure alt='{_esc(fig.name)}' "
                    f"src='data:image/png;base64,{png}'><figcaption>{_esc(fig.caption)}</figcaption></figure>"
                )
    parts.append("<h2>Run record</h2>")
    for run in runs:
        parts.append(f"<h3>{_esc(run.label)}</h3>{_record(run)}")
    parts.append("</body></html>\n")
    return "".join(parts)
