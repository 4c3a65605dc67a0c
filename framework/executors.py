"""Executors: where chunks of events run. They swap without touching any algorithm.

An executor (the ``Executor`` protocol) is started with a picklable ``Worker`` (the parallel part
of a checked sequence), then maps a list of chunks ``(entry_start, entry_stop)`` to one
``ChunkResult`` per chunk, in chunk order, and is closed. A chunk that raises is retried up to
``retries`` times; one that still
fails is yielded as ``ChunkFailed`` (the sequencer decides: a bad input file may be skipped,
anything else stops the run). Algorithms travel as configuration only; each process gives its
algorithms a ``ProcessContext`` (worker index and count, thread budget) and calls ``initialize``
once before its first chunk. ``ProcessExecutor.start`` returns only when every worker process
exists, so the main process creates no thread before the fork. Closing with ``cancel=True`` (a
failure, Ctrl-C, SIGTERM) ends the worker processes at once instead of waiting for their chunks,
and ``kill_workers`` ends every worker of this process from a signal handler: no run waits on a
worker to stop.

``DaskExecutor`` runs chunks as tasks on a Dask cluster (a ``distributed.LocalCluster`` it starts,
or a scheduler address): the worker configuration is shipped once per Dask worker, heavy state is
built there lazily, a bounded number of tasks is in flight and results come back in chunk order;
Dask re-runs the tasks of a worker that dies.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, runtime_checkable

from recotrig.framework.algorithm import ProcessContext
from recotrig.framework.limits import check_run_options
from recotrig.framework.worker import ChunkFailed, ChunkResult, EventError, Worker

__all__ = ["Chunk", "DaskExecutor", "Executor", "IterativeExecutor", "Outcome", "ProcessExecutor", "kill_workers"]

#: a chunk of entries [start, stop)
Chunk = tuple[int, int]
#: what an executor yields per chunk
Outcome = ChunkResult | ChunkFailed


@runtime_checkable
class Executor(Protocol):
    """Where chunks of events run: what ``Sequencer.run`` needs of an executor."""

    #: the processes that run chunks (sizes the chunks and the main process's thread budget)
    workers: int

    def start(self, worker: Worker) -> None:
        """Get ready to run ``worker`` (the parallel part of a checked sequence) on chunks."""

    def map(self, chunks: list[Chunk]) -> Iterator[Outcome]:
        """One ``ChunkResult`` per chunk (``ChunkFailed`` for one that failed after its retries), in
        chunk order."""

    def close(self, cancel: bool = False) -> None:
        """Release the workers: after the chunks in flight, or at once with ``cancel``."""


class IterativeExecutor:
    """Runs every chunk in this process, one after the other."""

    workers = 1

    def __init__(self, *, retries: int = 0) -> None:
        check_run_options(retries=retries)
        self.retries = retries
        self._worker: Worker | None = None

    def start(self, worker: Worker) -> None:
        self._worker = worker
        worker.start(ProcessContext.for_worker(0, 1))

    def map(self, chunks: list[Chunk]) -> Iterator[Outcome]:
        assert self._worker is not None, "start the executor first"
        for start, stop in chunks:
            for _ in range(self.retries + 1):
                try:
                    result: Outcome = self._worker.process(start, stop)
                    break
                except Exception as err:
                    result = ChunkFailed(start, stop, err)
            yield result

    def close(self, cancel: bool = False) -> None:
        if self._worker is not None:
            worker, self._worker = self._worker, None
            worker.stop()


_WORKER: Worker | None = None
_CONTEXT: ProcessContext | None = None


def _supervised(parent: int) -> None:
    """A worker process ends with its parent (Linux: the kernel sends SIGTERM when the parent dies,
    however it dies); Ctrl-C and a closed terminal (SIGHUP) are the main process's to handle."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above ran
        os._exit(1)


