"""Options as command-line flags (k4run style): the one mechanism every recotrig command uses.

``add_flags`` adds one flag per option and store key of an algorithm — ``--ALG.OPTION`` in a
sequence, or ``--option-name`` for a command built around one algorithm (``recotrig
simulate``) — and ``apply_flags`` parses the given strings with each option's own type and
checks, naming the algorithm and the option on a bad value, before any event runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from recotrig.framework.algorithm import Algorithm, ConfigError

__all__ = ["add_flags", "apply_flags", "set_from_text"]

_DEST = "opt::"


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def add_flags(
    parser: argparse.ArgumentParser, alg: Algorithm, *, qualified: bool = True, skip: tuple[str, ...] = ()
) -> None:
    """Add a flag for every option and store key of ``alg``: ``--ALG.OPTION`` when
    ``qualified``, else ``--option-name`` (underscores as dashes)."""
    group = parser.add_argument_group(
        f"{alg.name} ({type(alg).__name__})", (type(alg).__doc__ or "").strip().split("\n")[0]
    )
    specs = alg.option_specs()
    for key, value in alg.options().items():
        if key in skip:
            continue
        spec = specs.get(key)
        if spec is not None:
            text = spec.help + (f" (choices: {', '.join(map(str, spec.choices))})" if spec.choices else "")
        else:
            text = "store keys, comma-separated" if key in alg.many_inputs() else "store key"
        flag = f"--{alg.name}.{key}" if qualified else "--" + key.replace("_", "-")
        group.add_argument(
            flag,
            dest=f"{_DEST}{alg.name}::{key}",
            metavar="VALUE",
            default=argparse.SUPPRESS,
            help=f"{text} [{_show(value)}]",
        )


def set_from_text(algorithms: list[Algorithm], name: str, key: str, text: str) -> None:
    """Set ``name.key`` from a command-line string, parsed and checked by the option."""
    by_name = {a.name: a for a in algorithms}
    if name not in by_name:
        raise ConfigError(f"{name}.{key}: no algorithm named {name!r}; there are {sorted(by_name)}")
    alg = by_name[name]
    spec = alg.option_specs().get(key)
    if spec is None and key not in alg.options():
        raise ConfigError(f"{name} has no option {key!r}; it has {sorted(alg.options())}")
    try:
        if spec is not None:
            value = spec.parse(text)
        elif key in alg.many_inputs():
            value = [s.strip() for s in text.split(",") if s.strip()]
        else:
            value = text
    except ValueError as err:
        raise ConfigError(f"{name}.{key}: cannot use {text!r}: {err}") from None
    alg.configure(**{key: value})


def apply_flags(args: argparse.Namespace, algorithms: list[Algorithm]) -> None:
    """Apply every flag added by ``add_flags`` that was given."""
    for dest, value in vars(args).items():
        if dest.startswith(_DEST):
            name, key = dest[len(_DEST) :].split("::", 1)
            set_from_text(algorithms, name, key, value)
