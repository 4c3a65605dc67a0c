"""What runs on a Dask worker for ``DaskExecutor`` (imported only when Dask is used)."""

from __future__ import annotations

from typing import Any

from distributed import WorkerPlugin as _Base
from distributed import get_worker

from recotrig.framework.algorithm import ProcessContext
from recotrig.framework.worker import ChunkResult, Worker

PLUGIN = "recotrig-worker"


class WorkerPlugin(_Base):
    """Holds the sequence's ``Worker`` on a Dask worker: shipped once, started on the first chunk."""

    name = PLUGIN

    def __init__(self, worker: Worker, workers: int):
        self.worker = worker
        self.workers = workers
        self.context = ProcessContext.for_worker(0, workers)

    def setup(self, worker: Any) -> None:
        try:
            index = int(worker.name)
        except (TypeError, ValueError):
            index = abs(hash(worker.name)) % 10_000
        self.context = ProcessContext.for_worker(index, self.workers)

    def teardown(self, worker: Any) -> None:
        self.worker.stop()


def process(start: int, stop: int) -> ChunkResult:
    plugin = get_worker().plugins[PLUGIN]
    plugin.worker.start(plugin.context)
    return plugin.worker.process(start, stop)