def _init_process(worker: Worker, counter: Any, workers: int, parent: int) -> None:
    global _WORKER, _CONTEXT
    _supervised(parent)
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

    def __init__(
        self, workers: int, *, start_method: str | None = None, max_pending: int | None = None, retries: int = 0
    ):
        check_run_options(workers=workers, retries=retries)
        self.workers = workers
        self.retries = retries
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or ("fork" if "fork" in methods else "spawn")
        self.max_pending = max_pending or 2 * workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self, worker: Worker) -> None:
        context = multiprocessing.get_context(self.start_method)
        counter = context.Value("i", 0)
        self._pool = ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_init_process,
            initargs=(worker, counter, self.workers, os.getpid()),
        )
        _POOLS.add(self._pool)
        # one start-up task per process: every process exists (and has initialised) on return
        for future in [self._pool.submit(_ready) for _ in range(self.workers)]:
            future.result()

    def map(self, chunks: list[Chunk]) -> Iterator[Outcome]:
        pool = self._pool
        assert pool is not None, "start the executor first"
        pending: list[tuple[Chunk, Future]] = []
        try:
            try:
                for chunk in chunks:  # keep a bounded number of chunks in flight, yield in order
                    pending.append((chunk, pool.submit(_process, *chunk)))
                    if len(pending) >= self.max_pending:
                        yield self._checked(self._outcome(*pending.pop(0)), pending)
                while pending:
                    yield self._checked(self._outcome(*pending.pop(0)), pending)
            except BrokenProcessPool as err:  # raised by submit once the pool is broken
                raise self._died(pending) from err
        finally:
            for _, future in pending:
                future.cancel()

    def _checked(self, outcome: Outcome, pending: list) -> Outcome:
        if isinstance(outcome, ChunkFailed) and isinstance(outcome.error, BrokenProcessPool):
            raise self._died([((outcome.start, outcome.stop), None), *pending]) from outcome.error
        return outcome

    @staticmethod
    def _died(in_flight: list) -> EventError:
        """The pool does not say which process held which chunk: name the chunks in flight."""
        ranges = ", ".join(f"{a}..{b - 1}" for (a, b), _ in in_flight[:8]) or "none"
        return EventError(
            f"a worker process died (killed, or out of memory?) while entries {ranges} were in "
            "flight; the process executor cannot go on without it (the Dask executor re-runs "
            "the chunks of a dead worker)"
        )

    def _outcome(self, chunk: Chunk, future: Future) -> Outcome:
        assert self._pool is not None
        for attempt in range(self.retries + 1):
            try:
                return future.result()
            except Exception as err:
                if attempt == self.retries or isinstance(err, BrokenProcessPool):
                    return ChunkFailed(chunk[0], chunk[1], err)
                future = self._pool.submit(_process, *chunk)
        raise AssertionError("unreachable")

    def close(self, cancel: bool = False) -> None:
        """Shut the pool down: after the chunks in flight (``cancel=False``), or at once, ending
        the worker processes (``cancel=True``; also when the wait itself is interrupted)."""
        pool = self._pool
        if pool is None:
            return
        try:
            if cancel:
                _end_workers(pool, signal.SIGTERM)
            pool.shutdown(wait=True, cancel_futures=cancel)
        except BaseException:
            _end_workers(pool, signal.SIGKILL)
            raise
        finally:
            self._pool = None
            _POOLS.discard(pool)


_POOLS: set[ProcessPoolExecutor] = set()  # the pools not yet closed


def _end_workers(pool: ProcessPoolExecutor, signum: int) -> None:
    """Send ``signum`` to the worker processes of ``pool``. The pool's processes are its
    ``_processes`` (``terminate_workers`` is public from Python 3.14 on); the pool then sees them
    gone and fails what was in flight, so nothing waits on them."""
    processes = getattr(pool, "_processes", None) or {}
    with contextlib.suppress(RuntimeError):  # the pool's own thread may change the dict meanwhile
        for process in list(processes.values()):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                if process.pid is not None and process.exitcode is None:
                    os.kill(process.pid, signum)


def kill_workers() -> None:
    """End every worker process of this process's pools now (SIGKILL): for a second signal, or a
    run that must stop without waiting."""
    for pool in list(_POOLS):
        _end_workers(pool, signal.SIGKILL)


# ------------------------------------------------------------------------------------------------
# Dask
# ------------------------------------------------------------------------------------------------
class DaskExecutor:
    """Runs chunks as tasks on Dask distributed: a ``LocalCluster`` of ``workers`` processes (one
    thread each) started here, or the cluster at ``scheduler`` (``tcp://host:8786``).

    The sequence's worker configuration reaches every Dask worker once, as a worker plugin (its
    algorithms initialise on the first chunk); at most ``max_pending`` tasks are in flight and
    results are gathered in chunk order. A failing task is retried ``retries`` times; the tasks of
    a worker that dies are re-run elsewhere by Dask (no event lost, none doubled: each chunk's
    result is taken once, in order).
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        scheduler: str | None = None,
        retries: int = 0,
        max_pending: int | None = None,
        log: Any = None,
    ):
        check_run_options(workers=workers, retries=retries)
        self.workers = workers
        self.scheduler = scheduler
        self.retries = retries
        self.max_pending = max_pending or 4 * workers
        self.log = log if log is not None else sys.stderr
        self.client: Any = None
        self.cluster: Any = None

    def start(self, worker: Worker) -> None:
        import logging

        import cloudpickle
        from distributed import Client, LocalCluster

        from recotrig.framework._dask import PLUGIN, WorkerPlugin

        for name, module in list(sys.modules.items()):  # user steering files travel by value
            if name.startswith("recotrig_user_sequence_"):
                cloudpickle.register_pickle_by_value(module)
        if self.scheduler:
            self.client = Client(self.scheduler)
            self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        else:
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        self.client.register_plugin(WorkerPlugin(worker, self.workers), name=PLUGIN)
        link = getattr(self.client, "dashboard_link", None)
        if link and self.scheduler:
            print(f"Dask dashboard: {link}", file=self.log)

    def map(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        from recotrig.framework._dask import process

        client = self.client
        assert client is not None, "start the executor first"
        pending: list[tuple[Chunk, Any]] = []
        try:
            for chunk in chunks:
                pending.append((chunk, client.submit(process, *chunk, retries=self.retries, pure=False)))
                if len(pending) >= self.max_pending:
                    yield self._outcome(*pending.pop(0))
            while pending:
                yield self._outcome(*pending.pop(0))
        finally:
            for _, future in pending:
                future.cancel()

    @staticmethod
    def _outcome(chunk: Chunk, future: Any) -> Outcome:
        try:
            result = future.result()
        except Exception as err:
            return ChunkFailed(chunk[0], chunk[1], err)
        finally:
            future.release()
        return result

    def close(self, cancel: bool = False) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            client.close()
        if self.cluster is not None:
            cluster, self.cluster = self.cluster, None
            cluster.close()
