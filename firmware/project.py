"""A firmware directory: the anomaly trigger of one shipped model as hls4ml project and da4ml
Verilog, with the fixed-point spec, the calibrated threshold and a report.

    DIR/firmware.json      manifest: model, spec sha256, threshold, clock, tools, estimates
    DIR/spec.fixed.json    the fixed-point network (the emulator's input)
    DIR/calibration.json   the integer threshold and the zero-bias crossings it was set on
    DIR/hls4ml/            hls4ml project (Vitis, io_parallel), compiled; firmware/anomaly_trigger.h, csim/
    DIR/verilog/           da4ml Verilog (src/), its Verilator simulation (sim/)
    DIR/report.md          what was built, estimated and verified, and what was not done

``create`` makes it, ``calibrate`` sets a new threshold (into the emulator and both firmware
forms), ``verify`` compares the emulator with the C simulation and the RTL simulation bit by bit.

``create`` and ``calibrate`` build the new directory beside DIR and swap it in only when it is
complete (``framework.files.staged_directory``): a failure or an interrupt leaves DIR as it was,
never a mix. An existing, non-empty DIR is replaced only when its manifest says it is a recotrig
firmware directory and ``force`` is given; anything else is refused, naming it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.firmware import hls, rtl
from recotrig.firmware.emulator import FORMAT, MANIFEST, Firmware, FirmwareError, card_threshold, load
from recotrig.firmware.emulator import calibrate as calibrate_scores
from recotrig.framework.files import staged_directory, write_json
from recotrig.models import registry
from recotrig.models.anomaly.fixedpoint import Spec
from recotrig.models.cards import AnomalyCard

__all__ = ["calibrate", "coverage", "create", "edge_words", "load", "verify"]


def _spec_of_model(model: registry.Model) -> tuple[Spec, Path]:
    card = model.typed_card
    if not isinstance(card, AnomalyCard):
        raise FirmwareError(f"{model.onnx}: not an anomaly model with a fixed-point spec")
    path = model.onnx.parent / card.fixed_point.spec
    if not path.is_file() or registry.sha256(path) != card.fixed_point.spec_sha256:
        raise FirmwareError(f"{path}: the fixed-point spec of {model.onnx} is missing or differs from its card")
    return Spec.load(path), path


def _quiet(fn, log: Path):
    """Run ``fn`` with its chatter (hls4ml prints each layer) sent to ``log``."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            return fn()
    finally:
        log.write_text(buffer.getvalue())


