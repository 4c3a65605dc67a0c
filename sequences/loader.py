"""Finding and building sequences.

A sequence is a small Python file (a k4run-style steering file) that defines::

    def build(*, input: str | None, output: str) -> list[Algorithm]: ...

and may set ``DEFAULT_INPUT`` (used when ``--input`` is not given) and a docstring (shown by
``--help``). Named sequences live in this folder (``recotrig run tracking``); any other file is
given by its path, ending in ``.py`` (``recotrig run my_sequence.py``). A shipped name always
means the shipped sequence: a file ``tracking`` or ``tracking.py`` in the current directory is
run as ``./tracking.py``, never instead of it (``PRECEDENCE``, shown by ``--help``).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from recotrig.framework import Algorithm, ConfigError

HERE = Path(__file__).parent
_NOT_SEQUENCES = {"__init__", "api", "cli", "loader", "samples", "simulate_cmd", "simulate_l1_cmd", "firmware_cmd"}


def available() -> list[str]:
    """Names of the sequences shipped with recotrig."""
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in _NOT_SEQUENCES and not p.stem.startswith("_"))


PRECEDENCE = (
    "a shipped name means the shipped sequence, even where a file of that name is in the current "
    "directory; any other sequence is a path to a Python file ending in .py (./NAME.py)"
)


def load(spec: str) -> ModuleType:
    """A sequence module from a shipped name or a ``.py`` file path (``PRECEDENCE``)."""
    path = Path(spec)
    if spec in available():
        module = importlib.import_module(f"recotrig.sequences.{spec}")
    elif not spec.endswith(".py"):
        if path.is_file():
            raise ConfigError(
                f"sequence file {spec}: a steering file is Python and its name ends in .py "
                f"(rename it {path.with_suffix('.py').name})"
            )
        raise ConfigError(f"unknown sequence {spec!r}; shipped sequences: {', '.join(available())}, or a .py file")
    elif not path.is_file():
        shipped = f" (the shipped sequence is '{path.stem}')" if path.stem in available() else ""
        raise ConfigError(
            f"sequence file {spec!r} " + ("is not a file" if path.exists() else "does not exist") + shipped
        )
    else:
        name = "recotrig_user_sequence_" + re.sub(r"\W", "_", path.stem)
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"sequence file {spec}: cannot be loaded as a Python module")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # so that its algorithm classes pickle for worker processes
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            raise SteeringError(path, "cannot be loaded", err) from err
    if not callable(getattr(module, "build", None)):
        raise ConfigError(f"sequence {spec!r} defines no build(*, input, output) function")
    return module


class SteeringError(ConfigError):
    """A sequence file fails to load or to build: one line naming the file and the line."""

    def __init__(self, path: str | Path, what: str, err: BaseException):
        where = str(path)
        if isinstance(err, SyntaxError) and err.filename and Path(err.filename).resolve() == Path(path).resolve():
            where = f"{path}:{err.lineno}"
        else:
            frames = [
                f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).resolve() == Path(path).resolve()
            ]
            if frames:
                where = f"{path}:{frames[-1].lineno}"
        super().__init__(f"sequence {where}: {what}: {type(err).__name__}: {err}")


def build(module: ModuleType, *, input: str | None, output: str) -> list[Algorithm]:
    source = getattr(module, "__file__", None) or module.__name__
    try:
        built = module.build(
            input=input if input is not None else getattr(module, "DEFAULT_INPUT", None), output=output
        )
    except ConfigError:
        raise
    except Exception as err:
        raise SteeringError(source, "build() failed", err) from err
    if built is None:
        raise ConfigError(f"sequence {source}: build() returned nothing; it must return a list of algorithms")
    if not isinstance(built, (list, tuple)):
        raise ConfigError(f"sequence {source}: build() returned {type(built).__name__}, not a list of algorithms")
    named: dict[str, int] = {}
    for i, alg in enumerate(built):
        if not isinstance(alg, Algorithm):
            raise ConfigError(f"sequence {source}: build() returned {alg!r}, which is not an Algorithm")
        if alg.name in named:
            first = built[named[alg.name]]
            raise ConfigError(
                f"sequence {source}: two algorithms are named {alg.name!r} (number "
                f"{named[alg.name] + 1}, a {type(first).__name__}, and number {i + 1}, a "
                f"{type(alg).__name__}); give each its own name="
            )
        named[alg.name] = i
    return list(built)
