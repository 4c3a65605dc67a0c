"""Running a checked plan over a range of entries.

The executor runs the parallel part of the plan over chunks of entries (``executors.py``) and
yields one ``ChunkResult`` per chunk, in chunk order. Here, in the main process, each chunk's
events are put back into an event store (each key under the algorithm that produced it), the
serial part of the plan (writers, and whatever depends on them) runs over them in event order, and
the metrics' accumulators are merged in chunk order, so outputs do not depend on the executor. At
the end the metrics summarise into the ``RunResult`` and the serial algorithms finalize; a run
that fails on the way cancels its workers and tells its writers to discard what they began.
"""

from __future__ import annotations

import math
import resource
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from recotrig.framework.algorithm import Algorithm, Metric, ProcessContext
from recotrig.framework.executors import Chunk, Executor, IterativeExecutor, Outcome, ProcessExecutor
from recotrig.framework.plan import Plan
from recotrig.framework.record import run_record
from recotrig.framework.result import RunResult, per_event_table, timing_rows
from recotrig.framework.worker import (
    ChunkFailed,
    ChunkResult,
    EventError,
    EventFailure,
    EventState,
    InputError,
    Step,
    Worker,
    run_chunk,
    take_accumulators,
)

__all__ = ["choose_executor", "run_plan"]

#: an input file's part of the entries: (file, first entry of the file, entries in the file)
Segment = tuple[str, int, int]


def file_ranges(segments: list[Segment], start: int, stop: int) -> list[tuple[str, int, int, int]]:
    """(file, first entry of the file, a, b): the part [a, b) of [start, stop) in each file."""
    out = []
    for path, first, count in segments:
        a, b = max(start, first), min(stop, first + count)
        if a < b:
            out.append((path, first, a, b))
    return out


def make_chunks(segments: list[Segment], start: int, stop: int, size: int) -> tuple[list[Chunk], dict[Chunk, str]]:
    """Chunks of at most ``size`` entries covering [start, stop), none crossing a file; and the file
    of each chunk."""
    chunks, files = [], {}
    for path, _, a, b in file_ranges(segments, start, stop):
        for s in range(a, b, size):
            chunk = (s, min(b, s + size))
            chunks.append(chunk)
            files[chunk] = path
    return chunks, files


def default_chunk_size(events: int, workers: int) -> int:
    """About eight chunks per worker (at most 50 entries each); 10 entries in this process."""
    return max(1, min(50, math.ceil(events / (8 * workers)))) if workers > 1 else 10


def choose_executor(executor: Executor | None, *, jobs: int, events: int, retries: int) -> Executor:
    """``executor`` if given; else in this process for one job, a process pool otherwise (never
    more processes than events)."""
    if executor is not None:
        return executor
    workers = max(1, min(jobs, events))
    return IterativeExecutor(retries=retries) if workers == 1 else ProcessExecutor(workers, retries=retries)


def _merge(total: Any, part: Any) -> Any:
    if total is None:
        return part
    merged = total.merge(part)
    return total if merged is None else merged


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _progress(total: int, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, unit="evt", disable=(None if enabled is None else not enabled), leave=False, dynamic_ncols=True
    )


@dataclass
class Tally:
    """What the main process gathers from the chunks, in chunk order."""

    timings: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    filters: dict[str, list[int]] = field(default_factory=dict)  # filter -> [seen, passed]
    failures: list[EventFailure] = field(default_factory=list)
    accumulators: dict[str, Any] = field(default_factory=dict)
    per_event: list[tuple] = field(default_factory=list)  # per processed event: run, event, seconds per step
    bad_files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return len(self.per_event)

    def add_counts(self, chunk: ChunkResult) -> None:
        for name, values in chunk.timings.items():
            self.timings[name].extend(values)
        for name, (seen, passed) in chunk.filters.items():
            counts = self.filters.setdefault(name, [0, 0])
            counts[0] += seen
            counts[1] += passed
        self.failures.extend(chunk.failures)

    def merge(self, parts: dict[str, Any]) -> None:
        for name, part in parts.items():
            self.accumulators[name] = _merge(self.accumulators.get(name), part)

    def add_events(self, events: list[EventState]) -> None:
        self.per_event.extend((*ev.key, *ev.seconds) for ev in events if not ev.failed)


