"""The hls4ml project of the anomaly-trigger firmware, and its C simulation.

The quantised network of a fixed-point spec is rebuilt as a torch module whose weights are the
spec's integers times their LSBs (exact), converted with hls4ml's PyTorch frontend (Vitis
backend, ``io_parallel``, latency strategy) with every layer's precision set to the spec's types
and every accumulator wide enough to be exact, written and compiled with g++ (hls4ml's own
``compile``). The graph, by layer name:

    x (input words, ``Spec.raw``) -> normalise (identity weights, bias -offset; input type)
      -> dense0, relu0, dense1, ... (the spec's layers) -> [select_y]
      -> sub, sub_1 (y - reference, twice: hls4ml's multiply needs two distinct inputs)
      -> mul -> total (weights 1: the score word)

with reference = the normalised inputs (an autoencoder's error, ``[select_k]`` for a subset of
features) or ``zero`` (a latent score). Beside hls4ml's files the project gets
``firmware/anomaly_trigger.h`` (the decision ``score > threshold`` with the integer threshold)
and ``csim/anomaly_csim.cpp``, a test bench that feeds input words bit by bit and writes the
score word's bits and the decision; built with g++ it is the C simulation ``verify`` runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.firmware.emulator import FirmwareError
from recotrig.models.anomaly.fixedpoint import Spec

__all__ = ["build_csim", "convert", "csim_source", "run_csim", "torch_model", "trigger_header", "write_project"]

PROJECT = "anomaly"
CSIM = "csim/anomaly_csim"


def _plain(width: int, integer: int) -> str:
    return f"ap_fixed<{width},{integer}>"


def _selection(rows: list[int], n: int) -> np.ndarray:
    m = np.zeros((len(rows), n))
    m[np.arange(len(rows)), rows] = 1.0
    return m


def torch_model(spec: Spec):
    """The spec's network, normalisation to score, as a float64 torch module (exact weights)."""
    import torch
    from torch import nn

    n = len(spec.shifts)
    subset = spec.score_kind == "mse" and spec.score_features and len(spec.score_features) != n

    def linear(weight: np.ndarray, bias: np.ndarray | None) -> nn.Linear:
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None).double()
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(np.asarray(weight, np.float64)))
            if bias is not None:
                layer.bias.copy_(torch.from_numpy(np.asarray(bias, np.float64)))
        return layer

    class FirmwareNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            offsets = np.asarray(spec.offsets or np.zeros(n), np.float64)
            self.normalise = linear(np.eye(n), -offsets * 2.0**-spec.input.fraction)
            for i, (layer, w, b) in enumerate(zip(spec.layers, spec.weights, spec.biases)):
                setattr(self, f"dense{i}", linear(w * 2.0**-layer.weight.fraction, b * 2.0**-layer.bias.fraction))
                if layer.relu:
                    setattr(self, f"relu{i}", nn.ReLU())
            n_out = spec.layers[-1].n_out
            if subset:
                self.select_y = linear(_selection(spec.score_features, n_out), None)
                self.select_k = linear(_selection(spec.score_features, n), None)
            elif spec.score_kind != "mse":
                self.zero = linear(np.zeros((n_out, n)), None)
            m = len(spec.score_features) if subset else n_out
            self.total = linear(np.ones((1, m)), None)

        def forward(self, x):
            k = self.normalise(x)
            y = k
            for i, layer in enumerate(spec.layers):
                y = getattr(self, f"dense{i}")(y)
                if layer.relu:
                    y = getattr(self, f"relu{i}")(y)
            if subset:
                y, ref = self.select_y(y), self.select_k(k)
            else:
                ref = k if spec.score_kind == "mse" else self.zero(k)
            return self.total((y - ref) * (y - ref))

    return FirmwareNet().double().eval()


