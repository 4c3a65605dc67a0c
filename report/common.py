"""What every figure family of the report shares: the run's files read once (``Run``), the
figure style, and ``Figure`` / ``Skipped``, the two things a family gives the page."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the report is written to files

import matplotlib.pyplot as plt
import mplhep

from recotrig.framework.files import is_run_output

__all__ = ["Figure", "ReportError", "Run", "Skipped", "figure", "load_run"]

#: the files of an output directory the report reads (all but run.json optional)
FILES = ("run.json", "comparison.json", "performance.json", "timing.json", "trigger.json")


class ReportError(ValueError):
    """An output directory the report cannot be built from (the message names the file)."""


@dataclass
class Run:
    """One finished output directory: its label and the JSON files it holds (``None`` if absent)."""

    label: str
    path: Path
    files: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        return self.files.get(name)

    @property
    def record(self) -> dict[str, Any]:
        return (self.files.get("run.json") or {}).get("record") or {}

    def options(self, algorithm_class: str) -> dict[str, Any]:
        """The recorded options of the first algorithm whose class name ends with ``algorithm_class``."""
        for entry in self.record.get("algorithms", []):
            if str(entry.get("class", "")).endswith("." + algorithm_class):
                return entry.get("options", {})
        return {}


@dataclass
class Figure:
    """A drawn figure: ``name`` is its file name stem, ``caption`` the sentence under it."""

    name: str
    figure: Any
    caption: str = ""


@dataclass
class Skipped:
    """A figure the files do not support, and why (a sentence shown on the page)."""

    name: str
    reason: str


def load_run(path: str | os.PathLike[str], label: str) -> Run:
    """Read the JSON files of output directory ``path``; ``ReportError`` naming the file when it is
    not a recotrig output or a file is not valid JSON."""
    directory = Path(path)
    if not directory.is_dir():
        raise ReportError(f"{directory}: not a directory")
    run = Run(label, directory)
    for name in FILES:
        file = directory / name
        if not file.exists():
            if name == "run.json":
                raise ReportError(f"{file}: missing: {directory} is not the output of a recotrig run")
            continue
        try:
            run.files[name] = json.loads(file.read_text())
        except (OSError, ValueError) as err:
            raise ReportError(f"{file}: cannot read it as JSON: {err}") from None
        if not isinstance(run.files[name], dict):
            raise ReportError(f"{file}: not a JSON object")
    if not is_run_output(directory):
        raise ReportError(f"{directory / 'run.json'}: not a recotrig run record (no 'sequence' and 'algorithms')")
    return run


#: the report's style: mplhep's ROOT style, sized for a page column (no minor ticks: they double
#: the drawing time)
STYLE = [
    mplhep.style.ROOT,
    {
        "font.size": 12,
        "legend.fontsize": 10,
        "figure.dpi": 80,
        "xtick.minor.visible": False,
        "ytick.minor.visible": False,
    },
]


def figure(ncols: int = 1, *, width: float = 6.4, height: float = 4.6, left: float = 0.9) -> tuple[Any, Any]:
    """A new figure (``ncols`` axes side by side) in the report's style (``STYLE``, applied by the
    page around all drawing); fixed margins (``left`` in inches), as a layout engine would draw
    every figure twice."""
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    fig.subplots_adjust(
        left=left / (width * ncols),
        right=1 - 0.25 / (width * ncols),
        bottom=0.7 / height,
        top=1 - 0.55 / height,
        wspace=1.1 / width,
    )
    return fig, (axes[0, 0] if ncols == 1 else list(axes.flat))


def short(label: str) -> str:
    """A row name without the window suffix."""
    return label.removesuffix(" window")
