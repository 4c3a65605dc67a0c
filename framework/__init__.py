"""The engine: algorithms with typed inputs and outputs, filters and metrics, the per-event
store, the sequencer and its executors, the collection mechanism (registered types with a
schema) and the run record. It knows nothing of physics: the physics types live in
``recotrig.edm``."""

from recotrig.framework.algorithm import (
    Algorithm,
    ConfigError,
    Filter,
    Many,
    Metric,
    Option,
    Port,
    ProcessContext,
    Reader,
    Writer,
)
from recotrig.framework.collection import (
    Collection,
    ColumnError,
    EventInfo,
    TypeRegistryError,
    from_schema,
    lists,
    registered_type,
)
from recotrig.framework.executors import Executor, IterativeExecutor, ProcessExecutor
from recotrig.framework.sequencer import EVENT_KEY, EventError, EventFailure, RunResult, Sequencer
from recotrig.framework.store import DuplicateKeyError, EventStore, MissingKeyError

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
    "Executor",
    "Filter",
    "IterativeExecutor",
    "Many",
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
    "lists",
    "registered_type",
]
