"""The engine: algorithms with typed inputs and outputs, the per-event store, the sequencer and
its executors, and the event data model. It knows nothing of physics."""