def _is_firmware(path: Path) -> bool:
    """Whether ``path`` holds a recotrig firmware manifest (by its content, not its name)."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _replaceable(force: bool):
    """The check of an existing, non-empty output directory: a recotrig firmware directory, and ``force``."""

    def check(path: Path) -> None:
        if not _is_firmware(path):
            raise FirmwareError(
                f"{path} exists and is not a firmware directory (no recotrig {MANIFEST} in it); "
                "it is left alone: choose an empty or new directory"
            )
        if not force:
            raise FirmwareError(f"{path} is a firmware directory already; give --force to replace it")

    return check


def _relocate(stage: Path, final: Path) -> None:
    """hls4ml records its output folder in its configuration: name the final one, not the stage."""
    config = stage / "hls4ml" / "hls4ml_config.yml"
    if config.is_file():
        config.write_text(config.read_text().replace(str(stage), str(final)))


def create(
    model_name: str,
    out: str | Path,
    *,
    rate_khz: float = 10.0,
    clock_mhz: float = 40.0,
    force: bool = False,
    threshold: float | None = None,
) -> Firmware:
    """Build the firmware of a shipped anomaly model into ``out``, with the threshold
    ``threshold`` (a score) or else the model card's for ``rate_khz`` (``card_threshold``: a
    model without zero-bias thresholds takes its own background's); ``calibration.json`` says
    which. It is built beside ``out`` and put in place when complete; an existing firmware
    directory is replaced only with ``force``, any other non-empty directory never."""
    out = Path(out)
    try:
        model = registry.load(model_name, family="anomaly")
    except registry.ModelError as err:
        raise FirmwareError(str(err)) from None
    spec, spec_path = _spec_of_model(model)
    card = model.typed_card  # an AnomalyCard: checked by _spec_of_model
    word, source = card_threshold(card, spec, rate_khz, threshold)
    target = rate_khz if threshold is None and f"{rate_khz:g}" in card.thresholds_khz else None
    if not 0 <= word < 2 ** spec.score_bits():
        top = 2.0 ** (spec.score_bits() - spec.score_fraction_bits)
        raise FirmwareError(f"threshold {threshold:g} is outside the {model_name} score's range, 0 to {top:g}")
    with staged_directory(out, check=_replaceable(force)) as stage:
        _build(stage.path, out, model, spec, spec_path, word, target, clock_mhz, f"{model_name}: {source}")
    return load(out)


def _build(
    out: Path,
    final: Path,
    model: registry.Model,
    spec: Spec,
    spec_path: Path,
    threshold: int,
    rate_khz: float | None,
    clock_mhz: float,
    source: str,
) -> None:
    """Write the firmware into the (new, empty) directory ``out`` that becomes ``final``."""
    shutil.copyfile(spec_path, out / "spec.fixed.json")
    calibration = {"rate_khz_target": rate_khz, "threshold": threshold, "source": source}
    t0 = time.perf_counter()
    hls_report = _quiet(lambda: hls.write_project(spec, out / "hls4ml", threshold, rate_khz), out / "hls4ml.log")
    t_hls = time.perf_counter() - t0
    rtl_report = rtl.write_project(spec, out / "verilog", threshold, clock_mhz=clock_mhz)
    manifest = {
        "format": FORMAT,
        "model": model.typed_card.name,
        "onnx_sha256": model.typed_card.onnx_sha256,
        "spec_sha256": registry.sha256(out / "spec.fixed.json"),
        "score_fraction_bits": spec.score_fraction_bits,
        "score_bits": spec.score_bits(),
        "input_word": str(spec.raw),
        "clock_mhz": clock_mhz,
        "hls4ml": {**hls_report, "seconds": round(t_hls, 1)},
        "verilog": {**rtl_report, "seconds": round(time.perf_counter() - t0 - t_hls, 1)},
    }
    write_json(out / MANIFEST, manifest)
    write_json(out / "calibration.json", calibration)
    _relocate(out, final)
    _write_report(out, final)


def calibrate(
    path: str | Path, words: np.ndarray, rate_khz: float, source: str, *, replicas: list[int] | None = None
) -> dict[str, Any]:
    """Set the threshold for ``rate_khz`` from zero-bias crossings (their input words; with
    ``replicas``, the sizes of its independent blocks: ``emulator.calibrate``) and write it into
    the emulator's calibration and both firmware forms (rebuilt). The calibrated directory is a
    copy made beside ``path`` and swapped in when complete."""
    fw = load(path)
    scores, _ = fw.emulator.run(words)
    result = {**calibrate_scores(scores, rate_khz, replicas=replicas), "source": source}
    spec = fw.emulator.spec
    with staged_directory(fw.path, check=_replaceable(True)) as stage:
        new = stage.path
        shutil.copytree(fw.path, new, symlinks=True, dirs_exist_ok=True)  # copies: files are rewritten in place
        (new / "hls4ml" / "firmware" / "anomaly_trigger.h").write_text(
            hls.trigger_header(spec, result["threshold"], rate_khz)
        )
        hls.build_csim(new / "hls4ml")
        shutil.rmtree(new / "verilog")
        fw.manifest["verilog"] = {
            **rtl.write_project(spec, new / "verilog", result["threshold"], clock_mhz=fw.manifest["clock_mhz"]),
            "seconds": fw.manifest["verilog"].get("seconds"),
        }
        write_json(new / MANIFEST, fw.manifest)
        write_json(new / "calibration.json", result)
        _write_report(new, fw.path)
    return result


def edge_words(spec: Spec, real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` input-word events chosen to hit saturation and rounding edges: the empty crossing;
    the raw extremes; per feature the words just inside and outside the input type's range
    (in otherwise real crossings); per unit of every layer, the input range's ends taken with the
    signs of the unit's linearised weights (the product of the weight matrices, ReLUs and biases
    left out), both ways, and the corners its gradient points to through the ReLUs those open
    (``_climb``): its largest pre-activations, so each layer's saturation is reached where it can
    be; real crossings scaled up by powers of two (hidden layers saturate); and uniform
    words across and beyond the input range (every truncation)."""
    rng = np.random.default_rng(seed)
    features = len(spec.shifts)
    offsets = np.asarray(spec.offsets or np.zeros(features), np.int64)
    lo, hi = offsets + spec.input.lo, offsets + spec.input.hi
    raw = spec.raw
    rows = [np.zeros(features, np.int64), np.full(features, raw.lo), np.full(features, raw.hi)]
    base = real[rng.integers(0, len(real), size=features * 6)] if len(real) else np.zeros((features * 6, features))
    for j in range(features):
        for i, value in enumerate((lo[j] - 1, lo[j], lo[j] + 1, hi[j] - 1, hi[j], hi[j] + 1)):
            row = np.array(base[j * 6 + i], np.int64)
            row[j] = value
            rows.append(row)
    linear = np.eye(features)
    for layer, weights in enumerate(spec.weights):
        linear = np.asarray(weights, np.float64) @ linear  # (units, features)
        for sign in (1, -1):
            start = np.where(sign * linear > 0, hi, np.where(sign * linear < 0, lo, offsets))
            rows.extend(start)
            rows.extend(_climb(spec, np.clip(start, raw.lo, raw.hi), layer, sign, lo, hi, offsets))
    edges = np.clip(np.stack(rows), raw.lo, raw.hi)
    left = max(n - len(edges), 0)
    scaled_n = left // 2
    picks = real[rng.integers(0, len(real), size=scaled_n)] if len(real) else np.zeros((scaled_n, features))
    scaled = np.asarray(picks, np.int64) << rng.integers(1, 8, size=(scaled_n, 1))
    span = (hi - lo)[None, :]
    uniform = lo[None, :] - span // 4 + (rng.random((left - scaled_n, features)) * span * 1.5).astype(np.int64)
    out = np.concatenate([edges, np.clip(scaled, raw.lo, raw.hi), np.clip(uniform, raw.lo, raw.hi)])[:n]
    return out.astype(np.int64)


