"""The anomaly-trigger firmware of each shipped model: bit-exactness of the emulator against
hls4ml's C simulation and the RTL simulation of the da4ml Verilog, emulator throughput on one
core against hls4ml's ``predict`` and da4ml's interpreter, and da4ml's latency and LUT
estimates, beside each model's physics: the held-out AUC of A -> 4 leptons and its efficiency at
the card's calibrated 1 kHz threshold, from the integer score (the firmware's).

    python bench/bench_firmware.py [--events 100000] [--models anomaly-vae-zerobias-mu60 ...]

Events: every held-out crossing of the model's own data set (its card's ``training.config.dataset``:
the test background and the 4 test signals), then held-out zero-bias crossings of the zerobias-mu60
test split up to ``--events`` (real L1 inputs for the bit-exactness check only), and 1,000 edge
inputs (``firmware.project.edge_words``). The physics is read on the model's own data set; a model
without a zero-bias rate calibration (the ADC2021-style ones) has no 1 kHz figure.

Prints JSON; ``bench/results/firmware.json`` keeps one row per model, a run of some models replacing
their rows, and each row names the command that measured it.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core: set before numpy loads BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import best_time, stdout_to_stderr

from recotrig.edm.trigger import SIGNALS
from recotrig.firmware import hls, project
from recotrig.metrics.trigger import roc_auc
from recotrig.models import registry
from recotrig.training.anomaly import dataset
from recotrig.training.anomaly.train import spec_scores

MODELS = (
    "anomaly-vae-zerobias-mu60",
    "anomaly-vae-small-zerobias-mu60",
    "anomaly-ae-zerobias-mu60",
    "anomaly-student-zerobias-mu60",
    "anomaly-ae-adc2021-mu20",
    "anomaly-vae-adc2021-mu20",
)


def physics(card: dict, spec, data_set: str, background: np.ndarray) -> dict:
    """Held-out A -> 4 leptons of ``data_set`` from the integer score: AUC against its held-out
    background, and the efficiency at the card's calibrated 1 kHz threshold where it has one."""
    signal = spec_scores(spec, dataset.signal(data_set, "ato4l")[0])
    background = spec_scores(spec, background)
    auc = float(roc_auc(background, signal))
    out = {"data_set": data_set, "auc_ato4l": auc, "goals": {"auc_ge_0.94": auc >= 0.94}}
    if "1" not in card.get("thresholds_khz", {}):
        return {**out, "efficiency_ato4l_at_1_kHz": None, "why_none": "no zero-bias rate calibration"}
    threshold = card["thresholds_khz"]["1"]
    efficiency = float(np.mean(signal > threshold))
    out["goals"]["efficiency_at_1_kHz_ge_0.34"] = efficiency >= 0.34
    return {
        **out,
        "efficiency_ato4l_at_1_kHz": efficiency,
        "threshold_1_kHz": threshold,
        "threshold_from": "rate_calibration" if "rate_calibration" in card else "held-out test background",
    }


