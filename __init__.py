"""recotrig: reconstruction and trigger sequences that run ML algorithms side by side with ACTS.

The repository root is this package: ``framework/`` is ``recotrig.framework``, ``io/`` is
``recotrig.io`` and so on (see pyproject.toml and hatch_build.py).
"""

__version__ = "0.1.0"