def _climb(
    spec: Spec,
    words: np.ndarray,
    layer: int,
    sign: int,
    lo: np.ndarray,
    hi: np.ndarray,
    mid: np.ndarray,
    rounds: int = 3,
    sweeps: int = 2,
) -> np.ndarray:
    """Row ``u`` of ``words`` moved, ``rounds`` times, to the corner of the input range that the
    signs of unit ``u``'s gradient (``sign`` × its pre-activation in ``layer``, through the ReLUs
    open at the current row) point to: the largest values the linearised weights miss when
    hidden ReLUs close. Then improved one feature at a time, ``sweeps`` times over the features:
    each set to its range's low end, high end or middle, or left, whichever gives unit ``u`` the
    largest ``sign`` × its result (a row never gets worse). That finds the corners the gradient
    misses where ReLUs open and close along the way (a last layer's saturation behind narrow
    hidden units)."""
    x = np.asarray(words, np.int64)
    for _ in range(rounds):
        values = list(spec.layer_values(x))
        g = sign * np.asarray(spec.weights[layer], np.float64)  # row u: unit u's weights
        for below in range(layer - 1, -1, -1):
            if spec.layers[below].relu:
                g = g * (values[below + 1] > 0)
            g = g @ np.asarray(spec.weights[below], np.float64)
        x = np.where(g > 0, hi, np.where(g < 0, lo, mid))
    units = np.arange(len(x))
    for _ in range(sweeps):
        for j in range(x.shape[1]):
            trials = np.repeat(x[None], 4, axis=0)  # (the row as it is, then 3 trials; units, features)
            trials[1, :, j], trials[2, :, j], trials[3, :, j] = lo[j], hi[j], mid[j]
            flat = trials.reshape(-1, x.shape[1])
            *_, result = itertools.islice(spec.layer_values(flat), layer + 2)
            gain = sign * result.reshape(4, len(x), -1)[:, units, units]
            x = trials[np.argmax(gain, axis=0), units]
    return x