def _precisions(spec: Spec) -> dict[str, dict[str, str]]:
    """Per hls4ml layer name, its precisions: the spec's types, exact accumulators."""
    one = _plain(2, 2)
    raw, inp = spec.raw, spec.input
    out: dict[str, dict[str, str]] = {
        "x": {"result": str(raw)},
        "normalise": {
            "weight": one,
            "bias": _plain(raw.width, raw.integer),
            "accum": _plain(raw.width + 2, raw.integer + 2),
            "result": str(inp),
        },
    }
    fraction = inp.fraction
    for i, (layer, bits) in enumerate(zip(spec.layers, spec.accumulator_bits())):
        acc_fraction = fraction + layer.weight.fraction
        out[f"dense{i}"] = {
            "weight": str(layer.weight),
            "bias": str(layer.bias),
            "accum": _plain(bits, bits - acc_fraction),
            "result": str(layer.result),
        }
        if layer.relu:
            out[f"relu{i}"] = {"result": str(layer.result)}
        fraction = layer.result.fraction
    last = spec.layers[-1].result
    wide = {"weight": one, "bias": one}
    if spec.score_kind == "mse" and spec.score_features and len(spec.score_features) != len(spec.shifts):
        out["select_y"] = {**wide, "accum": _plain(last.width + 2, last.integer + 2), "result": str(last)}
        out["select_k"] = {**wide, "accum": _plain(inp.width + 2, inp.integer + 2), "result": str(inp)}
    elif spec.score_kind != "mse":
        out["zero"] = {**wide, "accum": _plain(inp.width + 2, inp.integer + 2), "result": str(last)}
    common = spec.score_fraction_bits // 2
    d_bits = (spec.score_bits() + 1) // 2 + 2  # |y - ref| < 2**(d_bits - 1) in LSBs of 2**-common
    for name in ("sub", "sub_1"):
        out[name] = {"result": _plain(d_bits, d_bits - common)}
    out["mul"] = {"result": _plain(2 * d_bits, 2 * (d_bits - common))}
    score = spec.score_bits() + 1
    out["total"] = {**wide, "accum": _plain(score, score - 2 * common), "result": _plain(score, score - 2 * common)}
    return out


def trigger_header(spec: Spec, threshold: int, rate_khz: float | None) -> str:
    score = spec.score_bits() + 1
    n = len(spec.shifts)
    rate = (
        f"{rate_khz:g} kHz of zero-bias crossings" if rate_khz is not None else "not a zero-bias rate: calibration.json"
    )
    return f"""#ifndef ANOMALY_TRIGGER_H_
#define ANOMALY_TRIGGER_H_
// The anomaly trigger's decision: the score word above the integer threshold ({rate}).
// Written by recotrig; the score LSB is 2^-{spec.score_fraction_bits}.
#include "{PROJECT}.h"

static const ap_int<{score}> ANOMALY_THRESHOLD_WORD = {int(threshold)}LL;

inline bool anomaly_trigger(input_t x[{n}], result_t score[1]) {{
    {PROJECT}(x, score);
    ap_int<{score}> word;
    word.range({score - 1}, 0) = score[0].range({score - 1}, 0);
    return word > ANOMALY_THRESHOLD_WORD;
}}
#endif
"""


def csim_source(spec: Spec) -> str:
    n, raw, score = len(spec.shifts), spec.raw.width, spec.score_bits() + 1
    return f"""// C simulation test bench of the anomaly trigger (written by recotrig).
// in:  events x {n} int32 input words (two's complement, {raw} bits used)
// out: per event the score word (int64) and the decision (uint8)
#include <cstdint>
#include <cstdio>
#include "anomaly_trigger.h"

int main(int argc, char **argv) {{
    if (argc != 3) {{ std::fprintf(stderr, "usage: %s WORDS.bin OUT.bin\\n", argv[0]); return 2; }}
    std::FILE *in = std::fopen(argv[1], "rb");
    std::FILE *out = std::fopen(argv[2], "wb");
    if (!in || !out) {{ std::perror("anomaly_csim"); return 1; }}
    int32_t w[{n}];
    while (std::fread(w, sizeof(int32_t), {n}, in) == {n}) {{
        input_t x[{n}];
        result_t s[1];
        for (int j = 0; j < {n}; j++) x[j].range({raw - 1}, 0) = ap_uint<{raw}>((uint32_t)w[j] & {(1 << raw) - 1}u);
        bool pass = anomaly_trigger(x, s);
        ap_int<{score}> word;
        word.range({score - 1}, 0) = s[0].range({score - 1}, 0);
        int64_t v = word.to_int64();
        uint8_t p = pass ? 1 : 0;
        std::fwrite(&v, sizeof(v), 1, out);
        std::fwrite(&p, 1, 1, out);
    }}
    return std::fclose(out) == 0 ? 0 : 1;
}}
"""


