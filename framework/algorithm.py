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
Options (keys included) become command-line flags ``--KDEBuilder.bins``. Read a port's key with
``self.key("tracks")``.

Several inputs of one type are one parameter annotated ``Many[T]``, bound to a list of keys (its
default in the signature is the default list); ``execute`` gets a dict key -> value::

    class Performance(Metric):
        def execute(self, truth: HitTruth, tracks: Many[Tracks] = ("tracks",)) -> None: ...

    Performance(tracks=["tracks_ckf", "tracks_ml"])      # or --Performance.tracks tracks_ckf,tracks_ml

A serial algorithm (``serial = True``: writers, metrics) runs in the main process in event order;
if it defines ``end_of_run(result, producers)`` it is called with the run's ``RunResult`` (timing
included) and the map store key -> producing algorithm, just before ``finalize``.

Algorithms are created cheaply and must pickle before ``initialize``: heavy state (ONNX sessions,
ACTS geometry) is made in ``initialize``, which runs once in each process that executes events.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from recotrig.framework.identity import EventKey

__all__ = [
    "Algorithm",
    "ConfigError",
    "Filter",
    "Many",
    "Metric",
    "Option",
    "Port",
    "ProcessContext",
    "Reader",
    "Writer",
]


class ConfigError(ValueError):
    """A sequence or an algorithm is configured wrongly; raised before any event runs."""


_MISSING = object()


