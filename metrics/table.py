"""Comparison table of algorithms: one row per algorithm ("ckf", "trackformer", "amvf",
"pvfinder", ...), columns efficiency, fake rate, duplicate / merge / split rates, resolution and
time per event.

``row_from_result`` turns a ``TrackingMetrics`` or ``VertexMetrics`` result into a row,
``format_table`` prints rows as aligned plain text, and ``write_table`` writes
``comparison.json`` and ``comparison.root`` (a TTree ``comparison`` written with uproot), each
atomically (written to a temporary file in the output folder, then renamed over the target).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.framework.files import root_file, write_json

__all__ = ["COLUMNS", "VARIANT_OPTIONS", "format_table", "row_label", "row_from_result", "write_table"]

#: column name -> header shown by ``format_table``; "algorithm" is text, the others numbers
COLUMNS: dict[str, str] = {
    "algorithm": "algorithm",
    "efficiency": "eff",
    "fake": "fake",
    "fp_per_event": "FP/event",
    "duplicate": "dup",
    "merge": "merge",
    "split": "split",
    "resolution_mm": "res [mm]",
    "ms_per_event": "ms/event",
}
_TEXT = "algorithm"
#: options that choose an algorithm's method: a row names them (``ActsAMVF(seeder=gaussian) [vertices_amvf]``)
VARIANT_OPTIONS = ("seeder",)
#: columns that change from run to run: printed, never written by ``write_table``
TIMING_COLUMNS = ("ms_per_event",)


def row_from_result(
    algorithm: str,
    result: Mapping[str, Any],
    *,
    style: str = "acts",
    ms_per_event: float | None = None,
) -> dict[str, Any]:
    """A table row from ``TrackingMetrics.result()`` or ``VertexMetrics.result()``.

    Tracking results give efficiency, fake and duplicate rates (resolution left empty). Vertex
    results give, with ``style="acts"``, efficiency, fake, merge and split rates and the core z
    resolution of clean matches; with ``style="window"`` (LHCb / PV-Finder), the window
    efficiency, false positives per event (column ``fp_per_event``, shown as ``FP/event``; ``fake``
    stays empty) and the window z resolution.
    ``ms_per_event`` overrides the timing recorded in the result.
    """
    nan = math.nan
    ms = result.get("ms_per_event", nan) if ms_per_event is None else ms_per_event
    row: dict[str, Any] = dict.fromkeys(COLUMNS, nan)
    row.update(algorithm=str(algorithm), ms_per_event=float(ms))
    if "duplicate_rate" in result:
        row.update(efficiency=result["efficiency"], fake=result["fake_rate"], duplicate=result["duplicate_rate"])
    elif style == "acts":
        row.update(
            efficiency=result["efficiency"],
            fake=result["fake_rate"],
            merge=result["merge_rate"],
            split=result["split_rate"],
            resolution_mm=result["z_sigma_core"],
        )
    elif style == "window":
        row.update(
            efficiency=result["window_efficiency"],
            fp_per_event=result["window_fp_per_event"],
            resolution_mm=result["window_z_sigma_core"],
        )
    else:
        raise ValueError(f"style must be 'acts' or 'window', not {style!r}")
    return {k: (v if k == _TEXT else float(v)) for k, v in row.items()}


def row_label(producer: str, key: str, record: Mapping[str, Any] | None = None) -> str:
    """The name of a row: the producing algorithm, the method options of ``VARIANT_OPTIONS`` it ran
    with (looked up in the run ``record``) and the store key of its collection:
    ``ActsAMVF(seeder=adaptive_grid) [vertices_amvf]``."""
    entry = next((a for a in (record or {}).get("algorithms", []) if a.get("name") == producer), {})
    options = entry.get("options", {})
    variant = ", ".join(f"{name}={options[name]}" for name in VARIANT_OPTIONS if name in options)
    return f"{producer}({variant}) [{key}]" if variant else f"{producer} [{key}]"


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The standard columns, then any extra ones the rows carry, in first-seen order."""
    names = list(COLUMNS)
    for row in rows:
        if _TEXT not in row:
            raise ValueError(f"table row has no 'algorithm' entry: {dict(row)}")
        names += [k for k in row if k not in names]
    return names


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:.4f}"


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Plain-text table, one line per row; text left-aligned, numbers right-aligned, missing
    values shown as "-"."""
    names = _columns(rows)
    header = [COLUMNS.get(n, n) for n in names]
    body = [[_cell(row.get(n)) for n in names] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in body)) if body else len(h) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if n == _TEXT else c.rjust(w) for n, c, w in zip(names, cells, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(cells) for cells in body)]) + "\n"


def _json_value(value: Any) -> Any:
    if isinstance(value, str) or value is None:
        return value
    value = float(value)
    return None if math.isnan(value) else value


def write_table(
    rows: Sequence[Mapping[str, Any]], outdir: str | os.PathLike[str], *, record: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write the table without its timing columns as ``comparison.json`` (``{"columns": [...],
    "rows": [...], "run": record}``, NaN as
    null) and ``comparison.root`` (TTree ``comparison``: branch ``algorithm`` (string) and one
    float64 branch per numeric column, NaN kept; the record as JSON in a TObjString ``run``) into
    ``outdir``, creating it, each committed atomically. Returns the paths."""
    out = Path(outdir)
    names = [n for n in _columns(rows) if n not in TIMING_COLUMNS]
    table = [{n: _json_value(row.get(n)) for n in names} for row in rows]
    paths = {"json": out / "comparison.json", "root": out / "comparison.root"}
    write_json(paths["json"], {"columns": names, "rows": table, "run": dict(record or {})})
    branches: dict[str, np.ndarray] = {_TEXT: np.asarray([str(r[_TEXT]) for r in rows], dtype=str)}
    for name in names:
        if name != _TEXT:
            branches[name] = np.asarray([_nan_if_none(row.get(name)) for row in rows], dtype=np.float64)
    with root_file(paths["root"]) as f:
        f["comparison"] = branches
        f["run"] = json.dumps(dict(record or {}), sort_keys=True, default=str)
    return paths


def _nan_if_none(value: Any) -> float:
    return math.nan if value is None else float(value)
