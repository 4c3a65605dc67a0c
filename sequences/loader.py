"""Finding and building sequences.

A sequence is a small Python file (a k4run-style steering file) that defines::

    def build(*, input: str | None, output: str) -> list[Algorithm]: ...

and may set ``DEFAULT_INPUT`` (used when ``--input`` is not given) and a docstring (shown by
``--help``). Named sequences live in this folder (``recotrig run tracking``); any other file is
given by its path (``recotrig run my_sequence.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from ..framework import Algorithm, ConfigError

HERE = Path(__file__).parent
_NOT_SEQUENCES = {"__init__", "cli", "loader", "samples", "simulate_cmd", "simulate_l1_cmd", "firmware_cmd"}


def available() -> list[str]:
    """Names of the sequences shipped with recotrig."""
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem not in _NOT_SEQUENCES and not p.stem.startswith("_"))


def load(spec: str) -> ModuleType:
    """A sequence module from a shipped name or a file path."""
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"sequence file {spec!r} does not exist")
        name = f"recotrig_user_sequence_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # so that its algorithm classes pickle for worker processes
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            raise SteeringError(path, "cannot be loaded", err) from err
    else:
        if spec not in available():
            raise ConfigError(f"unknown sequence {spec!r}; shipped sequences: {', '.join(available())}, or a .py file")
        module = importlib.import_module(f"recotrig.sequences.{spec}")
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
            frames = [f for f in traceback.extract_tb(err.__traceback__)
                      if Path(f.filename).resolve() == Path(path).resolve()]
            if frames:
                where = f"{path}:{frames[-1].lineno}"
        super().__init__(f"sequence {where}: {what}: {type(err).__name__}: {err}")


def build(module: ModuleType, *, input: str | None, output: str) -> list[Algorithm]:
    source = getattr(module, "__file__", None) or module.__name__
    try:
        built = module.build(input=input if input is not None else getattr(module, "DEFAULT_INPUT", None),
                             output=output)
    except ConfigError:
        raise
    except Exception as err:
        raise SteeringError(source, "build() failed", err) from err
    if built is None:
        raise ConfigError(f"sequence {source}: build() returned nothing; it must return a list of algorithms")
    try:
        algorithms = list(built)
    except TypeError:
        raise ConfigError(f"sequence {source}: build() returned {type(built).__name__}, not a list of "
                          "algorithms") from None
    for alg in algorithms:
        if not isinstance(alg, Algorithm):
            raise ConfigError(f"sequence {module.__name__}: build() returned {alg!r}, which is not an Algorithm")
    return algorithms