class Option:
    """An option of an algorithm: a default, a help text and a type (taken from the default
    unless given). Read it as an attribute of the instance.

    List options name their element type with ``item`` (else it is taken from the default's first
    element, else ``str``); a mapping option (``type=dict``) with ``item`` maps names to values of
    that type and is written ``KEY=VALUE,KEY=VALUE`` on the command line (a JSON object also does;
    without ``item`` a dict option takes a JSON object); ``low``/``high`` bound numbers (and list
    elements) inclusively;
    ``role`` marks a path option as an ``input`` or ``model`` file, which the run record
    checksums, or as an ``output`` location, which the record leaves out (where a result was put
    is not part of what it is: equal runs into other folders give equal files). Every instance
    gets its own copy of a mutable default.
    """

    def __init__(
        self,
        default: Any,
        help: str = "",
        *,
        type: type | None = None,
        choices: typing.Sequence | None = None,
        item: type | None = None,
        low: float | None = None,
        high: float | None = None,
        role: str | None = None,
    ):
        self.default = default
        self.help = help
        self.type = type or (builtins_type(default) if default is not None else str)
        self.choices = tuple(choices) if choices is not None else None
        if item is None and self.type in (list, tuple):
            item = builtins_type(default[0]) if default else str
        self.item = item
        self.low = low
        self.high = high
        if role not in (None, "input", "model", "output"):
            raise ValueError(f"option role must be 'input', 'model' or 'output', not {role!r}")
        self.role = role
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return instance._options[self.name]

    def fresh_default(self) -> Any:
        return copy.deepcopy(self.default)

    def parse(self, text: str) -> Any:
        """Convert a command-line string to the option's type."""
        if self.type is bool:
            return _parse_bool(text)
        if self.type in (list, tuple):
            items = [s.strip() for s in text.split(",") if s.strip()]
            return self.type(_parse_scalar(self.item or str, s) for s in items)
        if self.type is dict:
            if self.item is not None and not text.lstrip().startswith("{"):
                return _parse_pairs(self.item, text)
            value = json.loads(text)
            if not isinstance(value, dict):
                raise ValueError(f"expected a JSON object, got {text!r}")
            return value
        return _parse_scalar(self.type, text)

    def check(self, owner: str, value: Any) -> Any:
        """The value, converted where lossless (int -> float); ``ConfigError`` naming the option
        when it has the wrong type, a wrong element type, is out of range or not a choice."""
        where = f"{owner}: option {self.name!r}"
        value = self._widen(self.type, value)
        if value is not None and self.default is not None and not isinstance(value, self.type):
            raise ConfigError(f"{where} must be {self.type.__name__}, got {value!r}")
        if isinstance(value, dict) and self.item is not None:
            bad = [
                (k, v)
                for k, v in value.items()
                if not isinstance(k, str) or not k or not isinstance(self._widen(self.item, v), self.item)
            ]
            if bad:
                raise ConfigError(
                    f"{where} must map names to {self.item.__name__} values, got "
                    f"{bad[0][0]!r}: {bad[0][1]!r} in {value!r}"
                )
            value = {k: self._widen(self.item, v) for k, v in value.items()}
        elif isinstance(value, (list, tuple)) and self.item is not None:
            value = self.type(self._widen(self.item, v) for v in value)
            bad = [v for v in value if not isinstance(v, self.item) or (isinstance(v, bool) and self.item is not bool)]
            if bad:
                raise ConfigError(f"{where} must hold {self.item.__name__} values, got {bad[0]!r} in {list(value)!r}")
            for v in value:
                self._check_range(where, v)
        else:
            self._check_range(where, value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{where} must be one of {list(self.choices)}, got {value!r}")
        return value

    @staticmethod
    def _widen(kind: type, value: Any) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def _check_range(self, where: str, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        if self.low is not None and value < self.low:
            raise ConfigError(f"{where} must be >= {self.low}, got {value!r}")
        if self.high is not None and value > self.high:
            raise ConfigError(f"{where} must be <= {self.high}, got {value!r}")


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def _parse_pairs(kind: type, text: str) -> dict[str, Any]:
    """``"a=1,b=2"`` -> ``{"a": 1, "b": 2}``, values parsed as ``kind``."""
    out: dict[str, Any] = {}
    for part in (s.strip() for s in text.split(",")):
        if not part:
            continue
        name, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not name:
            raise ValueError(f"expected KEY=VALUE pairs separated by commas, got {part!r}")
        out[name] = _parse_scalar(kind, value)
    return out


def _parse_scalar(kind: type, text: str) -> Any:
    if kind is bool:
        return _parse_bool(text)
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected {kind.__name__}, got {text!r}") from None


def builtins_type(value: Any) -> type:
    return type(value)


T = TypeVar("T")


class Many(Generic[T]):
    """Annotation of an ``execute`` parameter that takes several inputs of one type:
    ``tracks: Many[Tracks] = ("tracks",)``. The instance binds it to a list of store keys (the
    signature's default is the default list). Each key is an input port of its own, named
    ``tracks[KEY]``, that the pre-run check treats like any other (a producer, its type, similar
    keys); ``execute`` (and ``execute_chunk``) receive a dict key -> value in the order given.
    ``Many[T] | None`` makes every key optional: an absent one arrives as ``None``."""


def _many_item(annotation: Any) -> Any:
    """``Many[X]`` -> X; anything else -> None."""
    if typing.get_origin(annotation) is Many:
        return typing.get_args(annotation)[0]
    return None


def _many_port(param: str, key: str) -> str:
    return f"{param}[{key}]"


def _regrouping(method: Callable[..., Any], many: tuple[str, ...]) -> Callable[..., Any]:
    """Wrap ``execute``/``execute_chunk`` so that the engine's one argument per port
    (``tracks[KEY]=value``) arrives as one dict per ``Many`` parameter (``tracks={KEY: value}``)."""

    @functools.wraps(method)
    def call(self: Algorithm, /, **inputs: Any) -> Any:
        for param in many:
            if param not in inputs:
                inputs[param] = {key: inputs.pop(_many_port(param, key), None) for key in self._keys[param]}
        return method(self, **inputs)

    call.__regroups__ = many  # type: ignore[attr-defined]
    return call


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


@dataclass
class ProcessContext:
    """What a process offers the algorithms it runs: which worker it is, how many there are, how
    many threads each algorithm may use (so that threads x workers never exceeds the cores), the
    device, if any, and in the main process the run's record (what writers store as metadata)."""

    worker_index: int = 0
    workers: int = 1
    threads: int = 1
    device: str | None = None
    main: bool = True
    record: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def cores() -> int:
        try:
            return len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1

    @classmethod
    def for_worker(cls, index: int, workers: int, *, device: str | None = None) -> ProcessContext:
        return cls(
            worker_index=index,
            workers=workers,
            threads=max(1, cls.cores() // max(1, workers)),
            device=device,
            main=False,
        )


class Algorithm:
    """Base of every algorithm. See the module docstring for how inputs, outputs and options are
    declared."""

    outputs: ClassVar[tuple[str, ...]] = ()
    #: writers and other consumers that must see every event in order run in the main process
    serial: ClassVar[bool] = False
    #: a filter decides per event whether the algorithms listed after it run (see ``Filter``)
    is_filter: ClassVar[bool] = False
    #: distributions (PyPI names) this algorithm runs on beyond the engine's: the run record names
    #: their versions
    requires: ClassVar[tuple[str, ...]] = ()
    #: set by the engine before ``initialize``: the process this instance runs in
    context: ProcessContext = ProcessContext()
    _option_specs: ClassVar[dict[str, Option]] = {}
    _input_specs: ClassVar[dict[str, tuple[Any, bool]]] = {}
    #: ``Many`` inputs: parameter -> (item type, optional, default keys)
    _many_specs: ClassVar[dict[str, tuple[Any, bool, tuple[str, ...]]]] = {}
    _output_types: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        specs: dict[str, Option] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Option):
                    specs[name] = value
        cls._option_specs = specs
        cls._input_specs, cls._many_specs, cls._output_types = cls._signature()
        clash = (set(cls._input_specs) | set(cls._many_specs) | set(cls._output_types)) & set(specs)
        if clash:
            raise TypeError(f"{cls.__name__}: names used both as option and as input/output: {sorted(clash)}")
        if cls._many_specs:
            for name in ("execute", "execute_chunk"):
                method = vars(cls).get(name)
                if method is not None and not hasattr(method, "__regroups__"):
                    setattr(cls, name, _regrouping(method, tuple(cls._many_specs)))

    @classmethod
    def _signature(
        cls,
    ) -> tuple[dict[str, tuple[Any, bool]], dict[str, tuple[Any, bool, tuple[str, ...]]], dict[str, Any]]:
        is_reader = hasattr(cls, "read")
        method = cls.read if is_reader else cls.execute
        try:
            hints = typing.get_type_hints(method)
        except Exception as err:  # unresolvable forward reference
            raise TypeError(f"{cls.__name__}: cannot resolve the annotations of {method.__name__}: {err}") from None
        inputs: dict[str, tuple[Any, bool]] = {}
        many: dict[str, tuple[Any, bool, tuple[str, ...]]] = {}
        if not is_reader:
            for param in list(inspect.signature(method).parameters.values())[1:]:
                if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    continue
                annotation, optional = _strip_optional(hints.get(param.name, object))
                item = _many_item(annotation)
                if item is not None:
                    default = () if param.default is param.empty else param.default
                    if not isinstance(default, tuple) or not all(isinstance(k, str) and k for k in default):
                        raise TypeError(
                            f"{cls.__name__}: the default of Many input {param.name!r} must be a "
                            f"tuple of store keys, not {default!r}"
                        )
                    many[param.name] = (item, optional, default)
                    continue
                inputs[param.name] = (annotation, optional or param.default is None)
        returned = hints.get("return", type(None))
        outs = tuple(cls.outputs)
        if typing.get_origin(returned) is tuple:
            types_ = tuple(_strip_optional(a)[0] for a in typing.get_args(returned))
        elif returned is type(None):
            types_ = ()
        else:
            types_ = (_strip_optional(returned)[0],)
        if cls.is_filter and cls.execute is not Algorithm.execute:
            if not types_ or types_[0] is not bool:
                raise TypeError(
                    f"{cls.__name__}: a filter's execute must return bool first (-> bool or "
                    f"-> tuple[bool, ...outputs]), not {returned!r}"
                )
            types_ = types_[1:]
        if not outs:
            types_ = ()
        if outs and len(types_) != len(outs) and cls.execute is not Algorithm.execute:
            raise TypeError(f"{cls.__name__}: outputs {outs} but return annotation gives {len(types_)} type(s)")
        return inputs, many, dict(zip(outs, types_ or (object,) * len(outs)))

    def __init__(self, name: str | None = None, **settings: Any):
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.name = name or type(self).__name__
        self._options = {n: o.fresh_default() for n, o in self._option_specs.items()}
        self._keys: dict[str, Any] = {n: n for n in (*self._input_specs, *self._output_types)}
        self._keys.update((n, list(default)) for n, (_, _, default) in self._many_specs.items())
        self.configure(**settings)

    def configure(self, **settings: Any) -> None:
        """Set options and rebind store keys by name (what the CLI's overrides call)."""
        for key, value in settings.items():
            if key in self._option_specs:
                self._options[key] = self._option_specs[key].check(self.name, value)
            elif key in self._many_specs:
                if (
                    not isinstance(value, (list, tuple))
                    or not all(isinstance(k, str) and k for k in value)
                    or len(set(value)) != len(value)
                ):
                    raise ConfigError(
                        f"{self.name}: store keys for {key!r} must be a list of distinct non-empty "
                        f"strings, got {value!r}"
                    )
                self._keys[key] = list(value)
            elif key in self._keys:
                if not isinstance(value, str) or not value:
                    raise ConfigError(f"{self.name}: store key for {key!r} must be a non-empty string, got {value!r}")
                self._keys[key] = value
            else:
                known = sorted([*self._option_specs, *self._keys])
                raise ConfigError(f"{self.name}: unknown option {key!r}; known: {known}")

    def key(self, port: str) -> str:
        """The store key a declared input or output is bound to."""
        if port in self._many_specs:
            raise TypeError(f"{self.name}: {port!r} is a Many input: read its keys with keys({port!r})")
        return self._keys[port]

    def keys(self, port: str) -> list[str]:
        """The store keys a ``Many`` input is bound to, in order."""
        if port not in self._many_specs:
            raise TypeError(f"{self.name}: {port!r} is not a Many input: read its key with key({port!r})")
        return list(self._keys[port])

    @classmethod
    def many_inputs(cls) -> tuple[str, ...]:
        """Names of the ``Many`` inputs (their keys are set as a list)."""
        return tuple(cls._many_specs)

    # -- declared data flow ----------------------------------------------------------------------
    def input_ports(self) -> list[Port]:
        ports = [Port(n, self._keys[n], t, opt) for n, (t, opt) in self._input_specs.items()]
        for n, (t, opt, _) in self._many_specs.items():
            ports += [Port(_many_port(n, key), key, t, opt) for key in self._keys[n]]
        return ports

    def output_ports(self) -> list[Port]:
        return [Port(n, self._keys[n], t) for n, t in self._output_types.items()]

    def options(self) -> dict[str, Any]:
        """Current values of every option and store key (the CLI lists these)."""
        return {**self._options, **self._keys}

    def settings(self) -> dict[str, Any]:
        """Options (output locations left out) and store keys: what the run record stores."""
        options = {n: v for n, v in self._options.items() if self._option_specs[n].role != "output"}
        return {"options": options, "keys": {n: list(k) if isinstance(k, list) else k for n, k in self._keys.items()}}

    def check_upstream(self, upstream: dict[str, Algorithm]) -> None:
        """Called by the pre-run check with the algorithm producing each input (input name ->
        producer; inputs the engine gives are left out): raise ``ConfigError`` when a producer is
        configured in a way this algorithm cannot use (a model trained on another binning, say)."""

    def files(self) -> dict[str, list[str]]:
        """Paths given to options with a role (``input``, ``model``), by role, for the run record."""
        out: dict[str, list[str]] = {}
        for name, spec in self._option_specs.items():
            value = self._options[name]
            if spec.role in ("input", "model") and value:
                out.setdefault(spec.role, []).extend(value if isinstance(value, (list, tuple)) else [value])
        return out

    @classmethod
    def option_specs(cls) -> dict[str, Option]:
        return dict(cls._option_specs)

    @classmethod
    def has_chunk_path(cls) -> bool:
        return cls.execute_chunk is not Algorithm.execute_chunk

    # -- life cycle --------------------------------------------------------------------------------
    def initialize(self) -> None:
        """Create heavy state. Runs once per process, before the first event (``self.context``
        is set)."""

    def execute(self, **inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement execute")

    def execute_chunk(self, **inputs: list[Any]) -> list[Any]:
        """Optional: process several events at once. Each input is a list (one value per event)
        and the result is a list of what ``execute`` would return for each event. The engine uses
        it when defined; the results must equal per-event ``execute`` (vectorised emulators,
        batched inference)."""
        raise NotImplementedError

    def finalize(self) -> None:
        """Runs once after the last event (writers write here)."""

    def __getstate__(self) -> dict:
        # only configuration travels to worker processes; heavy state is rebuilt by initialize
        return {"name": self.name, "_options": self._options, "_keys": self._keys}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Filter(Algorithm):
    """An algorithm that decides, per event, whether the algorithms listed after it in the
    sequence run (Gaudi's FilterPredicate). ``execute`` returns ``bool``, or ``(passed, *outputs)``
    when the filter also produces outputs (an L1 decision that gates the high-level chain)::

        class L1Gate(Filter):
            outputs = ("decision",)
            def execute(self, l1: L1Objects) -> tuple[bool, TriggerDecision]: ...

    Algorithms listed before the filter see every event; writers listed after it keep only the
    passing events. The run summary counts events seen and passed per filter.
    """

    is_filter = True


class Metric(Algorithm):
    """An algorithm that fills a mergeable accumulator, in whichever process runs the event.

    ``accumulator()`` returns a new, empty accumulator (it has ``merge(other)``, in place, and
    pickles); ``execute`` adds the event to ``self.acc``. The engine ships each chunk's
    accumulator to the main process and merges them in chunk order, so only the accumulator
    travels back, not the event, and the result equals a serial run's. At the end of the run,
    ``summarise(acc, result, producers)`` runs in the main process with the merged accumulator,
    the ``RunResult`` and the map store key -> producing algorithm; ``finalize`` follows there.
    """

    acc: Any = None

    def accumulator(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement accumulator")

    def summarise(self, acc: Any, result: Any, producers: dict[str, str]) -> None:
        """Turn the merged accumulator into the metric's report and outputs (main process)."""


class Reader(Algorithm):
    """An algorithm that produces events from a store: no inputs, ``read(entry)`` returns the
    outputs of one entry. ``prepare(start, stop)`` is called before a chunk of entries so readers
    can load the range at once (ROOT entry ranges, CSV files).

    A reader declares what its store really holds: ``provides()`` names the outputs it will give
    (default: all), so the pre-run check catches a consumer of an absent collection before any
    event runs. ``read`` returns ``None`` for outputs it does not provide.
    """

    def n_events(self) -> int:
        raise NotImplementedError

    def event_id(self, entry: int) -> int:
        return entry

    def event_key(self, entry: int) -> EventKey:
        """The (run, event) of ``entry``; run 0 unless the reader knows its run."""
        return EventKey(0, int(self.event_id(entry)))

    def provides(self) -> set[str] | None:
        """Names of the outputs the store holds (None: all declared outputs)."""
        return None

    def segments(self) -> list[tuple[str, int, int]]:
        """(file, first entry, number of entries) of each input file, in entry order: chunks never
        cross a file (default: one segment of every entry)."""
        return [(self.name, 0, self.n_events())]

    def bad_inputs(self) -> list[tuple[str, str]]:
        """(file, reason) of input files left out at opening (``--skip-bad-files``)."""
        return []

    def absent(self) -> dict[str, str]:
        """Output name -> why it is absent (for the pre-run check's message)."""
        provided = self.provides()
        if provided is None:
            return {}
        return {n: f"{self.name}'s input does not hold it" for n in self._output_types if n not in provided}

    def output_ports(self) -> list[Port]:
        provided = self.provides()
        return [p for p in super().output_ports() if provided is None or p.name in provided]

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
