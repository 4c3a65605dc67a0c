"""recotrig: reconstruction and trigger sequences that run ML algorithms side by side with ACTS.

The repository root is this package: ``framework/`` is ``recotrig.framework``, ``io/`` is
``recotrig.io`` and so on (see pyproject.toml and hatch_build.py). ``recotrig.run(...)`` runs a
sequence from Python (``recotrig.sequences.api.run``); the engine is imported only when it is first
used, so ``import recotrig`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recotrig.sequences.api import run

__version__ = "0.1.0"
__all__ = ["run"]


def __getattr__(name: str) -> Any:
    if name == "run":
        from recotrig.sequences.api import run

        return run
    raise AttributeError(f"module 'recotrig' has no attribute {name!r}")
