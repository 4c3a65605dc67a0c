"""The sequencer: checks a sequence's data flow, orders it and runs it over events.

Before the first event the whole data flow is emulated: every input must have exactly one producer
of a compatible type and the graph must have no cycle; the order follows dependencies, not
insertion. Events are processed in chunks of entries by an executor (``executors.py``): in this
process, or in worker processes. Writers (``serial`` algorithms) always run here, in event order,
so outputs do not depend on the executor.
"""

from __future__ import annotations

import math
import statistics
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

from .algorithm import Algorithm, ConfigError, Reader
from .edm import EventInfo
from .store import EventStore, similar

__all__ = ["Sequencer", "RunResult", "EventFailure", "EventError", "EVENT_KEY"]

#: the sequencer itself writes each event's EventInfo under this key
EVENT_KEY = "event"
_SEQUENCER = "Sequencer"


class EventError(RuntimeError):
    """An algorithm failed on an event and the error policy is ``abort``."""


@dataclass(frozen=True)
class EventFailure:
    """An event skipped under the ``skip`` policy: which, where and why."""

    entry: int
    event_id: int
    algorithm: str
    error: str

    def __str__(self) -> str:
        return f"event {self.event_id} (entry {self.entry}) skipped: {self.algorithm} failed: {self.error}"


