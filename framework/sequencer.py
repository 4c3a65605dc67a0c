"""The sequencer: the public face of the engine. It checks a sequence, shows its data flow and
runs it over events.

The work is split by stage: ``plan.py`` checks the data flow before any event and orders it
(``check``, ``Plan``), ``runner.py`` runs the plan chunk by chunk with an executor
(``executors.py``: in this process, in worker processes, or on a Dask cluster), and ``result.py``
holds what a run gives back (``RunResult``). Writers (``serial`` algorithms) always run in the main
process, in event order, and metrics' accumulators are merged there in chunk order, so outputs do
not depend on the executor.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from recotrig.framework.algorithm import Algorithm, ConfigError, Metric
from recotrig.framework.executors import Executor
from recotrig.framework.limits import MAX_JOBS, check_run_options
from recotrig.framework.plan import Plan, check
from recotrig.framework.plan import type_name as _type_name
from recotrig.framework.result import RunResult, timing_rows
from recotrig.framework.runner import run_plan
from recotrig.framework.worker import EVENT_KEY, EventError, EventFailure

__all__ = [
    "EVENT_KEY",
    "MAX_JOBS",
    "EventError",
    "EventFailure",
    "Plan",
    "RunResult",
    "Sequencer",
    "check",
    "timing_rows",
]


# ------------------------------------------------------------------------------------------------
class Sequencer:
    """Runs a list of algorithms over the events of its readers.

    ``error_policy``: ``abort`` stops at the first failing event with an ``EventError`` naming the
    event and the algorithm; ``skip`` drops the event, records an ``EventFailure`` and goes on.
    """

    def __init__(self, algorithms: Iterable[Algorithm], *, error_policy: Literal["abort", "skip"] = "abort"):
        if error_policy not in ("abort", "skip"):
            raise ConfigError(f"error_policy must be 'abort' or 'skip', got {error_policy!r}")
        self.algorithms = list(algorithms)
        self.error_policy = error_policy

    def add(self, algorithm: Algorithm) -> Algorithm:
        self.algorithms.append(algorithm)
        return algorithm

    def algorithm(self, name: str) -> Algorithm:
        for alg in self.algorithms:
            if alg.name == name:
                return alg
        raise KeyError(f"no algorithm named {name!r}; there are {[a.name for a in self.algorithms]}")

    def plan(self) -> Plan:
        return check(self.algorithms)

    # -- graph ---------------------------------------------------------------------------------------
    def graph(self) -> str:
        """The checked data flow as text: algorithms in execution order with their keys."""
        plan = self.plan()
        lines = []
        for i, alg in enumerate(plan.ordered, 1):
            where = "main process" if alg in plan.serial else "event workers"
            kind = ", filter" if alg.is_filter else ", metric" if isinstance(alg, Metric) else ""
            gated = plan.gates.get(alg.name)
            lines.append(
                f"{i}. {alg.name} [{type(alg).__name__}, {where}{kind}]"
                + (f" gated by {', '.join(sorted(gated))}" if gated else "")
            )
            for port in alg.input_ports():
                source = plan.producers.get(port.key, ("absent (optional)",))[0]
                lines.append(f"     in  {port.name}: {_type_name(port.type)} <- {port.key!r} from {source}")
            for port in alg.output_ports():
                lines.append(f"     out {port.name}: {_type_name(port.type)} -> {port.key!r}")
        return "\n".join(lines)

    def dot(self) -> str:
        """The data flow as Graphviz dot: algorithms are boxes, keys are edges' labels."""
        plan = self.plan()
        out = ["digraph recotrig {", "  rankdir=LR;", "  node [shape=box];"]
        for alg in plan.ordered:
            shape = " shape=diamond" if alg.is_filter else ""
            out.append(f'  "{alg.name}" [label="{alg.name}\\n{type(alg).__name__}"{shape}];')
        for alg in plan.ordered:
            for port in alg.input_ports():
                if port.key in plan.producers:
                    out.append(f'  "{plan.producers[port.key][0]}" -> "{alg.name}" [label="{port.key}"];')
            for gate in sorted(plan.gates.get(alg.name, ())):
                out.append(f'  "{gate}" -> "{alg.name}" [style=dashed];')
        out.append("}")
        return "\n".join(out)

    # -- running ---------------------------------------------------------------------------------
    def entries(self, plan: Plan, n_events: int | None, skip: int) -> tuple[int, int]:
        counts = {}
        for reader in plan.readers:
            try:
                counts[reader.name] = int(reader.n_events())
            except Exception as err:
                raise ConfigError(f"{reader.name}: cannot open its input: {type(err).__name__}: {err}") from err
        if len(set(counts.values())) > 1:
            raise ConfigError(f"readers disagree on the number of events: {counts}")
        available = next(iter(counts.values()))
        if skip < 0 or (n_events is not None and n_events < 0):
            raise ConfigError("-n and --skip must not be negative")
        start = min(skip, available)
        stop = available if n_events is None else min(available, start + n_events)
        if stop <= start:
            raise ConfigError(
                f"nothing to run: the input holds {available} events and "
                + (
                    f"--skip {skip} is past the end"
                    if skip >= available and available
                    else "-n 0 selects none"
                    if n_events == 0
                    else "it is empty"
                )
            )
        return start, stop

    def run(
        self,
        *,
        n_events: int | None = None,
        skip: int = 0,
        jobs: int = 1,
        executor: Executor | None = None,
        chunk_size: int | None = None,
        progress: bool | None = None,
        record: dict[str, Any] | None = None,
        retries: int = 0,
        skip_bad_files: bool = False,
    ) -> RunResult:
        """Process entries [skip, skip + n_events) and return what happened.

        ``executor`` defaults to in-process for ``jobs == 1`` and to a process pool otherwise
        (never more processes than events), each retrying a failing chunk ``retries`` times.
        Chunks never cross an input file. With ``skip_bad_files`` a chunk whose input cannot be
        read is left out and recorded (``RunResult.bad_files``); without it the run stops naming
        the file, and writers leave nothing behind. ``record`` adds to the run record (the CLI gives the
        sequence, input and output); the whole record reaches serial algorithms as
        ``self.context.record``.
        """
        check_run_options(jobs=jobs, chunk_size=chunk_size, retries=retries)
        plan = self.plan()
        entries = self.entries(plan, n_events, skip)
        return run_plan(
            plan,
            self.algorithms,
            policy=self.error_policy,
            entries=entries,
            jobs=jobs,
            executor=executor,
            chunk_size=chunk_size,
            retries=retries,
            record=record,
            skip_bad_files=skip_bad_files,
            progress=progress,
        )
