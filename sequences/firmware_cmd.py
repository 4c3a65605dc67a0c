"""``recotrig firmware``: the anomaly trigger's firmware, its verification and its calibration.

    recotrig firmware [MODEL] -o DIR [--rate 10kHz | --threshold SCORE] [--clock 40] [--force]
        hls4ml project (compiled C simulation), da4ml Verilog (Verilator simulation), report;
        built beside DIR and put in place when complete (an existing firmware DIR only with --force)
    recotrig firmware verify DIR [--events 100000] [--edge-events 1000] [--rtl-events N]
                                 [--input STORE | --dataset NAME]
        emulator vs hls4ml C simulation vs RTL simulation, bit by bit (exit status 1 on any mismatch)
    recotrig firmware calibrate DIR --rate 1kHz [--input STORE | --dataset NAME]
        the integer threshold for a zero-bias rate, into the emulator and both firmware forms
        (a calibrated copy is made beside DIR and swapped in: an interrupt leaves DIR as it was)

The threshold of a new firmware is the model card's for ``--rate`` (zero-bias thresholds at 1 and
10 kHz), or ``--threshold``; a model whose card has no zero-bias threshold (its background is
not zero bias) is built at FPR 1e-3 of its own held-out background. The build says which.

Events: the crossings of L1 stores (``--input``, as ``recotrig run --input``: a file, a glob, a
comma list or a .txt list; default: the bundled L1 sample, 12,000 crossings) or a named data set
(``--dataset``): ``zerobias-mu60`` (its held-out test split: 1,000,000 zero-bias crossings
premixed from one pool of 200,000 interactions, whose rare interactions each recur in hundreds
of crossings), ``zerobias-mu60-rates`` (the rate calibration: 500,000 crossings from 20
independent pile-up pools; the error of a rate comes from their spread) and
``zerobias-mu60-fresh`` (the rate validation: 45,000 crossings whose pile-up is all fresh);
built and cached on first use. ``verify`` takes the first ``--events`` crossings (all of them
when there are fewer) and adds ``--edge-events`` inputs chosen to hit saturation and rounding
edges (``firmware.project.edge_words``). ``calibrate`` uses the zero-bias crossings among them.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from recotrig.algorithms.ml.anomaly_trigger import DEFAULT_MODEL
from recotrig.edm.trigger import PROCESS_CODES, l1_features
from recotrig.firmware import project
from recotrig.firmware.emulator import FirmwareError, TooFewCrossings
from recotrig.framework.arguments import ArgumentParser
from recotrig.framework.files import OutputError, write_json
from recotrig.io.fileset import SPEC_HELP
from recotrig.io.l1_reader import L1Reader
from recotrig.sequences.samples import L1_SAMPLE

EDGE_EVENTS = 1000


def parse_rate(text: str) -> float:
    """``10kHz``, ``500Hz``, ``1MHz`` or a bare number of kHz, as kHz."""
    match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(hz|khz|mhz)?\s*", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (write e.g. 10kHz)")
    value = float(match.group(1))
    unit = (match.group(2) or "khz").lower()
    rate = value * {"hz": 1e-3, "khz": 1.0, "mhz": 1e3}[unit]
    if not 0 < rate < 40_000:
        raise argparse.ArgumentTypeError(f"rate {text!r} must lie between 0 and the 40 MHz crossing rate")
    return rate


def store_features(spec: str | list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The L1 features and process codes of every crossing of the L1 stores ``spec`` (a fileset
    spec as ``recotrig run --input`` takes it; a list: each path literally)."""
    reader = L1Reader(input=spec if isinstance(spec, str) else "\n".join(spec))  # recotrig.io.fileset.expand
    reader.prepare(0, reader.n_events())
    features, processes = [], []
    for entry in range(reader.n_events()):
        objects, crossing = reader.read(entry)
        features.append(l1_features(objects))
        processes.append(int(crossing.process[0]) if crossing is not None and len(crossing) else -1)
    return np.stack(features), np.asarray(processes)


class Events(NamedTuple):
    """The crossings a command works on: L1 features, process codes, where they come from, and
    the sizes of their independent replicas (``None``: every crossing independent)."""

    x: np.ndarray
    processes: np.ndarray
    source: str
    replicas: list[int] | None = None


def _events(args: argparse.Namespace) -> Events:
    from recotrig.training.anomaly import rates

    zero_bias = PROCESS_CODES["zerobias"]
    if args.dataset in rates.SAMPLES:
        sample = rates.SAMPLES[args.dataset]
        blocks = rates.load(sample, range(sample.blocks), jobs=args.jobs, progress=_say)
        x = np.concatenate(blocks)
        replicas = None if sample.fresh else [len(b) for b in blocks]
        return Events(x, np.full(len(x), zero_bias), f"data set {sample.name}", replicas)
    if args.dataset:
        from recotrig.training.anomaly import dataset

        x, _ = dataset.background(args.dataset, "test", jobs=args.jobs)
        return Events(np.asarray(x), np.full(len(x), zero_bias), f"data set {args.dataset} (test split)")
    spec = "\n".join(args.input) if args.input else L1_SAMPLE
    x, processes = store_features(spec)
    names = args.input or [Path(p).name for p in L1_SAMPLE.split(",")]
    return Events(x, processes, "the bundled L1 sample" if not args.input else ", ".join(names))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _add_events(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--input",
        "-i",
        action="append",
        metavar="STORE",
        help="L1 stores (default: the bundled L1 sample). " + SPEC_HELP,
    )
    source.add_argument(
        "--dataset",
        help="a named data set: zerobias-mu60 (test split), zerobias-mu60-rates (rate calibration), "
        "zerobias-mu60-fresh (rate validation); made and cached on first use",
    )
    p.add_argument("-j", "--jobs", type=_count, default=1, help="processes that make a data set on first use")


