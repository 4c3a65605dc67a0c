"""The report of a run: figures (matplotlib with mplhep's styles) and one self-contained HTML page,
built from the files of a finished output directory alone (``build``)."""

from recotrig.report.common import ReportError
from recotrig.report.page import build, figures

__all__ = ["ReportError", "build", "figures"]
