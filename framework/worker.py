"""Running algorithms over a chunk of events, in whatever process the executor chose.

A chunk is processed step by step: each algorithm sees every live event of the chunk before the
next algorithm runs, so an algorithm that offers ``execute_chunk`` gets the chunk in one call
(and one per event otherwise). An event leaves the chunk when an algorithm fails on it (error
policy ``skip``) and skips the algorithms gated by a filter that rejected it.

``Worker`` is the parallel part of a checked sequence as it runs in one process: picklable before
``start`` (configuration only), it initialises its algorithms once per process and turns chunks
``(entry start, entry stop)`` into ``ChunkResult``: the keys the main process needs per event
(``ShippedEvent``, each key with the algorithm that produced it), the failures, the timing, the
filter counts and the metrics' accumulators of the chunk.
"""

from __future__ import annotations

import math
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from recotrig.framework.algorithm import Algorithm, Metric, ProcessContext, Reader
from recotrig.framework.collection import EventInfo
from recotrig.framework.identity import EventKey
from recotrig.framework.store import EventStore

__all__ = [
    "ChunkFailed",
    "ChunkResult",
    "EVENT_KEY",
    "EventError",
    "EventFailure",
    "EventState",
    "InputError",
    "Shipped",
    "ShippedEvent",
    "Step",
    "Worker",
    "run_chunk",
]

#: the engine itself writes each event's EventInfo under this key
EVENT_KEY = "event"
ENGINE = "Sequencer"


class EventError(RuntimeError):
    """An algorithm failed on an event and the error policy is ``abort`` (or the inputs are
    inconsistent, which no policy can skip)."""


class InputError(EventError):
    """A reader could not load a chunk of its input (an unreadable or corrupt file)."""

    def __init__(self, reader: str, start: int, stop: int, reason: str):
        super().__init__(reader, start, stop, reason)
        self.reader, self.start, self.stop, self.reason = reader, start, stop, reason

    def __str__(self) -> str:
        return f"{self.reader} cannot read entries {self.start}..{self.stop - 1}: {self.reason}"


@dataclass(frozen=True)
class EventFailure:
    """An event skipped under the ``skip`` policy: which (entry, event id and run), where and why."""

    entry: int
    event_id: int
    algorithm: str
    error: str
    run_number: int = 0

    @property
    def key(self) -> EventKey:
        return EventKey(self.run_number, self.event_id)

    def __str__(self) -> str:
        return f"{self.key} (entry {self.entry}) skipped: {self.algorithm} failed: {self.error}"


class Step:
    """An algorithm with its ports resolved once, so the loops do little work."""

    __slots__ = ("alg", "name", "is_reader", "is_filter", "inputs", "outputs", "single", "gates", "chunked", "index")

    def __init__(self, alg: Algorithm, gates: frozenset[str] = frozenset(), index: int = 0):
        self.alg = alg
        self.name = alg.name
        self.index = index  # column in the per-event timing
        self.is_reader = isinstance(alg, Reader)
        self.is_filter = alg.is_filter
        self.gates = gates
        self.chunked = alg.has_chunk_path() and not self.is_reader
        self.inputs = tuple((p.name, p.key, p.optional) for p in alg.input_ports())
        declared = {p.name: p for p in alg.output_ports()}
        # every output the class returns, in order; (None, None) for one a reader does not provide
        self.outputs = tuple(
            (declared[n].key, _checked_type(declared[n].type)) if n in declared else (None, None)
            for n in alg._output_types
        )
        self.single = len(self.outputs) == 1

    def kwargs(self, store: EventStore) -> dict[str, Any]:
        out = {}
        for name, key, optional in self.inputs:
            out[name] = None if optional and key not in store else store.get(key, consumer=self.name)
        return out

    def call(self, store: EventStore, entry: int) -> Any:
        if self.is_reader:
            return self.alg.read(entry)
        return self.alg.execute(**self.kwargs(store))

    def store(self, store: EventStore, result: Any) -> bool:
        """Put ``result`` (what execute returned for this event) into the store; returns whether
        the event passed (always True unless this is a filter)."""
        passed = True
        if self.is_filter:
            parts = result if isinstance(result, tuple) else (result,)
            passed = parts[0]
            if not isinstance(passed, (bool, _np_bool())):
                raise TypeError(f"{self.name} is a filter and must return a bool first, got {type(passed).__name__}")
            passed = bool(passed)
            values = parts[1:]
            if len(values) != len(self.outputs):
                raise TypeError(f"{self.name} must return (passed, {len(self.outputs)} outputs)")
        elif not self.outputs:
            return True
        else:
            values = (result,) if self.single else result
            if not isinstance(values, tuple) or len(values) != len(self.outputs):
                raise TypeError(
                    f"{self.name} must return {len(self.outputs)} outputs, returned {type(result).__name__}"
                )
        for (key, expected), value in zip(self.outputs, values):
            if key is None:
                continue
            if value is None:
                raise TypeError(f"{self.name} returned None for its declared output {key!r}")
            if expected is not None and not isinstance(value, expected):
                raise TypeError(f"{self.name} output {key!r} should be {expected.__name__}, got {type(value).__name__}")
            store.put(key, value, producer=self.name)
        return passed


