"""The sequencer: checks a sequence's data flow, orders it and runs it over events.

Before the first event the whole data flow is emulated: every input must have exactly one producer
of a compatible type, readers declare what their inputs really hold, and the graph must have no
cycle; the order follows dependencies, not insertion (a filter comes before the algorithms listed
after it, which it gates). Events are processed in chunks of entries by an executor
(``executors.py``): in this process, or in worker processes. Writers (``serial`` algorithms)
always run here, in event order, and metrics' accumulators are merged here in chunk order, so
outputs do not depend on the executor.
"""

from __future__ import annotations

import math
import resource
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import numpy as np

from .algorithm import Algorithm, ConfigError, Metric, ProcessContext, Reader
from .collection import EventInfo
from .executors import IterativeExecutor, ProcessExecutor
from .record import run_record
from .store import EventStore, similar
from .worker import (
    ENGINE,
    EVENT_KEY,
    ChunkFailed,
    EventError,
    EventFailure,
    EventState,
    InputError,
    Step,
    Worker,
    run_chunk,
    take_accumulators,
)

__all__ = ["EVENT_KEY", "EventError", "EventFailure", "Plan", "RunResult", "Sequencer", "check"]

#: most worker processes a run starts, whatever -j says (more only add memory and start-up)
MAX_JOBS = 64


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

    gates: dict[str, frozenset[str]] = {}  # algorithm -> filters listed before it
    seen_filters: list[str] = []
    for alg in algorithms:
        gates[alg.name] = frozenset(seen_filters)
        if alg.is_filter:
            seen_filters.append(alg.name)
    absent: dict[str, str] = {}  # key a reader could give but its input does not hold -> why
    for alg in algorithms:
        if isinstance(alg, Reader):
            for name, why in alg.absent().items():
                absent[alg.key(name)] = why

    producers: dict[str, tuple[str, Any]] = {EVENT_KEY: (ENGINE, EventInfo)}
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
        deps[alg.name] = set(gates[alg.name])  # a gated algorithm runs after its filters
        for port in alg.input_ports():
            if port.key not in producers:
                if port.optional:
                    continue
                if port.key in absent:
                    raise ConfigError(
                        f"missing data handle: {alg.name} input {port.name!r} reads key {port.key!r}, "
                        f"which {absent[port.key]}"
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
            if not _type_ok(ptype, port.type):
                raise ConfigError(
                    f"type mismatch on key {port.key!r}: {producer} produces {_type_name(ptype)}, "
                    f"but {alg.name} input {port.name!r} expects {_type_name(port.type)}"
                )
            if producer != ENGINE:
                deps[alg.name].add(producer)

    for alg in algorithms:  # producers' settings an algorithm depends on (a model's binning, say)
        upstream = {port.name: names[producers[port.key][0]] for port in alg.input_ports()
                    if port.key in producers and producers[port.key][0] in names}
        alg.check_upstream(upstream)

    ordered = _toposort(algorithms, deps)

    serial_names: set[str] = set()
    for alg in ordered:  # anything downstream of a serial algorithm is serial too
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
            loop = path[path.index(nxt):] + [nxt]
            return " -> ".join(reversed(loop))
        path.append(nxt)
        seen.add(nxt)


@dataclass
class RunResult:
    """What a run did: events processed and skipped, filter counts, and where the time went."""

    start: int
    stop: int
    processed: int
    failures: list[EventFailure]
    timing: list[dict[str, Any]]
    wall_s: float
    jobs: int = 1
    #: filter name -> {"seen": n, "passed": m}
    filters: dict[str, dict[str, int]] = field(default_factory=dict)
    #: CPU seconds of the main process (all its threads) while events ran: receiving and unpickling
    #: results, merging accumulators, serial algorithms (with -j 1 the events themselves run there)
    main_cpu_s: float = 0.0
    #: seconds of the event loop alone (from the executor's start to the last chunk's result)
    loop_s: float = 0.0
    #: per processed event: "run_number", "event_id" and, per algorithm, its time in ms (NaN where it did not run)
    per_event: dict[str, Any] = field(default_factory=dict)
    #: the run's configuration and provenance (``record.py``)
    record: dict[str, Any] = field(default_factory=dict)
    #: input files left out (``skip_bad_files``): file, reason, and the entries lost (None: at opening)
    bad_files: list[dict[str, Any]] = field(default_factory=list)
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
        for bad in self.bad_files:
            lost = f" (entries {bad['entries'][0]}..{bad['entries'][1] - 1})" if bad["entries"] else ""
            lines.append(f"bad file skipped: {bad['file']}{lost}: {bad['reason']}")
        for name, counts in self.filters.items():
            rate = counts["passed"] / counts["seen"] if counts["seen"] else math.nan
            lines.append(f"filter {name}: {counts['passed']} of {counts['seen']} events passed ({rate:.1%})")
        return "\n".join(lines)


def _per_event_table(names: list[str], rows: list[tuple]) -> dict[str, Any]:
    keys = np.asarray([row[:2] for row in rows], dtype=np.int64).reshape(len(rows), 2)
    table = np.asarray([row[2:] for row in rows], dtype=float).reshape(len(rows), len(names))
    out: dict[str, Any] = {"run_number": keys[:, 0], "event_id": keys[:, 1]}
    out.update({name: 1e3 * table[:, i] for i, name in enumerate(names)})
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


def _ranges(segments: list[tuple[str, int, int]], start: int, stop: int) -> list[tuple[str, int, int, int]]:
    """(file, first entry of the file, a, b): the part [a, b) of [start, stop) in each file."""
    out = []
    for path, first, count in segments:
        a, b = max(start, first), min(stop, first + count)
        if a < b:
            out.append((path, first, a, b))
    return out


def _chunks(segments: list[tuple[str, int, int]], start: int, stop: int,
            size: int) -> tuple[list[tuple[int, int]], dict[tuple[int, int], str]]:
    """Chunks of at most ``size`` entries covering [start, stop), none crossing a file; and the file
    of each chunk."""
    chunks, files = [], {}
    for path, _, a, b in _ranges(segments, start, stop):
        for s in range(a, b, size):
            chunk = (s, min(b, s + size))
            chunks.append(chunk)
            files[chunk] = path
    return chunks, files


def _merge(total: Any, part: Any) -> Any:
    if total is None:
        return part
    merged = total.merge(part)
    return total if merged is None else merged


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
            kind = ", filter" if alg.is_filter else ", metric" if isinstance(alg, Metric) else ""
            gated = plan.gates.get(alg.name)
            lines.append(f"{i}. {alg.name} [{type(alg).__name__}, {where}{kind}]"
                         + (f" gated by {', '.join(sorted(gated))}" if gated else ""))
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
            shape = ' shape=diamond' if alg.is_filter else ""
            out.append(f'  "{alg.name}" [label="{alg.name}\\n{type(alg).__name__}"{shape}];')
        for alg in plan.ordered:
            for port in alg.input_ports():
                if port.key in plan.producers:
                    out.append(f'  "{plan.producers[port.key][0]}" -> "{alg.name}" [label="{port.key}"];')
            for gate in sorted(plan.gates.get(alg.name, ())):
                out.append(f'  "{gate}" -> "{alg.name}" [style=dashed];')
        out.append("}")
        return "\n".join(out)

    # -- running ---------------------------------------------------------------------------------
    def entries(self, plan: Plan, n_events: int | None, skip: int) -> tuple[int, int]:
        counts = {}
        for reader in plan.readers:
            try:
                counts[reader.name] = int(reader.n_events())
            except Exception as err:
                raise ConfigError(f"{reader.name}: cannot open its input: {type(err).__name__}: {err}") from err
        if len(set(counts.values())) > 1:
            raise ConfigError(f"readers disagree on the number of events: {counts}")
        available = next(iter(counts.values()))
        if skip < 0 or (n_events is not None and n_events < 0):
            raise ConfigError("-n and --skip must not be negative")
        start = min(skip, available)
        stop = available if n_events is None else min(available, start + n_events)
        if stop <= start:
            raise ConfigError(
                f"nothing to run: the input holds {available} events and "
                + (f"--skip {skip} is past the end" if skip >= available and available else
                   "-n 0 selects none" if n_events == 0 else "it is empty")
            )
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
        record: dict[str, Any] | None = None,
        retries: int = 0,
        skip_bad_files: bool = False,
    ) -> RunResult:
        """Process entries [skip, skip + n_events) and return what happened.

        ``executor`` defaults to in-process for ``jobs == 1`` and to a process pool otherwise
        (never more processes than events), each retrying a failing chunk ``retries`` times.
        Chunks never cross an input file. With ``skip_bad_files`` a chunk whose input cannot be
        read is left out and recorded (``RunResult.bad_files``); without it the run stops naming
        the file, and writers leave nothing behind. ``record`` adds to the run record (the CLI gives the
        sequence, input and output); the whole record reaches serial algorithms as
        ``self.context.record``.
        """
        if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
            raise ConfigError(f"-j/jobs must be an integer from 1 to {MAX_JOBS}, got {jobs!r}")
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        plan = self.plan()
        start, stop = self.entries(plan, n_events, skip)
        n = stop - start
        if executor is None:
            workers = max(1, min(jobs, n))
            executor = (IterativeExecutor(retries=retries) if workers == 1
                        else ProcessExecutor(workers, retries=retries))
        workers = getattr(executor, "workers", 1)
        if chunk_size is None:
            chunk_size = max(1, min(50, math.ceil(n / (8 * workers)))) if workers > 1 else 10
        segments = plan.readers[0].segments()
        chunks, files = _chunks(segments, start, stop, chunk_size)
        bad_files = [{"file": f, "reason": r, "entries": None} for r_ in plan.readers for f, r in r_.bad_inputs()]
        record = {**(record or {}), "fileset": [
            {"file": f, "entries": [a - first, b - first]} for f, first, a, b in _ranges(segments, start, stop)
        ]}
        full = run_record(self.algorithms, error_policy=self.error_policy, entries=(start, stop),
                          extra=record or {})

        names = [a.name for a in plan.parallel + plan.serial]
        worker = Worker(plan.parallel, plan.gates, plan.ship_keys, self.error_policy, len(names))
        offset = len(plan.parallel)
        serial_steps = [Step(a, plan.gates.get(a.name, frozenset()), offset + i) for i, a in enumerate(plan.serial)]
        timings: dict[str, list[float]] = defaultdict(list)
        failures: list[EventFailure] = []
        filters: dict[str, list[int]] = {}
        totals: dict[str, Any] = {}
        processed = 0
        per_event: list[tuple] = []
        t0 = time.perf_counter()
        bar = None
        ok = False
        try:
            executor.start(worker)  # worker processes are forked before the main process makes threads
            main = ProcessContext(threads=max(1, ProcessContext.cores() // max(1, workers)), record=full)
            for alg in plan.serial:
                alg.context = main
                alg.initialize()
                if isinstance(alg, Metric):
                    alg.acc = alg.accumulator()
            bar = _progress(n, progress)
            c0 = _cpu()  # the main process's CPU while events run: receiving, merging, serial algorithms
            loop0 = time.perf_counter()
            for chunk in executor.map(chunks):
                if isinstance(chunk, ChunkFailed):
                    if skip_bad_files and isinstance(chunk.error, InputError):
                        bad_files.append({"file": files[(chunk.start, chunk.stop)], "reason": chunk.error.reason,
                                          "entries": [chunk.start, chunk.stop]})
                        bar.update(chunk.stop - chunk.start)
                        continue
                    error = chunk.error
                    if isinstance(error, InputError):
                        raise EventError(f"input file {files[(chunk.start, chunk.stop)]}: {error}") from error
                    raise error
                for name, values in chunk.timings.items():
                    timings[name].extend(values)
                for name, (seen, passed) in chunk.filters.items():
                    counts = filters.setdefault(name, [0, 0])
                    counts[0] += seen
                    counts[1] += passed
                failures.extend(chunk.failures)
                events = []
                for entry, event_key, shipped, seconds, rejected in chunk.events:
                    store = EventStore()
                    for key, value in shipped.items():
                        store.put(key, value, producer=ENGINE)
                    events.append(EventState(entry, event_key, store, seconds, set(rejected)))
                failures.extend(run_chunk(serial_steps, events, timings, filters, self.error_policy))
                parts = {**chunk.accumulators, **take_accumulators(serial_steps)}
                for name, part in parts.items():
                    totals[name] = _merge(totals.get(name), part)
                for ev in events:
                    if not ev.failed:
                        processed += 1
                        per_event.append((*ev.key, *ev.seconds))
                bar.update(chunk.stop - chunk.start)
            main_cpu = _cpu() - c0
            loop_s = time.perf_counter() - loop0
            executor.close()
            failures.sort(key=lambda f: f.entry)
            result = RunResult(
                start=start,
                stop=stop,
                processed=processed,
                failures=failures,
                timing=timing_rows([a.name for a in plan.ordered], timings),
                wall_s=time.perf_counter() - t0,
                jobs=workers,
                filters={k: {"seen": v[0], "passed": v[1]} for k, v in filters.items()},
                main_cpu_s=main_cpu,
                loop_s=loop_s,
                per_event=_per_event_table(names, per_event),
                record=full,
                bad_files=bad_files,
            )
            producers = {key: name for key, (name, _) in plan.producers.items()}
            for alg in plan.metrics:
                acc = totals.get(alg.name)
                alg.summarise(acc if acc is not None else alg.accumulator(), result, producers)
            for alg in plan.serial:
                summarise = getattr(alg, "end_of_run", None)
                if summarise is not None:
                    summarise(result, producers)
            for alg in plan.serial + [m for m in plan.metrics if m not in plan.serial]:
                alg.finalize()
            ok = True
            return result
        finally:
            if bar is not None:
                bar.close()
            if not ok:
                executor.close(cancel=True)
                for alg in plan.serial:
                    discard = getattr(alg, "discard", None)
                    if discard is not None:
                        discard()


def _progress(total: int, enabled: bool | None):
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="evt", disable=(None if enabled is None else not enabled), leave=False,
                dynamic_ncols=True)
