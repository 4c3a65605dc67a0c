"""Algorithms: the call signature is the data contract.

An algorithm declares its inputs as the parameters of ``execute`` (the annotation is the type, the
parameter name is the default store key, a default of ``None`` makes the input optional) and its
outputs as the names in ``outputs`` with the return annotation giving their types::

    class KDEBuilder(Algorithm):
        outputs = ("kde",)
        bins = Option(4000, "number of z bins")

        def execute(self, tracks: Tracks) -> KDE: ...

Every store key is an option of the instance, so the same algorithm can run twice in one sequence
under other keys: ``KDEBuilder(name="kde_ml", tracks="tracks_ml", kde="kde_ml", bins=2000)``.
Options (keys included) become command-line flags ``--KDEBuilder.bins``.

A serial algorithm (``serial = True``: writers, metrics) runs in the main process in event order;
if it defines ``end_of_run(result, producers)`` it is called with the run's ``RunResult`` (timing
included) and the map store key -> producing algorithm, just before ``finalize``.

Algorithms are created cheaply and must pickle before ``initialize``: heavy state (ONNX sessions,
ACTS geometry) is made in ``initialize``, which runs once in each process that executes events.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Algorithm", "Reader", "Writer", "Option", "Port", "ConfigError"]


class ConfigError(ValueError):
    """A sequence or an algorithm is configured wrongly; raised before any event runs."""


_MISSING = object()


class Option:
    """An option of an algorithm: a default, a help text and a type (taken from the default
    unless given). Read it as an attribute of the instance."""

    def __init__(self, default: Any, help: str = "", *, type: type | None = None, choices: typing.Sequence | None = None):
        self.default = default
        self.help = help
        self.type = type or (builtins_type(default) if default is not None else str)
        self.choices = tuple(choices) if choices is not None else None
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._options[self.name]

    def parse(self, text: str) -> Any:
        """Convert a command-line string to the option's type."""
        if self.type is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, got {text!r}")
        if self.type in (list, tuple):
            items = [s for s in text.split(",") if s.strip()]
            inner = builtins_type(self.default[0]) if self.default else str
            return self.type(inner(s.strip()) for s in items)
        return self.type(text)

    def check(self, owner: str, value: Any) -> Any:
        if value is not None and self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if value is not None and self.default is not None and not isinstance(value, self.type):
            raise ConfigError(f"{owner}: option {self.name!r} must be {self.type.__name__}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{owner}: option {self.name!r} must be one of {list(self.choices)}, got {value!r}")
        return value


def builtins_type(value: Any) -> type:
    return type(value)


@dataclass(frozen=True)
class Port:
    """One declared input or output: its name in the signature, the store key it is bound to,
    its type and (for inputs) whether it may be absent."""

    name: str
    key: str
    type: type
    optional: bool = False


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); ``X`` -> (X, False)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


