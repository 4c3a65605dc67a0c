"""``recotrig firmware``: the anomaly trigger's firmware, its verification and its calibration.

    recotrig firmware [MODEL] -o DIR [--rate 10kHz] [--clock 40] [--force]
        hls4ml project (compiled C simulation), da4ml Verilog (Verilator simulation), report;
        built beside DIR and put in place when complete (an existing firmware DIR only with --force)
    recotrig firmware verify DIR [--events 100000] [--rtl-events N] [--input STORE ... | --dataset NAME]
        emulator vs hls4ml C simulation vs RTL simulation, bit by bit (exit status 1 on any mismatch)
    recotrig firmware calibrate DIR --rate 1kHz [--input STORE ... | --dataset NAME]
        the integer threshold for a zero-bias rate, into the emulator and both firmware forms
        (a calibrated copy is made beside DIR and swapped in: an interrupt leaves DIR as it was)

Events: the crossings of L1 stores (``--input``; default: the bundled L1 sample, 12,000 crossings)
or a named data set's held-out test split (``--dataset zerobias-mu60``: 1,000,000 zero-bias
crossings, built and cached on first use). ``verify`` tops them up to ``--events`` with inputs
chosen to hit saturation and rounding edges (``firmware.project.edge_words``), at least 1,000.
``calibrate`` uses the zero-bias crossings among them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from recotrig.algorithms.ml.anomaly_trigger import DEFAULT_MODEL
from recotrig.edm.trigger import PROCESS_CODES, l1_features
from recotrig.firmware import project
from recotrig.firmware.emulator import FirmwareError
from recotrig.framework.arguments import ArgumentParser
from recotrig.framework.files import OutputError, write_json
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


def store_features(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The L1 features and process codes of every crossing of the L1 stores ``paths``."""
    reader = L1Reader(input="\n".join(paths))  # each path literally (recotrig.io.fileset.expand)
    reader.prepare(0, reader.n_events())
    features, processes = [], []
    for entry in range(reader.n_events()):
        objects, crossing = reader.read(entry)
        features.append(l1_features(objects))
        processes.append(int(crossing.process[0]) if crossing is not None and len(crossing) else -1)
    return np.stack(features), np.asarray(processes)


def _events(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    if args.dataset:
        from recotrig.training.anomaly import dataset

        x, _ = dataset.background(args.dataset, "test")
        limit = getattr(args, "events", None)
        x = np.asarray(x[:limit] if limit else x)
        return x, np.full(len(x), PROCESS_CODES["zerobias"]), f"data set {args.dataset} (test split)"
    paths = args.input or L1_SAMPLE.split(",")
    x, processes = store_features(paths)
    return x, processes, ", ".join(Path(p).name for p in paths)


def _add_events(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument("--input", "-i", nargs="+", metavar="STORE", help="L1 stores (default: the bundled L1 sample)")
    source.add_argument("--dataset", help="a named data set's held-out test split (e.g. zerobias-mu60)")


def cmd_build(argv: list[str]) -> int:
    p = ArgumentParser(prog="recotrig firmware", description="Build the anomaly trigger's firmware.")
    p.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"a shipped anomaly model (default {DEFAULT_MODEL})")
    p.add_argument("-o", "--output", required=True, help="firmware directory")
    p.add_argument("--rate", type=parse_rate, default=10.0, help="the card's threshold to start from (1kHz or 10kHz)")
    p.add_argument("--clock", type=float, default=40.0, help="clock of the Verilog pipeline [MHz]")
    p.add_argument("--force", action="store_true", help="replace DIR if it is a firmware directory already")
    args = p.parse_args(argv)
    print(f"building the firmware of {args.model} into {args.output} (hls4ml, then da4ml and Verilator) ...")
    fw = project.create(args.model, args.output, rate_khz=args.rate, clock_mhz=args.clock, force=args.force)
    print((fw.path / "report.md").read_text())
    return 0


def cmd_verify(argv: list[str]) -> int:
    p = ArgumentParser(
        prog="recotrig firmware verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("directory")
    p.add_argument("--events", type=int, default=100_000, help="events for the C simulation (real + edge inputs)")
    p.add_argument("--rtl-events", type=int, default=None, help="events for the RTL simulation (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the edge inputs")
    _add_events(p)
    args = p.parse_args(argv)
    fw = project.load(args.directory)
    spec = fw.emulator.spec
    x, _, source = _events(args)
    real = spec.hw_words(x[: max(args.events - EDGE_EVENTS, 0)])
    edges = project.edge_words(spec, real, max(args.events - len(real), EDGE_EVENTS), seed=args.seed)
    words = np.concatenate([real, edges])
    rtl_events = len(words) if args.rtl_events is None else args.rtl_events
    result = project.verify(
        fw.path, words, rtl_events=rtl_events, labels={f"crossings of {source}": len(real), "edge inputs": len(edges)}
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
    x, processes, source = _events(args)
    zero_bias = x[processes == PROCESS_CODES["zerobias"]]
    if not len(zero_bias):
        raise FirmwareError(f"{source}: no zero-bias crossings to calibrate on")
    result = project.calibrate(
        fw.path, fw.emulator.spec.hw_words(zero_bias), args.rate, f"{len(zero_bias)} zero-bias crossings of {source}"
    )
    print(
        f"threshold {result['threshold']} (score word) for {args.rate:g} kHz: {result['n_pass']} of "
        f"{result['n_zero_bias']} zero-bias crossings pass = {result['rate_khz']:.3g} ± "
        f"{result['rate_khz_error']:.2g} kHz; written into {fw.path}"
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