def _checked_type(t: Any) -> type | None:
    return t if isinstance(t, type) and t not in (object, Any) else None


def _np_bool() -> type:
    import numpy as np

    return np.bool_


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


@dataclass
class EventState:
    """One event while its chunk is processed."""

    entry: int
    key: EventKey
    store: EventStore
    seconds: list[float]
    rejected: set[str] = field(default_factory=set)
    failed: bool = False


@dataclass
class ChunkFailed:
    """What an executor yields for a chunk that failed as a whole (after its retries)."""

    start: int
    stop: int
    error: BaseException


@dataclass
class Shipped:
    """One key of an event as it travels to the main process: the value and the algorithm that
    produced it (the store there records it as the producer, not the engine)."""

    value: Any
    producer: str


@dataclass
class ShippedEvent:
    """An event that did not fail in a worker, as it travels to the main process: the keys the
    serial part of the sequence reads, the seconds per step and the filters that rejected it."""

    entry: int
    key: EventKey
    data: dict[str, Shipped]
    seconds: list[float]
    rejected: frozenset[str] = frozenset()

    @classmethod
    def of(cls, ev: EventState, keys: tuple[str, ...]) -> ShippedEvent:
        data = {k: Shipped(ev.store.get(k, consumer=ENGINE), ev.store.producer(k)) for k in keys if k in ev.store}
        return cls(ev.entry, ev.key, data, ev.seconds, frozenset(ev.rejected))

    def state(self) -> EventState:
        """The event again, in a new store whose keys keep their producers."""
        store = EventStore()
        for key, shipped in self.data.items():
            store.put(key, shipped.value, producer=shipped.producer)
        return EventState(self.entry, self.key, store, self.seconds, set(self.rejected))


@dataclass
class ChunkResult:
    """What one chunk of entries gives back to the main process."""

    start: int
    stop: int
    #: the events that did not fail, in entry order
    events: list[ShippedEvent]
    failures: list[EventFailure]
    timings: dict[str, list[float]]
    filters: dict[str, list[int]] = field(default_factory=dict)  # filter -> [seen, passed]
    accumulators: dict[str, Any] = field(default_factory=dict)


def run_chunk(
    steps: list[Step],
    events: list[EventState],
    timings: dict[str, list[float]],
    filters: dict[str, list[int]],
    policy: str,
) -> list[EventFailure]:
    """Run ``steps`` over ``events``, step by step; returns the failures (policy ``skip``) or
    raises ``EventError`` (policy ``abort``)."""
    failures: list[EventFailure] = []
    clock = time.perf_counter
    for step in steps:
        gates = step.gates
        todo = [ev for ev in events if not ev.failed and not (gates and gates & ev.rejected)]
        if not todo:
            continue
        results = None
        if step.chunked and len(todo) > 1:
            t0 = clock()
            try:
                inputs = [step.kwargs(ev.store) for ev in todo]
                results = step.alg.execute_chunk(**{n: [kw[n] for kw in inputs] for n, _, _ in step.inputs})
                if not isinstance(results, list) or len(results) != len(todo):
                    raise TypeError(f"{step.name}.execute_chunk must return a list of {len(todo)} results")
            except Exception:  # redo event by event, so the failure is charged to its own event
                results = None
            share = (clock() - t0) / len(todo)
        times = timings[step.name]
        for i, ev in enumerate(todo):
            t0 = clock()
            try:
                result = results[i] if results is not None else step.call(ev.store, ev.entry)
                passed = step.store(ev.store, result)
            except Exception as err:
                elapsed = clock() - t0 + (share if results is not None else 0.0)
                times.append(elapsed)
                ev.seconds[step.index] = elapsed
                ev.failed = True
                if policy == "abort":
                    raise EventError(
                        f"{ev.key} (entry {ev.entry}): {step.name} failed: {_describe(err)}\n"
                        + "".join(traceback.format_exception(err)[-6:])
                    ) from err
                failures.append(EventFailure(ev.entry, ev.key.event, step.name, _describe(err), ev.key.run))
                continue
            elapsed = clock() - t0 + (share if results is not None else 0.0)
            times.append(elapsed)
            ev.seconds[step.index] = elapsed
            if step.is_filter:
                counts = filters.setdefault(step.name, [0, 0])
                counts[0] += 1
                if passed:
                    counts[1] += 1
                else:
                    ev.rejected.add(step.name)
    return failures