def bench_model(name: str, events: int, work: Path) -> dict:
    with stdout_to_stderr():
        t0 = time.perf_counter()
        fw = project.create(name, work / name)
        build_s = time.perf_counter() - t0
    spec = fw.emulator.spec
    card = registry.load(name, family="anomaly").card
    data_set = card["training"]["config"]["dataset"]
    background = np.asarray(dataset.background(data_set, "test")[0])
    signals = np.concatenate([dataset.signal(data_set, p)[0] for p in SIGNALS])
    zero_bias = np.asarray(dataset.background("zerobias-mu60", "test")[0])
    n_real = max(events - 1000, len(signals))
    own = np.concatenate([background[: n_real - len(signals)], signals])
    fill = zero_bias[: n_real - len(own)]  # empty for a zero-bias model: its own crossings fill n_real
    real = spec.hw_words(np.concatenate([own, fill]))
    words = np.concatenate([real, project.edge_words(spec, real, 1000)])
    result = project.verify(fw.path, words, rtl_events=len(words))
    # throughput, one core: the emulator on 1,000,000 crossings (words in, score and bit out; and
    # from the float features), against hls4ml's predict and da4ml's interpreter on a sample
    x = np.asarray(zero_bias[:1_000_000])
    w = spec.hw_words(x)
    t_words = best_time(lambda: fw.emulator.run(w), 3)
    t_features = best_time(lambda: fw.emulator.run(fw.emulator.words(x)), 3)
    n_predict = 2000
    with stdout_to_stderr(), tempfile.TemporaryDirectory() as tmp:
        hm = hls.convert(spec, Path(tmp) / "hls")
        sample = (w[:n_predict] * 2.0**-spec.input.fraction).astype(np.float64)
        t_predict = best_time(lambda: hm.predict(sample), 2)
        predicted = np.asarray(hm.predict(sample)).reshape(-1)
    predict_exact = bool(
        np.array_equal(
            np.rint(predicted * 2**spec.score_fraction_bits).astype(np.int64), fw.emulator.run(w[:n_predict])[0]
        )
    )
    from da4ml.types import CombLogic

    comb = CombLogic.load(fw.path / "verilog" / "model" / "trigger_comb.json")
    t_da4ml = best_time(lambda: comb.predict(w[:20000] * 2.0**-spec.input.fraction, n_threads=1), 2)
    v = fw.manifest["verilog"]
    return {
        "model": name,
        "events": len(words),
        "event_sources": {"own_data_set": data_set, "own": len(own), "zero_bias_fill": len(fill), "edge": 1000},
        "build_seconds": round(build_s, 1),
        "csim": {
            "mismatches": result["csim"]["mismatches"],
            "events": result["csim"]["events"],
            "us_per_event": result["csim"]["seconds"] / result["csim"]["events"] * 1e6,
        },
        "rtl": {
            "mismatches": result["rtl"]["mismatches"],
            "events": result["rtl"]["events"],
            "simulator": result["rtl"]["simulator"],
        },
        "saturation_coverage": result["saturation_coverage"],
        "emulator_events_per_s": {"from_words": len(w) / t_words, "from_features": len(x) / t_features},
        "hls4ml_predict_us_per_event": t_predict / n_predict * 1e6,
        "hls4ml_predict_bit_exact": predict_exact,
        "da4ml_interpreter_us_per_event": t_da4ml / 20000 * 1e6,
        "emulator_over_hls4ml_predict": (len(x) / t_features) * (t_predict / n_predict),
        "latency": {
            "delay_units": v["delay_units"],
            "pipeline_stages": v["pipeline_stages"],
            "clock_mhz": v["clock_mhz"],
            "latency_ns": v["latency_ns"],
        },
        "lut_estimate": v["lut_estimate"],
        "ff_estimate": v["ff_estimate"],
        "physics": physics(card, spec, data_set, background),
        "goals": {
            "csim_0_mismatch_ge_100k": result["csim"]["mismatches"] == 0 and len(words) >= 100_000,
            "rtl_0_mismatch_ge_1k": result["rtl"]["mismatches"] == 0 and result["rtl"]["events"] >= 1000,
            "throughput_ge_1M_per_s": len(x) / t_features >= 1e6,
            "ge_100x_hls4ml_predict": (len(x) / t_features) * (t_predict / n_predict) >= 100,
            "latency_le_2_clocks_40MHz": v["pipeline_stages"] <= 2 and v["clock_mhz"] == 40.0,
            "lut_le_17000": v["lut_estimate"] <= 17_000,
        },
    }


def _order(name: str) -> int:
    return MODELS.index(name) if name in MODELS else len(MODELS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    args = parser.parse_args()
    command = " ".join(["python bench/bench_firmware.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory() as tmp:
        rows = [{**bench_model(name, args.events, Path(tmp)), "command": command} for name in args.models]
    path = Path(__file__).parent / "results" / "firmware.json"
    path.parent.mkdir(exist_ok=True)
    # a run of some models replaces their rows and keeps the others' (each row names its command)
    kept = json.loads(path.read_text())["models"] if path.exists() else []
    rows = [r for r in kept if r["model"] not in args.models] + rows
    out = {"benchmark": "firmware", "one_core": True, "models": sorted(rows, key=lambda r: _order(r["model"]))}
    text = json.dumps(out, indent=1)
    path.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
