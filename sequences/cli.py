"""The ``recotrig`` command line.

    recotrig run [SEQUENCE] [--input STORE] [--output DIR] [-n N] [--skip K] [-j N] [--dry-run]
                 [--dot FILE] [--error-policy abort|skip] [--ALG.OPTION VALUE ...] [--set ALG.OPTION=VALUE ...]
    recotrig run --config recotrig-out/vertexing/run.json      (re-run a recorded run)
    recotrig info STORE
    recotrig report DIR [DIR ...] [--labels a,b] [-o OUT]   (plots and report.html of finished output directories)
    recotrig simulate ...   (see ``recotrig simulate --help``)
    recotrig simulate-l1 ...   (L1 objects only, premixed pile-up; ``recotrig simulate-l1 --help``)
    recotrig train trackformer [--model encreg --dataset 10-50 ...]
    recotrig train pvfinder [--epochs 40 ...]
    recotrig train anomaly [--dataset zerobias-mu60 --kind vae ...]
        (a trained model goes to ./recotrig-models/ or --output DIR; --force replaces a model there,
        --replace-shipped a shipped one)
    recotrig models [NAME]
    recotrig firmware [MODEL] -o DIR | verify DIR | calibrate DIR --rate 1kHz   (``recotrig firmware --help``)
    --debug (anywhere): show the traceback of an error

Every option of every algorithm of the chosen sequence is a flag ``--<algorithm name>.<option>``;
``recotrig run SEQUENCE --help`` lists them with their defaults, and how ``--input`` names several
stores (given once: a store, glob, comma list or list file; given several times: one path each).
SEQUENCE is a shipped name, else a path to a .py file: a file in the current directory named like
a shipped sequence does not replace it (run it as ./NAME.py).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from recotrig.framework import Algorithm, ConfigError, EventError, RunResult, Sequencer
from recotrig.framework.arguments import ArgumentParser, one_line
from recotrig.framework.collection import registered_type
from recotrig.framework.executors import DaskExecutor, Executor, kill_workers
from recotrig.framework.files import commits, committed_since, root_file, transaction, write_json
from recotrig.framework.flags import add_flags, apply_flags, set_from_text
from recotrig.framework.limits import check_run_options
from recotrig.framework.record import file_entry
from recotrig.io.errors import StoreError
from recotrig.io.fileset import SPEC_HELP
from recotrig.io.store import open_store
from recotrig.models.registry import ModelError
from recotrig.sequences import loader

DEFAULT_SEQUENCE = "vertexing"


def _run_parser(add_help: bool) -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="recotrig run",
        add_help=add_help,
        description="Run a sequence of algorithms over the events of a store.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "sequence",
        nargs="?",
        default=None,
        help=f"a shipped sequence ({', '.join(loader.available())}) or a .py file "
        f"(default: {DEFAULT_SEQUENCE}); {loader.PRECEDENCE}",
    )
    p.add_argument(
        "--input",
        "-i",
        action="append",
        metavar="STORE",
        help="event store: TrackML CSV directory or ROOT file (default: the sequence's own default). " + SPEC_HELP,
    )
    p.add_argument("--output", "-o", help="output directory (default: recotrig-out/<sequence>)")
    p.add_argument("-n", "--events", type=int, default=None, help="number of events (default: all)")
    p.add_argument("--skip", type=int, default=0, help="entries to skip at the start")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes for events (process executor)")
    p.add_argument(
        "--executor",
        choices=("process", "dask"),
        default="process",
        help="where chunks run: this machine's processes (-j), or Dask distributed",
    )
    p.add_argument("--workers", type=int, default=2, help="with --executor dask: workers of the local cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", help="with --executor dask: an existing cluster (tcp://host:8786)")
    p.add_argument("--retries", type=int, default=0, help="re-run a failing chunk up to this many times")
    p.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="leave out (and record) input files that cannot be read; the rest of the fileset completes",
    )
    p.add_argument("--chunk-size", type=int, default=None, help="entries per chunk (default: sized to the workers)")
    p.add_argument("--dry-run", action="store_true", help="print the data-flow graph and exit")
    p.add_argument("--dot", metavar="FILE", help="with --dry-run: also write the graph as Graphviz dot")
    p.add_argument(
        "--config",
        metavar="RUN_JSON",
        help="re-run the run recorded in a run.json (its sequence, input, "
        "entries and every option; flags still override)",
    )
    p.add_argument(
        "--error-policy",
        choices=("abort", "skip"),
        default=None,
        help="on a failing event: stop (abort) or record it and go on (skip)",
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="ALG.OPTION=VALUE", help="set an algorithm option (repeatable)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--report",
        action="store_true",
        help="after the run, write report.html (and figures/) into the output directory (recotrig report)",
    )
    return p


def _apply_record(algorithms: list[Algorithm], record: dict[str, Any], source: str) -> None:
    """Give the sequence's algorithms the options and keys a run record holds."""
    recorded = {a.get("name"): a for a in record.get("algorithms", [])}
    built = {a.name: a for a in algorithms}
    if set(recorded) != set(built):
        raise ConfigError(
            f"{source}: the record's algorithms {sorted(recorded)} are not the sequence's "
            f"{sorted(built)} (the sequence changed since?)"
        )
    for name, entry in recorded.items():
        alg = built[name]
        cls = type(alg)
        if entry.get("class") != f"{cls.__module__}.{cls.__qualname__}":
            raise ConfigError(
                f"{source}: algorithm {name!r} was a {entry.get('class')}, the sequence makes a "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        alg.configure(**entry.get("options", {}), **entry.get("keys", {}))


def _check_files(record: dict[str, Any], source: str) -> None:
    """The recorded input and model files must be the ones on disk now."""
    for role, entries in record.get("files", {}).items():
        for entry in entries:
            now = file_entry(entry["path"])
            if now.get("sha256") != entry.get("sha256"):
                raise ConfigError(
                    f"{source}: {role} file {entry['path']} differs from the recorded one "
                    f"(sha256 {entry.get('sha256')} recorded, {now.get('sha256', 'missing')} now)"
                )


def _load_record(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise ConfigError(f"--config {path}: cannot read it as JSON: {err}") from None
    record = data.get("record", data) if isinstance(data, dict) else None
    if not isinstance(record, dict) or "algorithms" not in record or "sequence" not in record:
        raise ConfigError(f"--config {path}: not a recotrig run record (no 'sequence' and 'algorithms')")
    _check_record(record, path)
    return record


def _check_record(record: dict[str, Any], path: str) -> None:
    """Every field of a run record that a re-run reads has the type it needs; else ``ConfigError``
    naming the file and the field."""

    def need(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"--config {path}: the record's {field!r} must be {what}")

    def whole(value: Any) -> bool:
        return type(value) is int and value >= 0

    need(isinstance(record["sequence"], str) and record["sequence"] != "", "sequence", "a sequence name or .py file")
    need(record.get("input") is None or isinstance(record["input"], str), "input", "a string or null")
    algorithms = record["algorithms"]
    need(
        isinstance(algorithms, list) and all(isinstance(a, dict) for a in algorithms), "algorithms", "a list of objects"
    )
    for i, entry in enumerate(algorithms):
        need(isinstance(entry.get("name"), str), f"algorithms[{i}].name", "a string")
        for key in ("options", "keys"):
            need(isinstance(entry.get(key, {}), dict), f"algorithms[{i}].{key}", "an object")
        both = sorted(set(entry.get("options", {})) & set(entry.get("keys", {})))
        need(not both, f"algorithms[{i}].keys", f"store keys, not options ({', '.join(both)} is both)")
    names = [entry["name"] for entry in algorithms]
    need(len(set(names)) == len(names), "algorithms", "algorithms of distinct names")
    entries = record.get("entries")
    need(
        entries is None
        or (isinstance(entries, list) and len(entries) == 2 and all(map(whole, entries)) and entries[0] <= entries[1]),
        "entries",
        "[start, stop] with 0 <= start <= stop",
    )
    need(record.get("error_policy") in (None, "abort", "skip"), "error_policy", "'abort' or 'skip'")
    files = record.get("files", {})
    listed = isinstance(files, dict) and all(isinstance(v, list) for v in files.values())
    need(
        listed and all(isinstance(e, dict) and isinstance(e.get("path"), str) for v in files.values() for e in v),
        "files",
        "an object of lists of {path, sha256} objects",
    )


def _input_spec(values: list[str] | None) -> str | None:
    """``--input``: one value as given (a store, a glob, a comma list or a list file); several,
    each one literal path, one per line (``recotrig.io.fileset.expand``)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    for value in values:
        if not value or "\n" in value:
            raise ConfigError(f"--input given several times takes one path each; {value!r} is not one")
    return "\n".join(values)


def configure_run(argv: list[str]) -> tuple[argparse.Namespace, Sequencer, str]:
    """Parse ``recotrig run`` arguments: build the sequence, apply a record and overrides."""
    first, _ = _run_parser(add_help=False).parse_known_args(argv)
    first.input = _input_spec(first.input)
    record = _load_record(first.config) if first.config else None
    if record is not None:
        if first.sequence is None:
            first.sequence = record["sequence"]
        if first.input is None:
            first.input = record.get("input")
    sequence = first.sequence or DEFAULT_SEQUENCE
    module = loader.load(sequence)
    output = first.output or os.path.join("recotrig-out", os.path.splitext(os.path.basename(sequence))[0])
    algorithms = loader.build(module, input=first.input, output=output)
    if record is not None:
        _apply_record(algorithms, record, first.config)
        _check_files(record, first.config)
    parser = _run_parser(add_help=True)
    parser.description = f"Run sequence {sequence!r}: {inspect.getdoc(module) or ''}"
    for alg in algorithms:
        add_flags(parser, alg)
    args = parser.parse_args(argv)
    args.sequence = sequence
    args.input = first.input
    if record is not None:
        if args.events is None and record.get("entries"):
            start, stop = record["entries"]
            args.events = stop - start
            args.skip = args.skip or start
        if args.error_policy is None:
            args.error_policy = record.get("error_policy")
    args.error_policy = args.error_policy or "abort"
    for item in args.set:
        target, sep, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set expects ALG.OPTION=VALUE, got {item!r}")
        set_from_text(algorithms, name, key, value)
    apply_flags(args, algorithms)
    check_run_options(jobs=args.jobs, workers=args.workers, retries=args.retries, chunk_size=args.chunk_size, cli=True)
    if args.skip_bad_files:
        for alg in algorithms:
            if "skip_bad_files" in alg.option_specs():
                alg.configure(skip_bad_files=True)
    return args, Sequencer(algorithms, error_policy=args.error_policy), output


def cmd_run(argv: list[str]) -> int:
    args, sequencer, output = configure_run(argv)
    if args.dry_run:
        print(sequencer.graph())
        if args.dot:
            with open(args.dot, "w") as f:
                f.write(sequencer.dot() + "\n")
        return 0
    failed = run_configured(args, sequencer, output).processed == 0
    if args.report and not failed:  # from the committed files, as `recotrig report OUTPUT` would
        cmd_report([output])
    if failed:
        print(
            f"recotrig run: error: no event was processed: all events failed (see {output}/run.json)", file=sys.stderr
        )
        return 1
    return 0


def run_configured(
    args: argparse.Namespace, sequencer: Sequencer, output: str, *, echo: Callable[[str], None] = print
) -> RunResult:
    """Run a configured sequence (``configure_run``) and write run.json, timing.json and timing.root
    with what its algorithms write, all committed together in ``output`` (``transaction``): the
    one path of ``recotrig run`` and ``recotrig.run``. ``echo`` shows the tables and the summary."""
    context = {"sequence": args.sequence, "input": args.input}
    executor: Executor | None = None
    if args.executor == "dask":
        executor = DaskExecutor(args.workers, scheduler=args.scheduler, retries=args.retries)
    with transaction(output):  # the output directory is built beside it and swapped in whole, or not at all
        return _run_and_write(args, sequencer, output, executor, context, echo)


def _run_and_write(
    args: argparse.Namespace,
    sequencer: Sequencer,
    output: str,
    executor: Executor | None,
    context: dict[str, Any],
    echo: Callable[[str], None],
) -> RunResult:
    result = sequencer.run(
        n_events=args.events,
        skip=args.skip,
        jobs=args.jobs,
        executor=executor,
        chunk_size=args.chunk_size,
        retries=args.retries,
        skip_bad_files=args.skip_bad_files,
        progress=False if args.no_progress else None,
        record=context,
    )
    echo(result.timing_table())
    for report in result.reports:
        echo("")
        echo(report)
    for failure in result.failures:
        echo(f"skipped: {failure}")
    # run.json: the record and what the run found, identical for equal runs; timing.*: how long it took
    write_json(
        os.path.join(output, "run.json"),
        {
            "record": result.record,
            "processed": result.processed,
            "failures": [vars(f) for f in result.failures],
            "filters": result.filters,
            "bad_files": result.bad_files,
            **({"comparison": result.comparison} if result.comparison is not None else {}),
        },
    )
    write_json(
        os.path.join(output, "timing.json"),
        {
            "executor": args.executor,
            "jobs": result.jobs,
            "wall_s": result.wall_s,
            "events_per_s": result.events_per_s,
            "main_process_cpu_ms_per_event": 1e3 * result.main_cpu_s / max(1, result.processed),
            "timing": result.timing,
            "ms_per_event": result.comparison_ms_per_event,
        },
    )
    _write_timing(os.path.join(output, "timing.root"), result.per_event)
    echo(f"output in {output}/")
    return result


def _write_timing(path: str, per_event: dict[str, Any]) -> None:
    """Per-event timing as a ROOT tree ``timing``: ``run_number``, ``event_id`` and one branch (ms)
    per algorithm."""
    with root_file(path) as f:
        f["timing"] = {name.replace(".", "_"): values for name, values in per_event.items()}


def cmd_info(argv: list[str]) -> int:
    parser = ArgumentParser(prog="recotrig info", description="Show what an event store holds.")
    parser.add_argument("store", help="TrackML CSV directory or ROOT file")
    parser.add_argument("--format", choices=("trackml", "root"), default=None)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    info = open_store(args.store, format=args.format).info()
    for col in info.get("collections", {}).values():  # what the integer codes of a column mean
        codes = getattr(registered_type(str(col.get("type"))), "codes", {})
        if codes:
            col["codes"] = codes
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    runs = info.get("runs", [])
    shown = ", ".join(map(str, runs)) if len(runs) <= 10 else f"{len(runs)} runs, {runs[0]}..{runs[-1]}"
    print(
        f"{args.store}: {info.get('format')} store, {info.get('events')} events "
        f"(event ids {info.get('first_event_id')}..{info.get('last_event_id')}; run {shown or '-'})"
    )
    print(f"  {'collection':<14}{'type':<15}{'rows/event':>12}{'MB':>9}  columns")
    for name, col in info.get("collections", {}).items():
        rows = col.get("rows_per_event")
        size = col.get("bytes")
        print(
            f"  {name:<14}{col.get('type', '')!s:<15}"
            f"{(f'{rows:.1f}' if isinstance(rows, (int, float)) else '-'):>12}"
            f"{(f'{size / 1e6:.2f}' if isinstance(size, (int, float)) else '-'):>9}  "
            + ", ".join(col.get("columns", []))
        )
    for name, col in info.get("collections", {}).items():
        for column, codes in col.get("codes", {}).items():
            print(f"  {name}.{column} codes: " + ", ".join(f"{v} {k}" for k, v in codes.items()))
    meta = info.get("metadata") or {}
    if meta:
        text = json.dumps(meta, default=str)
        print("  metadata: " + (text if len(text) <= 300 else text[:300] + " ... (--json for all)"))
    return 0


def cmd_simulate(argv: list[str]) -> int:
    from recotrig.sequences.simulate_cmd import main as simulate_main

    return simulate_main(argv)


def cmd_simulate_l1(argv: list[str]) -> int:
    from recotrig.sequences.simulate_l1_cmd import (
        main as simulate_l1_main,  # imports Pythia and fastjet: only when asked for
    )

    return simulate_l1_main(argv)


def cmd_train(argv: list[str]) -> int:
    families = {
        "trackformer": "recotrig.training.trackformer.train",
        "pvfinder": "recotrig.training.pvfinder.train",
        "anomaly": "recotrig.training.anomaly.train",
    }
    if not argv or argv[0] not in families:
        print(f"usage: recotrig train {{{','.join(families)}}} [options] (--help after the family)", file=sys.stderr)
        return 2
    import importlib

    return importlib.import_module(families[argv[0]]).main(argv[1:])  # torch is imported only here


def cmd_firmware(argv: list[str]) -> int:
    from recotrig.sequences.firmware_cmd import (
        main as firmware_main,  # imports hls4ml, da4ml and torch: only when asked for
    )

    return firmware_main(argv)


def cmd_models(argv: list[str]) -> int:
    parser = ArgumentParser(prog="recotrig models", description="List the shipped models and their cards.")
    parser.add_argument("name", nargs="?", help="show this model's card")
    args = parser.parse_args(argv)
    from recotrig.models import registry

    if args.name:
        print(registry.card_markdown(registry.load(args.name).card))
        return 0
    for name in registry.available():
        card = registry.load(name).typed_card
        score = card.held_out.get("trackml_score", float("nan"))
        headline = card.headline or f"held-out TrackML score {score:.3f}"
        print(
            f"{name:<34}{card.family:<14}{card.kind:<9}{headline}  "
            f"({card.parameters if card.parameters is not None else '?'} parameters)"
        )
    return 0


def cmd_report(argv: list[str]) -> int:
    parser = ArgumentParser(
        prog="recotrig report",
        description="Plots and one self-contained report.html of "
        "finished output directories, from their files alone (several: overlaid).",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="output directory of a recotrig run")
    parser.add_argument("--labels", help="comma-separated names of the runs in the figures (one per DIR)")
    parser.add_argument(
        "-o",
        "--output",
        help="directory for report.html and figures/ (default: DIR for one run, recotrig-report for several)",
    )
    args = parser.parse_args(argv)
    from recotrig.report import build  # imports matplotlib: only when asked for

    labels = args.labels.split(",") if args.labels else None
    print(f"report in {build(args.dirs, labels=labels, output=args.output)}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "info": cmd_info,
    "simulate": cmd_simulate,
    "simulate-l1": cmd_simulate_l1,
    "train": cmd_train,
    "models": cmd_models,
    "firmware": cmd_firmware,
}


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like an interrupt, so writers discard their temporary files."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum


#: after a second signal, the clean-up of the first has this long before the process ends at once
FORCE_AFTER_S = 3.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_STOPPED = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}


class _Stop:
    """The handler of SIGINT, SIGTERM and SIGHUP while a command runs.

    The first signal raises (KeyboardInterrupt, or Terminated) and the command unwinds: worker
    processes are ended, temporaries removed. Later signals raise nothing, since an exception in
    the middle of that clean-up could cut it short or interrupt a join that then never returns:
    they kill the worker processes at once, and a clean-up still running ``FORCE_AFTER_S`` later
    is abandoned (the process exits; the next run removes what its temporaries left)."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.first: int | None = None
        self.mark = commits()
        self.timer: threading.Timer | None = None

    def __call__(self, signum: int, frame: Any) -> None:
        if self.first is None:
            self.first = signum
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(signum)
        kill_workers()
        if self.timer is None:
            self.timer = threading.Timer(FORCE_AFTER_S, self._abandon)
            self.timer.daemon = True
            self.timer.start()

    def message(self, signum: int) -> str:
        """What happened, truthfully: whether anything was committed before the signal took effect."""
        done = committed_since(self.mark)
        what = f"recotrig {self.command}: {_STOPPED.get(signum, 'stopped')}"
        if done:
            names = ", ".join(map(str, done[:3])) + (f" and {len(done) - 3} more" if len(done) > 3 else "")
            return f"{what} after committing {names} (complete); nothing else was committed"
        return f"{what}; no output was committed"

    def _abandon(self) -> None:
        kill_workers()
        with contextlib.suppress(OSError):
            os.write(2, f"{self.message(self.first or signal.SIGTERM)} (clean-up abandoned)\n".encode())
        os._exit(128 + (self.first or signal.SIGTERM))


def main(argv: list[str] | None = None) -> int:
    argv_given = argv
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"recotrig: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    stop = _Stop(command)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, stop) for signum in _STOP_SIGNALS}
    program = argv_given is None  # the process itself, which ends when main returns
    try:
        return COMMANDS[command](rest)
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except (KeyboardInterrupt, Terminated) as err:
        signum = err.signum if isinstance(err, Terminated) else signal.SIGINT
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            print(stop.message(signum), file=sys.stderr)
        return 128 + signum
    except (ConfigError, EventError, StoreError, ModelError, OSError, ValueError) as err:
        if debug:
            raise
        text = str(err).split("\n", 1)[0] if isinstance(err, EventError) else one_line(str(err))
        print(
            f"recotrig {command}: error: {text}"
            + ("" if debug else " (--debug shows the traceback)" if isinstance(err, EventError) else ""),
            file=sys.stderr,
        )
        return 1
    except Exception as err:  # a safety net: each cause found is fixed where it arises
        if debug:
            raise
        print(
            f"recotrig {command}: internal error: {type(err).__name__}: {one_line(str(err))} (--debug shows the "
            "traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        if stop.timer is not None and not program:
            stop.timer.cancel()
        if not (program and stop.first is not None):  # a stopping program keeps handling (ignoring) signals
            for signum, handler in previous.items():
                signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
