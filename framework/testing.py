"""Small algorithms for testing sequences (importable, so they also run in worker processes)."""

from __future__ import annotations

from typing import Any

from recotrig.framework.algorithm import Algorithm, Option, Reader
from recotrig.framework.collection import Collection, EventInfo


class FailOn(Algorithm):
    """Raises on the chosen entries; passes the event through otherwise."""

    outputs = ("checked",)
    entries = Option([0], "entries on which to fail", type=list)

    def execute(self, event: EventInfo) -> EventInfo:
        entry = int(event.entry[0])
        if entry in self.entries:
            raise RuntimeError(f"bad event {entry}")
        return event


class Rows(Collection, type_name="testing.Rows"):
    """A physics-free collection for engine tests: one integer per row."""

    columns = {"value": "i8"}


class Combine(Algorithm):
    """Reads two collections and passes the first on (used to build a cycle)."""

    outputs = ("combined",)

    def execute(self, first: Collection, second: Collection) -> Collection:
        return first


class Relabel(Algorithm):
    """Passes a collection on under another key."""

    outputs = ("relabelled",)

    def execute(self, source: Collection) -> Collection:
        return source


class Nothing(Algorithm):
    """Does nothing with its input: measures the sequencer's own cost per call."""

    outputs = ()

    def execute(self, event: EventInfo) -> None:
        return None


class Pass(Algorithm):
    """Passes its input on under a new key (chain links for overhead benchmarks)."""

    outputs = ("out",)

    def execute(self, inp: Any) -> Any:
        return inp


class CountingReader(Reader):
    """A store of ``events`` empty events (the sequencer adds each event's EventInfo)."""

    outputs = ()
    events = Option(1000, "number of events")

    def n_events(self) -> int:
        return self.events

    def read(self, entry: int) -> None:
        return None


class PassChunk(Pass):
    """``Pass`` with a chunk path (overhead benchmarks of the chunk path)."""

    def execute_chunk(self, inp: list[Any]) -> list[Any]:
        return inp


class FlakyOnce(Algorithm):
    """Fails the first time it sees each chunk's first entry, in any process: a marker file in
    ``folder`` remembers the attempt (retry tests)."""

    outputs = ("flaky",)
    folder = Option("", "where the attempt markers go")

    def execute(self, event: EventInfo) -> EventInfo:
        import os

        marker = os.path.join(self.folder, f"seen-{int(event.entry[0])}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            raise RuntimeError(f"transient failure at entry {int(event.entry[0])}")
        return event


class KillOnce(Algorithm):
    """Kills its own process (SIGKILL) the first time it reaches entry ``entry``; a marker file in
    ``folder`` makes the re-run pass (worker-death tests)."""

    outputs = ("survived",)
    folder = Option("", "where the marker goes")
    entry = Option(0, "entry at which the process dies")

    def execute(self, event: EventInfo) -> EventInfo:
        import os
        import signal

        marker = os.path.join(self.folder, "killed")
        if int(event.entry[0]) == self.entry and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return event