def _score(text: str) -> float:
    """A score threshold: a finite number, not negative (scores are sums of squares)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"a score threshold is a finite number >= 0, got {text!r}")
    return value


def _count(text: str) -> int:
    """A non-negative integer argument."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def cmd_build(argv: list[str]) -> int:
    p = ArgumentParser(prog="recotrig firmware", description="Build the anomaly trigger's firmware.")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"a shipped anomaly model (default {DEFAULT_MODEL})")
    p.add_argument("-o", "--output", required=True, help="firmware directory")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument(
        "--rate",
        type=parse_rate,
        default=10.0,
        help="the zero-bias rate whose card threshold the firmware starts from: 1kHz or 10kHz (default: 10kHz)",
    )
    choice.add_argument("--threshold", type=_score, default=None, help="a score threshold instead of the card's")
    p.add_argument("--clock", type=float, default=40.0, help="clock of the Verilog pipeline [MHz] (default: 40)")
    p.add_argument("--force", action="store_true", help="replace DIR if it is a firmware directory already")
    args = p.parse_args(argv)
    print(f"building the firmware of {args.model} into {args.output} (hls4ml, then da4ml and Verilator) ...")
    fw = project.create(
        args.model, args.output, rate_khz=args.rate, clock_mhz=args.clock, force=args.force, threshold=args.threshold
    )
    calibration = json.loads((fw.path / "calibration.json").read_text())
    print(f"threshold: score word > {calibration['threshold']}, {calibration['source']}")
    print((fw.path / "report.md").read_text())
    return 0


def cmd_verify(argv: list[str]) -> int:
    p = ArgumentParser(
        prog="recotrig firmware verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("directory")
    p.add_argument(
        "--events", type=_count, default=100_000, help="crossings to verify on (default: 100000; all when fewer)"
    )
    p.add_argument(
        "--edge-events", type=_count, default=EDGE_EVENTS, help=f"edge inputs added to them (default: {EDGE_EVENTS})"
    )
    p.add_argument("--rtl-events", type=_count, default=None, help="events for the RTL simulation (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the edge inputs")
    _add_events(p)
    args = p.parse_args(argv)
    fw = project.load(args.directory)
    spec = fw.emulator.spec
    events = _events(args)
    real = spec.hw_words(events.x[: args.events])
    if len(real) < args.events:
        print(f"{events.source} has {len(real)} crossings, fewer than --events {args.events}: verifying on all")
    edges = project.edge_words(spec, real, args.edge_events, seed=args.seed)
    words = np.concatenate([real, edges])
    rtl_events = len(words) if args.rtl_events is None else args.rtl_events
    result = project.verify(
        fw.path,
        words,
        rtl_events=rtl_events,
        labels={f"crossings of {events.source}": len(real), "edge inputs": len(edges)},
    )
    write_json(fw.path / "verify.json", result)
    for tool in ("csim", "rtl"):
        r = result[tool]
        name = {"csim": "hls4ml C simulation", "rtl": "RTL simulation (Verilator)"}[tool]
        print(f"emulator vs {name}: {r['mismatches']} mismatches in {r['events']} events ({r['seconds']:.1f} s)")
        for m in r["first"][:20]:
            print(
                f"  event {m['event']}: emulator score {m['emulator'][0]} pass {m['emulator'][1]}, "
                f"firmware score {m['firmware'][0]} pass {m['firmware'][1]}"
            )
    print(
        f"events: {json.dumps(result['event_sources'])}; saturating at least once: "
        f"{json.dumps({k: round(v, 4) for k, v in result['saturation_coverage'].items()})}"
    )
    print(f"written {fw.path / 'verify.json'}")
    return 0 if result["bit_exact"] else 1


def cmd_calibrate(argv: list[str]) -> int:
    p = ArgumentParser(
        prog="recotrig firmware calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("directory")
    p.add_argument("--rate", type=parse_rate, required=True, help="zero-bias rate, e.g. 1kHz")
    _add_events(p)
    args = p.parse_args(argv)
    fw = project.load(args.directory)
    events = _events(args)
    zero_bias = events.x[events.processes == PROCESS_CODES["zerobias"]]
    if not len(zero_bias):
        raise FirmwareError(f"{events.source}: no zero-bias crossings to calibrate on")
    from recotrig.training.anomaly.rates import CALIBRATION

    try:
        result = project.calibrate(
            fw.path,
            fw.emulator.spec.hw_words(zero_bias),
            args.rate,
            f"{len(zero_bias)} zero-bias crossings of {events.source}",
            replicas=events.replicas if len(zero_bias) == len(events.x) else None,
        )
    except TooFewCrossings as err:
        raise FirmwareError(
            f"{events.source}: {err}; the data set made for it: --dataset {CALIBRATION.name} "
            f"({CALIBRATION.blocks * CALIBRATION.crossings:,} crossings from {CALIBRATION.blocks} independent "
            "pile-up pools; made and cached on first use)"
        ) from None
    print(
        f"threshold {result['threshold']} (score word) for {args.rate:g} kHz: {result['n_pass']} of "
        f"{result['n_zero_bias']} zero-bias crossings pass = {result['rate_khz']:.3g} ± "
        f"{result['rate_khz_error']:.2g} kHz (error from {result['error_from']}; effective sample "
        f"{result['n_effective']}); written into {fw.path}"
    )
    return 0


def main(argv: list[str]) -> int:
    commands = {"verify": cmd_verify, "calibrate": cmd_calibrate}
    try:
        if argv and argv[0] in commands:
            return commands[argv[0]](argv[1:])
        return cmd_build(argv)
    except (FirmwareError, OutputError) as err:
        print(f"recotrig firmware: error: {err}", file=sys.stderr)
        return 1
