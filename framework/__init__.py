"""The engine: algorithms with typed inputs and outputs, the per-event store, the sequencer and
its executors, and the event data model. It knows nothing of physics."""

from .algorithm import Algorithm, ConfigError, Option, Port, Reader, Writer
from .executors import IterativeExecutor, ProcessExecutor
from .sequencer import EVENT_KEY, EventError, EventFailure, RunResult, Sequencer
from .store import DuplicateKeyError, EventStore, MissingKeyError

__all__ = [
    "Algorithm",
    "ConfigError",
    "Option",
    "Port",
    "Reader",
    "Writer",
    "IterativeExecutor",
    "ProcessExecutor",
    "EVENT_KEY",
    "EventError",
    "EventFailure",
    "RunResult",
    "Sequencer",
    "DuplicateKeyError",
    "EventStore",
    "MissingKeyError",
]