def coverage(spec: Spec, words: np.ndarray) -> dict[str, float]:
    """Fraction of events in which the input stage and each layer saturate at least once."""
    values = list(spec.layer_values(words))
    types = [spec.input] + [layer.result for layer in spec.layers]
    names = ["input"] + [f"dense{i}" for i in range(len(spec.layers))]
    return {name: float(np.mean(((k <= t.lo) | (k >= t.hi)).any(axis=1))) for name, k, t in zip(names, values, types)}


def verify(
    path: str | Path, words: np.ndarray, *, rtl_events: int, labels: dict[str, int] | None = None
) -> dict[str, Any]:
    """The emulator against the C simulation (all ``words``) and the RTL simulation (the first
    ``rtl_events``), bit by bit: score words and decisions; every mismatch listed."""
    fw = load(path)
    words = np.asarray(words, np.int64)
    t0 = time.perf_counter()
    score, passed = fw.emulator.run(words)
    t_emulator = time.perf_counter() - t0
    out: dict[str, Any] = {
        "firmware": str(fw.path),
        "model": fw.model,
        "threshold": fw.emulator.threshold,
        "events": len(words),
        "event_sources": labels or {},
        "emulator_seconds": t_emulator,
        "saturation_coverage": coverage(fw.emulator.spec, words),
    }
    t0 = time.perf_counter()
    c_score, c_pass = hls.run_csim(fw.path / "hls4ml", words)
    out["csim"] = _compare(score, passed, c_score, c_pass) | {"events": len(words), "seconds": time.perf_counter() - t0}
    n_rtl = min(rtl_events, len(words))
    t0 = time.perf_counter()
    r_score, r_pass = rtl.simulate(fw.path / "verilog", words[:n_rtl])
    out["rtl"] = _compare(score[:n_rtl], passed[:n_rtl], r_score, r_pass) | {
        "events": n_rtl,
        "seconds": time.perf_counter() - t0,
        "simulator": "Verilator (da4ml binder)",
    }
    out["bit_exact"] = out["csim"]["mismatches"] == 0 and out["rtl"]["mismatches"] == 0
    out["passed_events"] = int(passed.sum())
    return out


def _compare(score, passed, other_score, other_pass) -> dict[str, Any]:
    bad = np.flatnonzero((score != other_score) | (passed != other_pass))
    return {
        "mismatches": len(bad),
        "first": [
            {
                "event": int(i),
                "emulator": [int(score[i]), bool(passed[i])],
                "firmware": [int(other_score[i]), bool(other_pass[i])],
            }
            for i in bad[:100]
        ],
    }


def _target(calibration: dict[str, Any]) -> str:
    rate = calibration.get("rate_khz_target")
    return "" if rate is None else f"{rate:g} kHz target; "


def _write_report(path: Path, final: Path) -> None:
    """``report.md`` of the firmware in ``path``, which is (or becomes) ``final``."""
    m = json.loads((path / MANIFEST).read_text())
    c = json.loads((path / "calibration.json").read_text())
    v, h = m["verilog"], m["hls4ml"]
    lines = [
        f"# Anomaly-trigger firmware of `{m['model']}`",
        "",
        f"- Input: 57 words `{m['input_word']}`; score word {m['score_bits']} bits, LSB 2^-{m['score_fraction_bits']}.",
        f"- Decision: score word > {c['threshold']} ({_target(c)}{c.get('source')}).",
        (
            f"- hls4ml ({h['tool']}, {h['backend']}, {h['io_type']}, {h['strategy']}): written and compiled with g++; "
            "the C simulation is `hls4ml/csim/anomaly_csim`."
        ),
        (
            f"- Verilog ({v['tool']}): {v['lut_estimate']} LUTs and {v['ff_estimate']} FFs (estimates), delay "
            f"{v['delay_units']:g} units (about {v['delay_ns_estimate']:g} ns), {v['pipeline_stages']} pipeline stages "
            f"at {v['clock_mhz']:g} MHz = {v['latency_ns']:g} ns."
        ),
        f"- Not done: {h['not_done']}; {v['not_done']}.",
        "- Verify: `recotrig firmware verify " + str(final) + "` (emulator = C simulation = RTL simulation).",
        "",
    ]
    (path / "report.md").write_text("\n".join(lines))