class Run:
    """One run of a checked plan over the entries [start, stop) with a chosen executor."""

    def __init__(
        self,
        plan: Plan,
        algorithms: list[Algorithm],
        executor: Executor,
        *,
        policy: str,
        entries: tuple[int, int],
        chunk_size: int | None,
        record: dict[str, Any] | None,
        skip_bad_files: bool,
        progress: bool | None,
    ):
        self.plan, self.executor, self.policy = plan, executor, policy
        self.start, self.stop = entries
        self.skip_bad_files, self.progress = skip_bad_files, progress
        self.workers = executor.workers
        segments = plan.readers[0].segments()
        size = default_chunk_size(self.stop - self.start, self.workers) if chunk_size is None else chunk_size
        self.chunks, self.files = make_chunks(segments, self.start, self.stop, size)
        fileset = [
            {"file": f, "entries": [a - first, b - first]}
            for f, first, a, b in file_ranges(segments, self.start, self.stop)
        ]
        self.record = run_record(
            algorithms, error_policy=policy, entries=entries, extra={**(record or {}), "fileset": fileset}
        )
        self.tally = Tally(
            bad_files=[
                {"file": f, "reason": r, "entries": None} for reader in plan.readers for f, r in reader.bad_inputs()
            ]
        )
        self.names = [a.name for a in plan.parallel + plan.serial]  # the per-event timing columns
        offset = len(plan.parallel)
        self.serial = [Step(a, plan.gates.get(a.name, frozenset()), offset + i) for i, a in enumerate(plan.serial)]

    def execute(self) -> RunResult:
        t0 = time.perf_counter()
        bar = None
        ok = False
        try:
            self._start()
            bar = _progress(self.stop - self.start, self.progress)
            c0, loop0 = _cpu(), time.perf_counter()  # the main process's CPU while events run
            for outcome in self.executor.map(self.chunks):
                self._take(outcome)
                bar.update(outcome.stop - outcome.start)
            main_cpu_s, loop_s = _cpu() - c0, time.perf_counter() - loop0
            self.executor.close()
            result = self._result(time.perf_counter() - t0, main_cpu_s, loop_s)
            self._summarise(result)
            ok = True
            return result
        finally:
            if bar is not None:
                bar.close()
            if not ok:
                self._abandon()

    def _start(self) -> None:
        """Start the executor (worker processes are forked before the main process makes threads),
        then initialise the serial part here."""
        plan = self.plan
        self.executor.start(Worker(plan.parallel, plan.gates, plan.ship_keys, self.policy, len(self.names)))
        main = ProcessContext(threads=max(1, ProcessContext.cores() // max(1, self.workers)), record=self.record)
        for alg in plan.serial:
            alg.context = main
            alg.initialize()
            if isinstance(alg, Metric):
                alg.acc = alg.accumulator()

    def _take(self, outcome: Outcome) -> None:
        """One chunk's outcome: its events through the serial part, its counts and accumulators merged."""
        if isinstance(outcome, ChunkFailed):
            self._failed(outcome)
            return
        tally = self.tally
        tally.add_counts(outcome)
        events = [shipped.state() for shipped in outcome.events]
        tally.failures.extend(run_chunk(self.serial, events, tally.timings, tally.filters, self.policy))
        tally.merge({**outcome.accumulators, **take_accumulators(self.serial)})
        tally.add_events(events)

    def _failed(self, chunk: ChunkFailed) -> None:
        """A chunk that failed as a whole: left out and recorded when its input file cannot be read
        and the run skips bad files; else the run stops, naming the file."""
        error, path = chunk.error, self.files[(chunk.start, chunk.stop)]
        if not isinstance(error, InputError):
            raise error
        if not self.skip_bad_files:
            raise EventError(f"input file {path}: {error}") from error
        self.tally.bad_files.append({"file": path, "reason": error.reason, "entries": [chunk.start, chunk.stop]})

    def _result(self, wall_s: float, main_cpu_s: float, loop_s: float) -> RunResult:
        tally = self.tally
        tally.failures.sort(key=lambda f: f.entry)
        return RunResult(
            start=self.start,
            stop=self.stop,
            processed=tally.processed,
            failures=tally.failures,
            timing=timing_rows([a.name for a in self.plan.ordered], tally.timings),
            wall_s=wall_s,
            jobs=self.workers,
            filters={k: {"seen": v[0], "passed": v[1]} for k, v in tally.filters.items()},
            main_cpu_s=main_cpu_s,
            loop_s=loop_s,
            per_event=per_event_table(self.names, tally.per_event),
            record=self.record,
            bad_files=tally.bad_files,
        )

    def _summarise(self, result: RunResult) -> None:
        """Metrics summarise their merged accumulators, serial algorithms see the result, all finalize."""
        plan = self.plan
        producers = {key: name for key, (name, _) in plan.producers.items()}
        for alg in plan.metrics:
            acc = self.tally.accumulators.get(alg.name)
            alg.summarise(acc if acc is not None else alg.accumulator(), result, producers)
        for alg in plan.serial:
            end_of_run = getattr(alg, "end_of_run", None)
            if end_of_run is not None:
                end_of_run(result, producers)
        for alg in plan.serial + [m for m in plan.metrics if m not in plan.serial]:
            alg.finalize()

    def _abandon(self) -> None:
        """The run failed or was interrupted: end the workers now; writers discard what they began."""
        self.executor.close(cancel=True)
        for alg in self.plan.serial:
            discard = getattr(alg, "discard", None)
            if discard is not None:
                discard()


def run_plan(
    plan: Plan,
    algorithms: list[Algorithm],
    *,
    policy: str,
    entries: tuple[int, int],
    jobs: int,
    executor: Executor | None,
    chunk_size: int | None,
    retries: int,
    record: dict[str, Any] | None,
    skip_bad_files: bool,
    progress: bool | None,
) -> RunResult:
    """Run ``plan`` over ``entries`` (checked, non-empty); ``algorithms`` as the user listed them
    (the run record keeps their order)."""
    chosen = choose_executor(executor, jobs=jobs, events=entries[1] - entries[0], retries=retries)
    return Run(
        plan,
        algorithms,
        chosen,
        policy=policy,
        entries=entries,
        chunk_size=chunk_size,
        record=record,
        skip_bad_files=skip_bad_files,
        progress=progress,
    ).execute()