def take_accumulators(steps: list[Step]) -> dict[str, Any]:
    """The accumulators the metric steps filled, each replaced by a new, empty one."""
    out = {}
    for step in steps:
        if isinstance(step.alg, Metric):
            out[step.name] = step.alg.acc
            step.alg.acc = step.alg.accumulator()
    return out


class Worker:
    """The parallel part of a plan, as it runs in one process. Picklable before ``start``."""

    def __init__(
        self,
        algorithms: list[Algorithm],
        gates: dict[str, frozenset[str]],
        ship_keys: tuple[str, ...],
        policy: str,
        n_columns: int,
    ):
        self.algorithms = algorithms
        self.gates = gates
        self.ship_keys = ship_keys
        self.policy = policy
        self.n_columns = n_columns  # steps in the whole plan (per-event timing columns)
        self.context = ProcessContext()
        self._steps: list[Step] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_steps"] = None
        return state

    def start(self, context: ProcessContext | None = None) -> None:
        if self._steps is None:
            if context is not None:
                self.context = context
            for alg in self.algorithms:
                alg.context = self.context
                alg.initialize()
                if isinstance(alg, Metric):
                    alg.acc = alg.accumulator()
            self._steps = [Step(a, self.gates.get(a.name, frozenset()), i) for i, a in enumerate(self.algorithms)]

    def stop(self) -> None:
        if self._steps is not None:
            for alg in self.algorithms:
                if not isinstance(alg, Metric):  # metrics finish in the main process
                    alg.finalize()
            self._steps = None

    def process(self, start: int, stop: int) -> ChunkResult:
        self.start()
        steps = self._steps
        assert steps is not None
        timings: dict[str, list[float]] = defaultdict(list)
        readers = [s.alg for s in steps if s.is_reader]
        prepared: dict[str, float] = {}  # chunk loading time, charged to each reader's first event
        for reader in readers:
            t0 = time.perf_counter()
            try:
                reader.prepare(start, stop)
            except Exception as err:
                raise InputError(reader.name, start, stop, _describe(err)) from err
            prepared[reader.name] = time.perf_counter() - t0
        primary = readers[0]
        events = []
        for entry in range(start, stop):
            key = primary.event_key(entry)
            for other in readers[1:]:
                if other.event_key(entry) != key:
                    raise EventError(
                        f"readers disagree at entry {entry}: {primary.name} reads {key}, "
                        f"{other.name} reads {other.event_key(entry)}; their inputs are not aligned"
                    )
            store = EventStore()
            info = EventInfo(entry=[entry], event_id=[key.event], run_number=[key.run])
            store.put(EVENT_KEY, info, producer=ENGINE)
            events.append(EventState(entry, key, store, [math.nan] * self.n_columns))
        filters: dict[str, list[int]] = {}
        failures = run_chunk(steps, events, timings, filters, self.policy)
        for name, seconds in prepared.items():
            if timings[name]:
                timings[name][0] += seconds
            index = next(s.index for s in steps if s.name == name)
            if events:
                events[0].seconds[index] += seconds
        shipped = [ShippedEvent.of(ev, self.ship_keys) for ev in events if not ev.failed]
        return ChunkResult(start, stop, shipped, failures, dict(timings), filters, take_accumulators(steps))