def convert(spec: Spec, directory: Path):
    """The hls4ml model (``ModelGraph``) of the spec, written to ``directory`` and compiled."""
    spec.check_widths()
    try:
        import hls4ml
    except ImportError:
        raise FirmwareError("hls4ml is not installed (pip install 'recotrig[firmware]')") from None
    model = torch_model(spec)
    n = len(spec.shifts)
    config = hls4ml.utils.config_from_pytorch_model(
        model, input_shape=(n,), granularity="name", backend="Vitis", default_precision=_plain(16, 6)
    )
    wanted = _precisions(spec)
    layers = config["LayerName"]
    if set(layers) != set(wanted):
        raise FirmwareError(
            f"hls4ml maps the network onto layers {sorted(layers)}, not the expected "
            f"{sorted(wanted)}; the converter cannot set their precisions"
        )
    for name, precision in wanted.items():
        layers[name]["Precision"] = dict(precision)
    try:
        hm = hls4ml.converters.convert_from_pytorch_model(
            model,
            hls_config=config,
            output_dir=str(directory),
            backend="Vitis",
            io_type="io_parallel",
            project_name=PROJECT,
            part="xcvu13p-flga2577-2-e",
        )
        hm.write()
        hm.compile()
    except Exception as err:  # hls4ml reports its failures as assorted exceptions
        raise FirmwareError(
            f"hls4ml could not convert or compile the network into {directory}: {type(err).__name__}: {err}"
        ) from err
    return hm


def write_project(spec: Spec, directory: Path, threshold: int, rate_khz: float | None) -> dict[str, Any]:
    """Convert, write and compile the hls4ml project into ``directory``; add the trigger header
    and the C-simulation test bench and build it. Returns what the report says of it."""
    convert(spec, directory)
    import hls4ml

    (directory / "firmware" / "anomaly_trigger.h").write_text(trigger_header(spec, threshold, rate_khz))
    (directory / "csim").mkdir(exist_ok=True)
    (directory / "csim" / "anomaly_csim.cpp").write_text(csim_source(spec))
    build_csim(directory)
    return {
        "tool": f"hls4ml {hls4ml.__version__}",
        "backend": "Vitis",
        "io_type": "io_parallel",
        "strategy": "Latency",
        "precisions": _precisions(spec),
        "not_done": "C synthesis, resource and latency reports (they need Vitis HLS, which is not available)",
    }


def build_csim(directory: Path) -> Path:
    """Compile the C-simulation test bench of an hls4ml project directory with g++."""
    directory = Path(directory)
    source = directory / "csim" / "anomaly_csim.cpp"
    top = directory / "firmware" / f"{PROJECT}.cpp"
    for path in (source, top, directory / "firmware" / "anomaly_trigger.h"):
        if not path.is_file():
            raise FirmwareError(f"{directory}: not an anomaly-trigger hls4ml project ({path.name} is missing)")
    compiler = shutil.which(os.environ.get("CXX", "g++"))
    if compiler is None:
        raise FirmwareError("no C++ compiler: the C simulation needs g++ (or $CXX) on the PATH")
    binary = directory / CSIM
    # weights are read relative to the project's firmware/ folder, where run_csim runs the binary:
    # the firmware directory can be built beside its place and moved in, or copied
    cmd = [
        compiler,
        "-O2",
        "-std=c++14",
        f"-I{directory / 'firmware'}",
        f"-I{directory / 'firmware' / 'ap_types'}",
        '-DWEIGHTS_DIR="weights"',
        str(top),
        str(source),
        "-o",
        str(binary),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FirmwareError(f"g++ failed on {source}:\n{done.stderr[-2000:]}")
    return binary


def run_csim(directory: Path, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run the C simulation of the project in ``directory`` on input words ``(events, 57)``:
    integer scores and decisions as the compiled firmware code computes them."""
    directory = Path(directory)
    binary = directory / CSIM
    if not binary.is_file():
        binary = build_csim(directory)
    words = np.ascontiguousarray(words, np.int32)
    inp, out = directory / "csim" / "words.bin", directory / "csim" / "scores.bin"
    words.tofile(inp)
    done = subprocess.run(
        [str(binary.resolve()), str(inp.resolve()), str(out.resolve())],
        cwd=directory / "firmware",
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise FirmwareError(f"the C simulation {binary} failed: {done.stderr[-1000:]}")
    record = np.fromfile(out, dtype=np.dtype([("score", "<i8"), ("passed", "u1")]))
    inp.unlink()
    out.unlink()
    if len(record) != len(words):
        raise FirmwareError(f"the C simulation {binary} returned {len(record)} results for {len(words)} events")
    return record["score"].astype(np.int64), record["passed"].astype(bool)
