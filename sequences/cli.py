"""The ``recotrig`` command line.

    recotrig run [SEQUENCE] [--input STORE] [--output DIR] [-n N] [--skip K] [-j N] [--dry-run]
                 [--dot FILE] [--error-policy abort|skip] [--ALG.OPTION VALUE ...] [--set ALG.OPTION=VALUE ...]
    recotrig info STORE
    recotrig simulate ...   (see ``recotrig simulate --help``)

Every option of every algorithm of the chosen sequence is a flag ``--<algorithm name>.<option>``;
``recotrig run SEQUENCE --help`` lists them with their defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..framework import Algorithm, ConfigError, EventError, Sequencer
from . import loader

DEFAULT_SEQUENCE = "vertexing"


def _run_parser(add_help: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="recotrig run",
        add_help=add_help,
        description="Run a sequence of algorithms over the events of a store.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sequence", nargs="?", default=DEFAULT_SEQUENCE,
                   help=f"a shipped sequence ({', '.join(loader.available())}) or a .py file "
                        f"(default: {DEFAULT_SEQUENCE})")
    p.add_argument("--input", "-i", help="event store: TrackML CSV directory or ROOT file "
                                         "(default: the sequence's own default)")
    p.add_argument("--output", "-o", help="output directory (default: recotrig-out/<sequence>)")
    p.add_argument("-n", "--events", type=int, default=None, help="number of events (default: all)")
    p.add_argument("--skip", type=int, default=0, help="entries to skip at the start")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes for events")
    p.add_argument("--dry-run", action="store_true", help="print the data-flow graph and exit")
    p.add_argument("--dot", metavar="FILE", help="with --dry-run: also write the graph as Graphviz dot")
    p.add_argument("--error-policy", choices=("abort", "skip"), default="abort",
                   help="on a failing event: stop (abort) or record it and go on (skip)")
    p.add_argument("--set", action="append", default=[], metavar="ALG.OPTION=VALUE",
                   help="set an algorithm option (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _add_algorithm_flags(parser: argparse.ArgumentParser, algorithms: list[Algorithm]) -> None:
    for alg in algorithms:
        group = parser.add_argument_group(f"{alg.name} ({type(alg).__name__})",
                                          (type(alg).__doc__ or "").strip().split("\n")[0])
        specs = alg.option_specs()
        for key, value in alg.options().items():
            spec = specs.get(key)
            if spec is not None:
                text = spec.help + (f" (choices: {', '.join(map(str, spec.choices))})" if spec.choices else "")
            else:
                text = "store key"
            group.add_argument(f"--{alg.name}.{key}", dest=f"opt::{alg.name}::{key}", metavar="VALUE",
                               default=argparse.SUPPRESS, help=f"{text} [{_show(value)}]")


def _show(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _apply(algorithms: list[Algorithm], name: str, key: str, text: str) -> None:
    by_name = {a.name: a for a in algorithms}
    if name not in by_name:
        raise ConfigError(f"--set {name}.{key}: no algorithm named {name!r}; there are {sorted(by_name)}")
    alg = by_name[name]
    spec = alg.option_specs().get(key)
    if spec is None and key not in alg.options():
        raise ConfigError(f"{name} has no option {key!r}; it has {sorted(alg.options())}")
    try:
        value = spec.parse(text) if spec is not None else text
    except ValueError as err:
        raise ConfigError(f"{name}.{key}: cannot use {text!r}: {err}") from None
    alg.configure(**{key: value})


def configure_run(argv: list[str]) -> tuple[argparse.Namespace, Sequencer, str]:
    """Parse ``recotrig run`` arguments: build the sequence, apply overrides."""
    first, _ = _run_parser(add_help=False).parse_known_args(argv)
    module = loader.load(first.sequence)
    output = first.output or os.path.join("recotrig-out", os.path.splitext(os.path.basename(first.sequence))[0])
    algorithms = loader.build(module, input=first.input, output=output)
    parser = _run_parser(add_help=True)
    parser.description = f"Run sequence {first.sequence!r}: {(module.__doc__ or '').strip()}"
    _add_algorithm_flags(parser, algorithms)
    args = parser.parse_args(argv)
    for item in args.set:
        target, sep, value = item.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set expects ALG.OPTION=VALUE, got {item!r}")
        _apply(algorithms, name, key, value)
    for dest, value in vars(args).items():
        if dest.startswith("opt::"):
            _, name, key = dest.split("::", 2)
            _apply(algorithms, name, key, value)
    return args, Sequencer(algorithms, error_policy=args.error_policy), output


def cmd_run(argv: list[str]) -> int:
    args, sequencer, output = configure_run(argv)
    if args.dry_run:
        print(sequencer.graph())
        if args.dot:
            with open(args.dot, "w") as f:
                f.write(sequencer.dot() + "\n")
        return 0
    result = sequencer.run(n_events=args.events, skip=args.skip, jobs=args.jobs,
                           progress=False if args.no_progress else None)
    print(result.timing_table())
    for report in result.extra.get("reports", []):
        print()
        print(report)
    for failure in result.failures:
        print(f"skipped: {failure}")
    os.makedirs(output, exist_ok=True)
    report = {"sequence": args.sequence, "entries": [result.start, result.stop], "processed": result.processed,
              "failures": [vars(f) for f in result.failures], "timing": result.timing, "wall_s": result.wall_s,
              "jobs": result.jobs, **result.extra}
    _write_json(os.path.join(output, "run.json"), report)
    _write_timing(os.path.join(output, "timing.root"), result.per_event)
    print(f"output in {output}/")
    return 0


def _write_json(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(tmp, path)


def _write_timing(path: str, per_event: dict[str, Any]) -> None:
    """Per-event timing as a ROOT tree ``timing``: ``event_id`` and one branch (ms) per algorithm."""
    import uproot

    tmp = path + ".tmp"
    with uproot.recreate(tmp) as f:
        f["timing"] = {name.replace(".", "_"): values for name, values in per_event.items()}
    os.replace(tmp, path)


def cmd_info(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="recotrig info", description="Show what an event store holds.")
    parser.add_argument("store", help="TrackML CSV directory or ROOT file")
    parser.add_argument("--format", choices=("trackml", "root"), default=None)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    from ..io.store import open_store

    info = open_store(args.store, format=args.format).info()
    if args.json:
        print(json.dumps(info, indent=1, default=str))
        return 0
    print(f"{args.store}: {info.get('format')} store, {info.get('events')} events "
          f"(event ids {info.get('first_event_id')}..{info.get('last_event_id')})")
    print(f"  {'collection':<14}{'type':<15}{'rows/event':>12}{'MB':>9}  columns")
    for name, col in info.get("collections", {}).items():
        rows = col.get("rows_per_event")
        size = col.get("bytes")
        print(f"  {name:<14}{str(col.get('type', '')):<15}"
              f"{(f'{rows:.1f}' if isinstance(rows, (int, float)) else '-'):>12}"
              f"{(f'{size / 1e6:.2f}' if isinstance(size, (int, float)) else '-'):>9}  "
              + ", ".join(col.get("columns", [])))
    meta = info.get("metadata") or {}
    if meta:
        text = json.dumps(meta, default=str)
        print("  metadata: " + (text if len(text) <= 300 else text[:300] + " ... (--json for all)"))
    return 0


def cmd_simulate(argv: list[str]) -> int:
    from ..sim.cli import main as simulate_main

    return simulate_main(argv)


COMMANDS = {"run": cmd_run, "info": cmd_info, "simulate": cmd_simulate}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"recotrig: unknown command {command!r}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        return COMMANDS[command](rest)
    except BrokenPipeError:  # output piped into head and the like
        return 0
    except (ConfigError, EventError, OSError, ValueError) as err:
        print(f"recotrig {command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
