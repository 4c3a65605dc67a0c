"""Planning a run: the pre-run check of a sequence's data flow, and its order.

Before the first event the whole data flow is emulated: every input must have exactly one producer
of a compatible type, readers declare what their inputs really hold, and the graph must have no
cycle; the order follows dependencies, not insertion (a filter comes before the algorithms listed
after it, which it gates). The checked sequence, a :class:`Plan`, is split into the part that may
run in worker processes and the serial part (writers, and whatever depends on them) that runs in
the main process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recotrig.framework.algorithm import Algorithm, ConfigError, Metric, Port, Reader
from recotrig.framework.collection import EventInfo
from recotrig.framework.store import similar
from recotrig.framework.worker import ENGINE, EVENT_KEY

__all__ = ["Plan", "check"]


@dataclass
class Plan:
    """A checked sequence: algorithms in execution order, split into the part that may run in
    worker processes and the serial part that runs in the main process."""

    ordered: list[Algorithm]
    parallel: list[Algorithm]
    serial: list[Algorithm]
    producers: dict[str, tuple[str, Any]]  # key -> (algorithm name, type)
    ship_keys: tuple[str, ...]  # keys the serial part needs from the parallel part
    gates: dict[str, frozenset[str]]  # algorithm -> the filters that gate it

    @property
    def readers(self) -> list[Reader]:
        return [a for a in self.ordered if isinstance(a, Reader)]

    @property
    def metrics(self) -> list[Metric]:
        return [a for a in self.ordered if isinstance(a, Metric)]

    @property
    def filters(self) -> list[Algorithm]:
        return [a for a in self.ordered if a.is_filter]


def type_ok(produced: Any, wanted: Any) -> bool:
    """Whether a key produced as ``produced`` may be read as ``wanted``."""
    if wanted in (object, Any) or produced in (object, Any):
        return True
    try:
        return issubclass(produced, wanted)
    except TypeError:  # generic aliases and the like: not checked
        return True


def type_name(t: Any) -> str:
    return getattr(t, "__name__", repr(t))


def check(algorithms: list[Algorithm]) -> Plan:
    """Emulate the data flow; raise ``ConfigError`` naming algorithms and keys on any problem."""
    names = _named(algorithms)
    gates = _gates(algorithms)
    absent = _absent(algorithms)
    producers = _producers(algorithms)
    deps = {alg.name: _dependencies(alg, gates[alg.name], producers, absent) for alg in algorithms}
    for alg in algorithms:  # producers' settings an algorithm depends on (a model's binning, say)
        upstream = {
            port.name: names[producers[port.key][0]]
            for port in alg.input_ports()
            if port.key in producers and producers[port.key][0] in names
        }
        alg.check_upstream(upstream)
    return _split(_toposort(algorithms, deps), deps, producers, gates)


def _named(algorithms: list[Algorithm]) -> dict[str, Algorithm]:
    """Algorithm by name; the sequence must be algorithms of distinct names, one a reader."""
    if not algorithms:
        raise ConfigError("the sequence is empty")
    names: dict[str, Algorithm] = {}
    for alg in algorithms:
        if not isinstance(alg, Algorithm):
            raise ConfigError(f"{alg!r} is not an Algorithm")
        if alg.name in names:
            raise ConfigError(
                f"two algorithms are named {alg.name!r} ({type(names[alg.name]).__name__} and "
                f"{type(alg).__name__}); give one another name=..."
            )
        names[alg.name] = alg
    if not any(isinstance(a, Reader) for a in algorithms):
        raise ConfigError("the sequence has no reader: add one (HitReader, a toy reader, ...)")
    return names


def _gates(algorithms: list[Algorithm]) -> dict[str, frozenset[str]]:
    """Algorithm -> the filters listed before it."""
    gates: dict[str, frozenset[str]] = {}
    seen_filters: list[str] = []
    for alg in algorithms:
        gates[alg.name] = frozenset(seen_filters)
        if alg.is_filter:
            seen_filters.append(alg.name)
    return gates


def _absent(algorithms: list[Algorithm]) -> dict[str, str]:
    """Key a reader could give but its input does not hold -> why."""
    absent: dict[str, str] = {}
    for alg in algorithms:
        if isinstance(alg, Reader):
            for name, why in alg.absent().items():
                absent[alg.key(name)] = why
    return absent


def _producers(algorithms: list[Algorithm]) -> dict[str, tuple[str, Any]]:
    """Key -> (producing algorithm, type); a key produced twice is an error."""
    producers: dict[str, tuple[str, Any]] = {EVENT_KEY: (ENGINE, EventInfo)}
    for alg in algorithms:
        for port in alg.output_ports():
            if port.key in producers:
                raise ConfigError(
                    f"key {port.key!r} is produced twice: by {producers[port.key][0]} and by {alg.name} "
                    f"(output {port.name!r}); rename one with {alg.name}.{port.name}=<other key>"
                )
            producers[port.key] = (alg.name, port.type)
    return producers


def _dependencies(
    alg: Algorithm, gates: frozenset[str], producers: dict[str, tuple[str, Any]], absent: dict[str, str]
) -> set[str]:
    """The algorithms ``alg`` runs after: its filters and the producers of its inputs."""
    deps = set(gates)  # a gated algorithm runs after its filters
    for port in alg.input_ports():
        producer = _producer_of(alg, port, producers, absent)
        if producer is not None and producer != ENGINE:
            deps.add(producer)
    return deps


def _producer_of(
    alg: Algorithm, port: Port, producers: dict[str, tuple[str, Any]], absent: dict[str, str]
) -> str | None:
    """The algorithm that produces what ``port`` reads (None: an optional input nobody gives)."""
    if port.key not in producers:
        if port.optional:
            return None
        if port.key in absent:
            raise ConfigError(
                f"missing data handle: {alg.name} input {port.name!r} reads key {port.key!r}, which {absent[port.key]}"
            )
        hint = similar(port.key, set(producers))
        hint_text = (
            "; similar keys: " + ", ".join(f"{k!r} (from {producers[k][0]})" for k in hint)
            if hint
            else f"; keys produced: {sorted(producers)}"
        )
        raise ConfigError(
            f"missing data handle: {alg.name} input {port.name!r} reads key {port.key!r}, "
            f"which no algorithm produces{hint_text}"
        )
    producer, ptype = producers[port.key]
    if not type_ok(ptype, port.type):
        raise ConfigError(
            f"type mismatch on key {port.key!r}: {producer} produces {type_name(ptype)}, "
            f"but {alg.name} input {port.name!r} expects {type_name(port.type)}"
        )
    return producer


def _split(
    ordered: list[Algorithm],
    deps: dict[str, set[str]],
    producers: dict[str, tuple[str, Any]],
    gates: dict[str, frozenset[str]],
) -> Plan:
    """The plan: anything downstream of a serial algorithm is serial too; the serial part gets the
    keys it reads from the parallel part shipped."""
    serial_names: set[str] = set()
    for alg in ordered:
        if alg.serial or deps[alg.name] & serial_names:
            serial_names.add(alg.name)
    parallel = [a for a in ordered if a.name not in serial_names]
    serial = [a for a in ordered if a.name in serial_names]
    parallel_keys = {EVENT_KEY} | {p.key for a in parallel for p in a.output_ports()}
    ship = sorted({p.key for a in serial for p in a.input_ports() if p.key in parallel_keys} | {EVENT_KEY})
    return Plan(ordered, parallel, serial, producers, tuple(ship), gates)


def _toposort(algorithms: list[Algorithm], deps: dict[str, set[str]]) -> list[Algorithm]:
    """Kahn's algorithm; among ready algorithms, insertion order wins."""
    remaining = {a.name: set(deps[a.name]) for a in algorithms}
    by_name = {a.name: a for a in algorithms}
    ordered: list[Algorithm] = []
    while remaining:
        ready = [a.name for a in algorithms if a.name in remaining and not remaining[a.name]]
        if not ready:
            cycle = _find_cycle(remaining)
            raise ConfigError(f"the data flow has a cycle: {cycle}")
        name = ready[0]
        ordered.append(by_name[name])
        del remaining[name]
        for waiting in remaining.values():
            waiting.discard(name)
    return ordered


def _find_cycle(remaining: dict[str, set[str]]) -> str:
    start = next(iter(remaining))
    path, seen = [start], {start}
    while True:
        nxt = next(iter(remaining[path[-1]] & set(remaining)))
        if nxt in seen:
            loop = path[path.index(nxt) :] + [nxt]
            return " -> ".join(reversed(loop))
        path.append(nxt)
        seen.add(nxt)
