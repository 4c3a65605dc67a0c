"""The Python API: ``recotrig.run(...)``, a run of a sequence from a script or a notebook.

It is ``recotrig run`` with keyword arguments: the same configuration (``cli.configure_run``;
``options`` go through ``--set``), the same run and outputs committed together
(``cli.run_configured``), and a ``Result`` with typed fields::

    result = recotrig.run("toy", n_events=5, options={"TruthTracker.min_hits": 4}, keep=["tracks"])
    result.comparison                 # pandas DataFrame, one row per compared collection
    result.figures["tracking_efficiency"]   # matplotlib Figures of the report, drawn when first asked for
    result.kept["tracks"]             # awkward array, one entry per event in event order
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import awkward as ak
import pandas as pd

from recotrig.framework import Collection, ConfigError, EventError, Many, RunResult, Writer
from recotrig.sequences import cli

__all__ = ["Keep", "Result", "run"]


class Keep(Writer):
    """Keeps the given collections of every event in memory, in event order (``recotrig.run(keep=...)``).
    A serial algorithm, so the collections come back from the workers like a writer's, whatever
    the executor (behind a filter, the passing events); it changes no output, so it is not in the run
    record."""

    recorded: ClassVar[bool] = False

    def initialize(self) -> None:
        self.events: list[dict[str, Collection]] = []

    def execute(self, collections: Many[Collection] = ("tracks",)) -> None:
        self.events.append(dict(collections))

    def discard(self) -> None:
        self.events = []

    def arrays(self) -> dict[str, ak.Array]:
        """Per kept key, an awkward array with one entry per event: that event's rows as records."""
        return {key: _per_event([event[key] for event in self.events]) for key in self.keys("collections")}


def _per_event(parts: list[Collection]) -> ak.Array:
    if not parts:
        return ak.Array([])
    rows = ak.concatenate([ak.zip(part.to_arrays(), depth_limit=1) for part in parts])
    return ak.unflatten(rows, [len(part) for part in parts])


@dataclass
class Result(RunResult):
    """What ``recotrig.run`` gives back: the ``RunResult`` fields, with ``comparison`` as a pandas
    DataFrame (one row per compared collection; None when no metric made one), the output
    directory, the kept collections and the report's figures."""

    comparison: pd.DataFrame | None = None  # type: ignore[assignment]
    #: the directory the run's outputs were committed to
    output: Path = Path()
    #: per key given in ``keep``, an awkward array with one entry per event, in event order
    kept: dict[str, ak.Array] = field(default_factory=dict)

    @cached_property
    def figures(self) -> dict[str, Any]:
        """The report's figures of this run (matplotlib Figures by name), drawn from its output files."""
        from recotrig.report import figures  # imports matplotlib: only when asked for

        return figures(self.output)


def _text(value: Any) -> str:
    """An option value as the command line writes it (``--set ALG.OPTION=TEXT``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def run(
    sequence: str,
    *,
    input: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    n_events: int | None = None,
    skip: int = 0,
    jobs: int = 1,
    options: Mapping[str, Any] | None = None,
    keep: Iterable[str] = (),
    report: bool = False,
    progress: bool = False,
) -> Result:
    """Run ``sequence`` (a shipped name or a .py file) as ``recotrig run`` does and return its ``Result``.

    ``input``: the store(s) (default: the sequence's own); ``output``: the output directory
    (default: a fresh temporary directory); ``n_events``, ``skip``, ``jobs``: as ``-n``, ``--skip``,
    ``-j``; ``options``: ``{"ALG.OPTION": value}``, each applied as ``--set ALG.OPTION=value``;
    ``keep``: store keys whose collections are kept in memory (``Result.kept``); ``report``: also
    write report.html; ``progress``: show a progress bar. Errors are the command line's
    (``ConfigError`` before any event, ``EventError``, ``StoreError``, ...)."""
    for name, value in (("n_events", n_events), ("skip", skip), ("jobs", jobs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
    keep = [keep] if isinstance(keep, str) else list(keep)
    if output is None:
        stem = os.path.splitext(os.path.basename(sequence))[0]
        output = os.path.join(tempfile.mkdtemp(prefix="recotrig-"), stem)
    argv = [sequence, "--output", os.fspath(output), "--skip", str(skip), "-j", str(jobs)]
    argv += ["--input", os.fspath(input)] if input is not None else []
    argv += ["-n", str(n_events)] if n_events is not None else []
    argv += [] if progress else ["--no-progress"]
    for key, value in (options or {}).items():
        argv += ["--set", f"{key}={_text(value)}"]
    try:
        args, sequencer, out = cli.configure_run(argv)
    except SystemExit:  # the parser refused an argument (its message is on stderr)
        raise ConfigError(f"recotrig.run: cannot use the arguments {argv}") from None
    keeper = sequencer.add(Keep(collections=keep)) if keep else None
    done = cli.run_configured(args, sequencer, out, echo=lambda text: None)
    if done.processed == 0:
        raise EventError(f"no event was processed: all events failed (see {out}/run.json)")
    if report:
        from recotrig.report import build  # imports matplotlib: only when asked for

        build(out)
    values = {f.name: getattr(done, f.name) for f in fields(RunResult)}
    values["comparison"] = pd.DataFrame.from_records(done.comparison) if done.comparison is not None else None
    return Result(**values, output=Path(out), kept=keeper.arrays() if isinstance(keeper, Keep) else {})