# ------------------------------------------------------------------------------------------------
# data-flow check
# ------------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """A checked sequence: algorithms in execution order, split into the part that may run in
    worker processes and the serial part that runs in the main process."""

    ordered: list[Algorithm]
    parallel: list[Algorithm]
    serial: list[Algorithm]
    producers: dict[str, tuple[str, Any]]  # key -> (algorithm name, type)
    ship_keys: tuple[str, ...]  # keys the serial part needs from the parallel part

    @property
    def readers(self) -> list[Reader]:
        return [a for a in self.ordered if isinstance(a, Reader)]


def _type_ok(produced: Any, wanted: Any) -> bool:
    if wanted in (object, Any) or produced in (object, Any):
        return True
    try:
        return issubclass(produced, wanted)
    except TypeError:  # generic aliases and the like: not checked
        return True


def _type_name(t: Any) -> str:
    return getattr(t, "__name__", repr(t))


def check(algorithms: list[Algorithm]) -> Plan:
    """Emulate the data flow; raise ``ConfigError`` naming algorithms and keys on any problem."""
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

    producers: dict[str, tuple[str, Any]] = {EVENT_KEY: (_SEQUENCER, EventInfo)}
    for alg in algorithms:
        for port in alg.output_ports():
            if port.key in producers:
                raise ConfigError(
                    f"key {port.key!r} is produced twice: by {producers[port.key][0]} and by {alg.name} "
                    f"(output {port.name!r}); rename one with {alg.name}.{port.name}=<other key>"
                )
            producers[port.key] = (alg.name, port.type)

    deps: dict[str, set[str]] = {}
    for alg in algorithms:
        deps[alg.name] = set()
        for port in alg.input_ports():
            if port.key not in producers:
                if port.optional:
                    continue
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
            if not _type_ok(ptype, port.type):
                raise ConfigError(
                    f"type mismatch on key {port.key!r}: {producer} produces {_type_name(ptype)}, "
                    f"but {alg.name} input {port.name!r} expects {_type_name(port.type)}"
                )
            if producer != _SEQUENCER:
                deps[alg.name].add(producer)

    ordered = _toposort(algorithms, deps)

    serial_names: set[str] = set()
    for alg in ordered:  # anything downstream of a serial algorithm is serial too
        if alg.serial or deps[alg.name] & serial_names:
            serial_names.add(alg.name)
    parallel = [a for a in ordered if a.name not in serial_names]
    serial = [a for a in ordered if a.name in serial_names]
    parallel_keys = {EVENT_KEY} | {p.key for a in parallel for p in a.output_ports()}
    ship = sorted({p.key for a in serial for p in a.input_ports() if p.key in parallel_keys} | {EVENT_KEY})
    return Plan(ordered, parallel, serial, producers, tuple(ship))


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
            loop = path[path.index(nxt):] + [nxt]
            return " -> ".join(reversed(loop))
        path.append(nxt)
        seen.add(nxt)


# ------------------------------------------------------------------------------------------------
# running events
# ------------------------------------------------------------------------------------------------
@dataclass
class ChunkResult:
    """What one chunk of entries gives back to the main process."""

    start: int
    stop: int
    events: list[tuple[int, dict[str, Any], list[float]]]  # (entry, shipped keys, seconds per step) if ok
    failures: list[EventFailure]
    timings: dict[str, list[float]]


class _Step:
    """An algorithm with its ports resolved once, so the per-event loop does little work."""

    __slots__ = ("alg", "name", "is_reader", "inputs", "outputs", "single")

    def __init__(self, alg: Algorithm):
        self.alg = alg
        self.name = alg.name
        self.is_reader = isinstance(alg, Reader)
        self.inputs = tuple((p.name, p.key, p.optional) for p in alg.input_ports())
        self.outputs = tuple((p.key, p.type if isinstance(p.type, type) and p.type not in (object, Any) else None)
                             for p in alg.output_ports())
        self.single = len(self.outputs) == 1

    def run(self, store: EventStore, entry: int) -> None:
        if self.is_reader:
            result = self.alg.read(entry)
        else:
            kwargs = {}
            for name, key, optional in self.inputs:
                if optional and key not in store:
                    kwargs[name] = None
                else:
                    kwargs[name] = store.get(key, consumer=self.name)
            result = self.alg.execute(**kwargs)
        if not self.outputs:
            return
        values = (result,) if self.single else result
        if not isinstance(values, tuple) or len(values) != len(self.outputs):
            raise TypeError(f"{self.name} must return {len(self.outputs)} outputs, returned {type(result).__name__}")
        for (key, expected), value in zip(self.outputs, values):
            if value is None:
                continue
            if expected is not None and not isinstance(value, expected):
                raise TypeError(f"{self.name} output {key!r} should be {expected.__name__}, got {type(value).__name__}")
            store.put(key, value, producer=self.name)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def run_steps(
    steps: list[_Step],
    store: EventStore,
    entry: int,
    event_id: int,
    timings: dict[str, list[float]],
    policy: str,
) -> EventFailure | None:
    """Run ``steps`` on one event; on failure raise (abort) or return the failure (skip)."""
    clock = time.perf_counter
    for step in steps:
        t0 = clock()
        try:
            step.run(store, entry)
        except Exception as err:
            timings[step.name].append(clock() - t0)
            failure = EventFailure(entry, event_id, step.name, _describe(err))
            if policy == "abort":
                raise EventError(
                    f"event {event_id} (entry {entry}): {step.name} failed: {_describe(err)}\n"
                    + "".join(traceback.format_exception(err)[-6:])
                ) from err
            return failure
        timings[step.name].append(clock() - t0)
    return None


class Worker:
    """The parallel part of a plan, as it runs in one process. Picklable before ``start``."""

    def __init__(self, algorithms: list[Algorithm], ship_keys: tuple[str, ...], policy: str):
        self.algorithms = algorithms
        self.ship_keys = ship_keys
        self.policy = policy
        self._steps: list[_Step] | None = None

    def __getstate__(self) -> dict:
        return {"algorithms": self.algorithms, "ship_keys": self.ship_keys, "policy": self.policy, "_steps": None}

    def start(self) -> None:
        if self._steps is None:
            for alg in self.algorithms:
                alg.initialize()
            self._steps = [_Step(a) for a in self.algorithms]

    def stop(self) -> None:
        if self._steps is not None:
            for alg in self.algorithms:
                alg.finalize()
            self._steps = None

    def process(self, start: int, stop: int) -> ChunkResult:
        self.start()
        steps = self._steps
        assert steps is not None
        readers = [s.alg for s in steps if s.is_reader]
        timings: dict[str, list[float]] = defaultdict(list)
        events: list[tuple[int, dict[str, Any], list[float]]] = []
        failures: list[EventFailure] = []
        prepared: dict[str, float] = {}  # chunk loading time, charged to each reader's first event
        for reader in readers:
            t0 = time.perf_counter()
            reader.prepare(start, stop)
            prepared[reader.name] = time.perf_counter() - t0
        primary = readers[0]
        for entry in range(start, stop):
            event_id = int(primary.event_id(entry))
            store = EventStore()
            store.put(EVENT_KEY, EventInfo(entry=[entry], event_id=[event_id]), producer=_SEQUENCER)
            failure = run_steps(steps, store, entry, event_id, timings, self.policy)
            for name, seconds in prepared.items():
                if timings[name]:
                    timings[name][-1] += seconds
            prepared.clear()
            if failure is not None:
                failures.append(failure)
                continue
            shipped = {k: store.get(k, consumer=_SEQUENCER) for k in self.ship_keys if k in store}
            events.append((entry, shipped, [timings[s.name][-1] for s in steps]))
        return ChunkResult(start, stop, events, failures, dict(timings))


@dataclass
class RunResult:
    """What a run did: events processed and skipped, and where the time went."""

    start: int
    stop: int
    processed: int
    failures: list[EventFailure]
    timing: list[dict[str, Any]]
    wall_s: float
    jobs: int = 1
    #: per processed event: "event_id" and, per algorithm, its time in ms (arrays in event order)
    per_event: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return (self.processed + len(self.failures)) / self.wall_s if self.wall_s > 0 else math.inf

    def timing_table(self) -> str:
        head = f"{'algorithm':<28}{'calls':>8}{'mean ms':>11}{'median ms':>11}{'share':>8}"
        lines = [head, "-" * len(head)]
        for row in self.timing:
            lines.append(
                f"{row['algorithm']:<28}{row['calls']:>8}{row['mean_ms']:>11.3f}{row['median_ms']:>11.3f}"
                f"{row['share']:>7.1%}"
            )
        lines.append(
            f"{self.processed} events processed, {len(self.failures)} skipped, {self.wall_s:.2f} s wall, "
            f"{self.events_per_s:.1f} events/s, -j {self.jobs}"
        )
        return "\n".join(lines)


def _per_event_table(names: list[str], rows: list[tuple]) -> dict[str, Any]:
    import numpy as np

    table = np.asarray(rows, dtype=float).reshape(len(rows), len(names) + 1)
    out: dict[str, Any] = {"event_id": table[:, 0].astype(np.int64)}
    out.update({name: 1e3 * table[:, i + 1] for i, name in enumerate(names)})
    return out


def timing_rows(order: list[str], timings: dict[str, list[float]]) -> list[dict[str, Any]]:
    total = sum(sum(v) for v in timings.values()) or 1.0
    rows = []
    for name in order:
        values = timings.get(name, [])
        rows.append(
            {
                "algorithm": name,
                "calls": len(values),
                "mean_ms": 1e3 * statistics.fmean(values) if values else 0.0,
                "median_ms": 1e3 * statistics.median(values) if values else 0.0,
                "total_s": sum(values),
                "share": sum(values) / total,
            }
        )
    return rows


# ------------------------------------------------------------------------------------------------
class Sequencer:
    """Runs a list of algorithms over the events of its readers.

    ``error_policy``: ``abort`` stops at the first failing event with an ``EventError`` naming the
    event and the algorithm; ``skip`` drops the event, records an ``EventFailure`` and goes on.
    """

    def __init__(self, algorithms: Iterable[Algorithm], *, error_policy: Literal["abort", "skip"] = "abort"):
        if error_policy not in ("abort", "skip"):
            raise ConfigError(f"error_policy must be 'abort' or 'skip', got {error_policy!r}")
        self.algorithms = list(algorithms)
        self.error_policy = error_policy

    def add(self, algorithm: Algorithm) -> Algorithm:
        self.algorithms.append(algorithm)
        return algorithm

    def algorithm(self, name: str) -> Algorithm:
        for alg in self.algorithms:
            if alg.name == name:
                return alg
        raise KeyError(f"no algorithm named {name!r}; there are {[a.name for a in self.algorithms]}")

    def plan(self) -> Plan:
        return check(self.algorithms)

    # -- graph ---------------------------------------------------------------------------------------
    def graph(self) -> str:
        """The checked data flow as text: algorithms in execution order with their keys."""
        plan = self.plan()
        lines = []
        for i, alg in enumerate(plan.ordered, 1):
            where = "main process" if alg in plan.serial else "event workers"
            lines.append(f"{i}. {alg.name} [{type(alg).__name__}, {where}]")
            for port in alg.input_ports():
                source = plan.producers.get(port.key, ("absent (optional)",))[0]
                lines.append(f"     in  {port.name}: {_type_name(port.type)} <- {port.key!r} from {source}")
            for port in alg.output_ports():
                lines.append(f"     out {port.name}: {_type_name(port.type)} -> {port.key!r}")
        return "\n".join(lines)

    def dot(self) -> str:
        """The data flow as Graphviz dot: algorithms are boxes, keys are edges' labels."""
        plan = self.plan()
        out = ["digraph recotrig {", "  rankdir=LR;", "  node [shape=box];"]
        for alg in plan.ordered:
            out.append(f'  "{alg.name}" [label="{alg.name}\\n{type(alg).__name__}"];')
        for alg in plan.ordered:
            for port in alg.input_ports():
                if port.key in plan.producers:
                    out.append(f'  "{plan.producers[port.key][0]}" -> "{alg.name}" [label="{port.key}"];')
        out.append("}")
        return "\n".join(out)

    # -- running ---------------------------------------------------------------------------------
    def entries(self, plan: Plan, n_events: int | None, skip: int) -> tuple[int, int]:
        counts = {}
        for reader in plan.readers:
            try:
                counts[reader.name] = int(reader.n_events())
            except Exception as err:
                raise ConfigError(f"{reader.name}: cannot open its store: {_describe(err)}") from err
        if len(set(counts.values())) > 1:
            raise ConfigError(f"readers disagree on the number of events: {counts}")
        available = next(iter(counts.values()))
        if skip < 0 or (n_events is not None and n_events < 0):
            raise ConfigError("-n and --skip must not be negative")
        start = min(skip, available)
        stop = available if n_events is None else min(available, start + n_events)
        return start, stop

    def run(
        self,
        *,
        n_events: int | None = None,
        skip: int = 0,
        jobs: int = 1,
        executor: Any = None,
        chunk_size: int | None = None,
        progress: bool | None = None,
    ) -> RunResult:
        """Process entries [skip, skip + n_events) and return what happened.

        ``executor`` defaults to in-process for ``jobs == 1`` and to a process pool otherwise.
        """
        from .executors import IterativeExecutor, ProcessExecutor

        plan = self.plan()
        start, stop = self.entries(plan, n_events, skip)
        if executor is None:
            executor = IterativeExecutor() if jobs <= 1 else ProcessExecutor(jobs)
        workers = getattr(executor, "workers", 1)
        if chunk_size is None:
            chunk_size = max(1, min(50, math.ceil((stop - start) / (8 * workers)))) if workers > 1 else 10
        chunks = [(s, min(stop, s + chunk_size)) for s in range(start, stop, chunk_size)]

        worker = Worker(plan.parallel, plan.ship_keys, self.error_policy)
        serial_steps = [_Step(a) for a in plan.serial]
        for alg in plan.serial:
            alg.initialize()
        timings: dict[str, list[float]] = defaultdict(list)
        failures: list[EventFailure] = []
        processed = 0
        per_event: list[tuple] = []  # (event id, seconds of each step) for processed events
        t0 = time.perf_counter()
        bar = _progress(stop - start, progress)
        ok = False
        try:
            for chunk in executor.run(worker, chunks):
                for name, values in chunk.timings.items():
                    timings[name].extend(values)
                failures.extend(chunk.failures)
                for entry, shipped, seconds in chunk.events:
                    store = EventStore()
                    for key, value in shipped.items():
                        store.put(key, value, producer=_SEQUENCER)
                    event_id = int(shipped[EVENT_KEY].event_id[0])
                    failure = run_steps(serial_steps, store, entry, event_id, timings, self.error_policy)
                    if failure is not None:
                        failures.append(failure)
                    else:
                        processed += 1
                        per_event.append((event_id, *seconds, *(timings[s.name][-1] for s in serial_steps)))
                bar.update(chunk.stop - chunk.start)
            ok = True
        finally:
            bar.close()
            if not ok:
                for alg in plan.serial:
                    discard = getattr(alg, "discard", None)
                    if discard is not None:
                        discard()
        failures.sort(key=lambda f: f.entry)
        result = RunResult(
            start=start,
            stop=stop,
            processed=processed,
            failures=failures,
            timing=timing_rows([a.name for a in plan.ordered], timings),
            wall_s=time.perf_counter() - t0,
            jobs=workers,
            per_event=_per_event_table([a.name for a in plan.parallel + plan.serial], per_event),
        )
        # serial algorithms that summarise the run (metrics) see its timing before they finalize
        for alg in plan.serial:
            summarise = getattr(alg, "end_of_run", None)
            if summarise is not None:
                summarise(result, {key: name for key, (name, _) in plan.producers.items()})
        for alg in plan.serial:
            alg.finalize()
        return result


def _progress(total: int, enabled: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="evt", disable=(None if enabled is None else not enabled), leave=False,
                dynamic_ncols=True)
