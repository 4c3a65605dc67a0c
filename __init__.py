"""recotrig: reconstruction and trigger sequences that run ML algorithms side by side with ACTS.

The repository root is this package: ``framework/`` is ``recotrig.framework``, ``io/`` is
``recotrig.io`` and so on (see pyproject.toml and hatch_build.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recotrig.sequences.api import Result

__version__ = "0.1.0"


def run(
    sequence: str,
    *,
    input: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    n_events: int | None = None,
    skip: int = 0,
    jobs: int = 1,
    options: Mapping[str, Any] | None = None,
    keep: Iterable[str] = (),
    report: bool = False,
    progress: bool = False,
) -> Result:
    """Run ``sequence`` as ``recotrig run`` does and return its ``Result`` (see
    ``recotrig.sequences.api.run``). The engine is imported only when this is called, so
    ``import recotrig`` stays light."""
    from recotrig.sequences.api import run as run_sequence

    return run_sequence(
        sequence,
        input=input,
        output=output,
        n_events=n_events,
        skip=skip,
        jobs=jobs,
        options=options,
        keep=keep,
        report=report,
        progress=progress,
    )
