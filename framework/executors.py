"""Executors: where chunks of events run. They swap without touching any algorithm.

An executor is started with a picklable ``Worker`` (the parallel part of a checked sequence),
then maps a list of chunks ``(entry_start, entry_stop)`` to one ``ChunkResult`` per chunk, in
chunk order, and is closed. Algorithms travel as configuration only; each process gives its
algorithms a ``ProcessContext`` (worker index and count, thread budget) and calls ``initialize``
once before its first chunk. ``start`` returns only when every worker process exists, so the main
process creates no thread before the fork. A distributed executor (Dask) fits the same contract:
ship the worker once per process, submit ``worker.process(start, stop)`` per chunk, gather in
order with a bounded number in flight.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from .algorithm import ProcessContext
from .worker import ChunkResult, Worker

__all__ = ["IterativeExecutor", "ProcessExecutor"]


class IterativeExecutor:
    """Runs every chunk in this process, one after the other."""

    workers = 1

    def __init__(self) -> None:
        self._worker: Worker | None = None

    def start(self, worker: Worker) -> None:
        self._worker = worker
        worker.start(ProcessContext.for_worker(0, 1))

    def map(self, chunks: list[tuple[int, int]]) -> Iterator[ChunkResult]:
        assert self._worker is not None, "start the executor first"
        for start, stop in chunks:
            yield self._worker.process(start, stop)

    def close(self, cancel: bool = False) -> None:
        if self._worker is not None:
            worker, self._worker = self._worker, None
            worker.stop()


_WORKER: Worker | None = None
_CONTEXT: ProcessContext | None = None


def _init_process(worker: Worker, counter: Any, workers: int) -> None:
    global _WORKER, _CONTEXT
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    _WORKER = worker
    _CONTEXT = ProcessContext.for_worker(index, workers)
    # finalize the process's algorithms when the pool shuts the process down
    multiprocessing.util.Finalize(None, worker.stop, exitpriority=10)


def _ready() -> int:
    assert _WORKER is not None and _CONTEXT is not None, "worker process was not initialised"
    _WORKER.start(_CONTEXT)
    return _CONTEXT.worker_index


def _process(start: int, stop: int) -> ChunkResult:
    assert _WORKER is not None, "worker process was not initialised"
    _WORKER.start(_CONTEXT)
    return _WORKER.process(start, stop)


class ProcessExecutor:
    """Runs chunks in ``workers`` processes; results come back in chunk order, so the output of a
    run does not depend on the number of workers. At most ``max_pending`` chunks are in flight.

    ``start_method`` defaults to ``fork`` where available: algorithms create their heavy state in
    ``initialize``, which runs after the fork, in the worker. Use ``spawn`` when a sequence's
    algorithm classes are importable by module name.
    """

    def __init__(self, workers: int, *, start_method: str | None = None, max_pending: int | None = None):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or ("fork" if "fork" in methods else "spawn")
        self.max_pending = max_pending or 2 * workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self, worker: Worker) -> None:
        context = multiprocessing.get_context(self.start_method)
        counter = context.Value("i", 0)
        self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_process,
                                         initargs=(worker, counter, self.workers))
        # one start-up task per process: every process exists (and has initialised) on return
        for future in [self._pool.submit(_ready) for _ in range(self.workers)]:
            future.result()

    def map(self, chunks: list[tuple[int, int]]) -> Iterator[ChunkResult]:
        pool = self._pool
        assert pool is not None, "start the executor first"
        pending: list[Future] = []
        try:
            for chunk in chunks:  # keep a bounded number of chunks in flight, yield in order
                pending.append(pool.submit(_process, *chunk))
                if len(pending) >= self.max_pending:
                    yield pending.pop(0).result()
            while pending:
                yield pending.pop(0).result()
        finally:
            for future in pending:
                future.cancel()

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            pool.shutdown(wait=True, cancel_futures=cancel)