class Algorithm:
    """Base of every algorithm. See the module docstring for how inputs, outputs and options are
    declared."""

    outputs: ClassVar[tuple[str, ...]] = ()
    #: writers and other consumers that must see every event in order run in the main process
    serial: ClassVar[bool] = False
    _option_specs: ClassVar[dict[str, Option]] = {}
    _input_specs: ClassVar[dict[str, tuple[Any, bool]]] = {}
    _output_types: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: dict[str, Option] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Option):
                    specs[name] = value
        cls._option_specs = specs
        cls._input_specs, cls._output_types = cls._signature()
        clash = (set(cls._input_specs) | set(cls._output_types)) & set(specs)
        if clash:
            raise TypeError(f"{cls.__name__}: names used both as option and as input/output: {sorted(clash)}")

    @classmethod
    def _signature(cls) -> tuple[dict[str, tuple[Any, bool]], dict[str, Any]]:
        is_reader = hasattr(cls, "read")
        method = cls.read if is_reader else cls.execute
        try:
            hints = typing.get_type_hints(method)
        except Exception as err:  # unresolvable forward reference
            raise TypeError(f"{cls.__name__}: cannot resolve the annotations of {method.__name__}: {err}") from None
        inputs: dict[str, tuple[Any, bool]] = {}
        if not is_reader:
            for param in list(inspect.signature(method).parameters.values())[1:]:
                if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    continue
                annotation, optional = _strip_optional(hints.get(param.name, object))
                inputs[param.name] = (annotation, optional or param.default is None)
        returned = hints.get("return", type(None))
        outs = tuple(cls.outputs)
        if not outs:
            types_ = ()
        elif typing.get_origin(returned) is tuple:
            types_ = tuple(_strip_optional(a)[0] for a in typing.get_args(returned))
        else:
            types_ = (_strip_optional(returned)[0],)
        if outs and len(types_) != len(outs) and cls.execute is not Algorithm.execute:
            raise TypeError(f"{cls.__name__}: outputs {outs} but return annotation gives {len(types_)} type(s)")
        return inputs, dict(zip(outs, types_ or (object,) * len(outs)))

    def __init__(self, name: str | None = None, **settings: Any):
        self.name = name or type(self).__name__
        self._options = {n: o.default for n, o in self._option_specs.items()}
        self._keys = {n: n for n in (*self._input_specs, *self._output_types)}
        self.configure(**settings)

    def configure(self, **settings: Any) -> None:
        """Set options and rebind store keys by name (what the CLI's overrides call)."""
        for key, value in settings.items():
            if key in self._option_specs:
                self._options[key] = self._option_specs[key].check(self.name, value)
            elif key in self._keys:
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{self.name}: store key for {key!r} must be a non-empty string, got {value!r}")
                self._keys[key] = value
            else:
                known = sorted([*self._option_specs, *self._keys])
                raise ConfigError(f"{self.name}: unknown option {key!r}; known: {known}")

    # -- declared data flow ----------------------------------------------------------------------
    def input_ports(self) -> list[Port]:
        return [Port(n, self._keys[n], t, opt) for n, (t, opt) in self._input_specs.items()]

    def output_ports(self) -> list[Port]:
        return [Port(n, self._keys[n], t) for n, t in self._output_types.items()]

    def options(self) -> dict[str, Any]:
        """Current values of every option and store key (the CLI lists these)."""
        return {**self._options, **self._keys}

    @classmethod
    def option_specs(cls) -> dict[str, Option]:
        return dict(cls._option_specs)

    # -- life cycle --------------------------------------------------------------------------------
    def initialize(self) -> None:
        """Create heavy state. Runs once per process, before the first event."""

    def execute(self, **inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement execute")

    def finalize(self) -> None:
        """Runs once after the last event (writers write here)."""

    def __getstate__(self) -> dict:
        # only configuration travels to worker processes; heavy state is rebuilt by initialize
        return {"name": self.name, "_options": self._options, "_keys": self._keys}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Reader(Algorithm):
    """An algorithm that produces events from a store: no inputs, ``read(entry)`` returns the
    outputs of one entry. ``prepare(start, stop)`` is called before a chunk of entries so readers
    can load the range at once (ROOT entry ranges, CSV files)."""

    def n_events(self) -> int:
        raise NotImplementedError

    def event_id(self, entry: int) -> int:
        return entry

    def prepare(self, start: int, stop: int) -> None:
        """Load entries [start, stop) ahead of ``read`` calls (optional)."""

    def read(self, entry: int) -> Any:
        raise NotImplementedError


class Writer(Algorithm):
    """An algorithm that consumes events and writes them at ``finalize``. Writers run in the main
    process and see events in order, whatever the executor. When a run fails, ``discard`` is
    called instead of ``finalize``: a writer must then leave nothing under its final file name."""

    serial = True

    def discard(self) -> None:
        """Drop what was buffered or written to temporary files (run failed or was interrupted)."""
