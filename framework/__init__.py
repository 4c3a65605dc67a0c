"""The engine: algorithms with typed inputs and outputs, filters and metrics, the per-event
store, the sequencer and its executors, the collection mechanism (registered types with a
schema) and the run record. It knows nothing of physics: the physics types live in
``recotrig.edm``."""

from .algorithm import Algorithm, ConfigError, Filter, Metric, Option, Port, ProcessContext, Reader, Writer
from .collection import Collection, ColumnError, EventInfo, TypeRegistryError, from_schema, registered_type
from .executors import IterativeExecutor, ProcessExecutor
from .sequencer import EVENT_KEY, EventError, EventFailure, RunResult, Sequencer
from .store import DuplicateKeyError, EventStore, MissingKeyError

__all__ = [
    "Algorithm",
    "Collection",
    "ColumnError",
    "ConfigError",
    "DuplicateKeyError",
    "EVENT_KEY",
    "EventError",
    "EventFailure",
    "EventInfo",
    "EventStore",
    "Filter",
    "IterativeExecutor",
    "Metric",
    "MissingKeyError",
    "Option",
    "Port",
    "ProcessContext",
    "ProcessExecutor",
    "Reader",
    "RunResult",
    "Sequencer",
    "TypeRegistryError",
    "Writer",
    "from_schema",
    "registered_type",
]
