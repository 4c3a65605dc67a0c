"""Executors: where chunks of events run. They swap without touching any algorithm.

An executor takes a picklable ``Worker`` (the parallel part of a checked sequence) and a list of
chunks ``(entry_start, entry_stop)`` and yields one ``ChunkResult`` per chunk, in chunk order.
Algorithms travel as configuration only; each process calls ``initialize`` once before its first
chunk. A distributed executor (Dask) fits the same contract: ship the worker once per process
(e.g. a worker plugin), submit ``worker.process(start, stop)`` per chunk, gather in order.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.util
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from .sequencer import ChunkResult, Worker

__all__ = ["IterativeExecutor", "ProcessExecutor"]


class IterativeExecutor:
    """Runs every chunk in this process, one after the other."""

    workers = 1

    def run(self, worker: Worker, chunks: list[tuple[int, int]]) -> Iterator[ChunkResult]:
        worker.start()
        try:
            for start, stop in chunks:
                yield worker.process(start, stop)
        finally:
            worker.stop()


_WORKER: Worker | None = None


def _init_process(worker: Worker) -> None:
    global _WORKER
    _WORKER = worker
    # finalize the process's algorithms when the pool shuts the process down
    multiprocessing.util.Finalize(None, worker.stop, exitpriority=10)


def _process(start: int, stop: int) -> ChunkResult:
    assert _WORKER is not None, "worker process was not initialised"
    return _WORKER.process(start, stop)


class ProcessExecutor:
    """Runs chunks in ``workers`` processes; results come back in chunk order, so the output of a
    run does not depend on the number of workers.

    ``start_method`` defaults to ``fork`` where available: algorithms create their heavy state in
    ``initialize``, which runs after the fork, in the worker. Use ``spawn`` when a sequence's
    algorithm classes are importable by module name.
    """

    def __init__(self, workers: int, *, start_method: str | None = None, max_pending: int | None = None):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or ("fork" if "fork" in methods else "spawn")
        self.max_pending = max_pending or 4 * workers

    def run(self, worker: Worker, chunks: list[tuple[int, int]]) -> Iterator[ChunkResult]:
        context = multiprocessing.get_context(self.start_method)
        with ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_process,
                                 initargs=(worker,)) as pool:
            pending = []
            todo = iter(chunks)
            try:
                for chunk in todo:  # keep a bounded number of chunks in flight, yield in order
                    pending.append(pool.submit(_process, *chunk))
                    if len(pending) >= self.max_pending:
                        yield pending.pop(0).result()
                while pending:
                    yield pending.pop(0).result()
            finally:
                for future in pending:
                    future.cancel()
