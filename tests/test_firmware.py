"""The anomaly-trigger firmware: the emulator against an independent integer reference, against
hls4ml's C simulation and against the RTL simulation of the da4ml Verilog (real hls4ml, g++,
da4ml and Verilator), rate calibration, the trigger in sequences, and bad input."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recotrig.algorithms.ml.anomaly_trigger import DEFAULT_MODEL
from recotrig.edm import L1Objects
from recotrig.firmware import hls, project, rtl
from recotrig.firmware.emulator import Emulator, FirmwareError, calibrate
from recotrig.models import registry
from recotrig.models.anomaly.fixedpoint import FixedType, Layer, Spec
from recotrig.sequences.cli import main
from recotrig.sequences.firmware_cmd import main as firmware_main
from recotrig.sequences.firmware_cmd import parse_rate

MODEL = DEFAULT_MODEL  # the default trigger model


# -- the integer arithmetic against a plain Python reference ------------------------------------------------
def _reference_score(spec: Spec, words: list[int]) -> int:
    """The spec's arithmetic on Python integers, one event, written out step by step."""

    def cast(value: int, fraction: int, t: FixedType) -> int:
        shift = fraction - t.fraction
        if shift > 0:
            value = (value + (1 << (shift - 1) if t.rounding == "RND" else 0)) >> shift
        else:
            value <<= -shift
        if t.overflow == "SAT":
            return min(max(value, t.lo), t.hi)
        return (value - t.lo) % (1 << t.width) + t.lo

    offsets = spec.offsets or [0] * len(words)
    x = [cast(w - o, spec.input.fraction, spec.input) for w, o in zip(words, offsets)]
    inputs, fraction = list(x), spec.input.fraction
    for layer, w, b in zip(spec.layers, spec.weights, spec.biases):
        acc_fraction = fraction + layer.weight.fraction
        acc = [
            sum(int(w[i, j]) * x[j] for j in range(layer.n_in)) + (int(b[i]) << (acc_fraction - layer.bias.fraction))
            for i in range(layer.n_out)
        ]
        x = [cast(a, acc_fraction, layer.result) for a in acc]
        if layer.relu:
            x = [max(v, 0) for v in x]
        fraction = layer.result.fraction
    if spec.score_kind == "latent":
        return sum(v * v for v in x)
    common = max(spec.input.fraction, fraction)
    d = [(y << (common - fraction)) - (k << (common - spec.input.fraction)) for y, k in zip(x, inputs)]
    return sum(d[i] * d[i] for i in (spec.score_features or range(len(d))))


def _random_spec(rng: np.random.Generator, kind: str, rounding: str, overflow: str) -> Spec:
    n, hidden, latent = 6, 5, 3
    sizes = [n, hidden, latent] + ([hidden, n] if kind == "mse" else [])
    w_t, b_t = FixedType(6, 2, "RND", "SAT"), FixedType(8, 3, "RND", "SAT")
    r_t = FixedType(9, 4, rounding, overflow)
    layers = [
        Layer(n_in=a, n_out=b, weight=w_t, bias=b_t, result=r_t, relu=i not in (1, len(sizes) - 2))
        for i, (a, b) in enumerate(itertools.pairwise(sizes))
    ]
    return Spec(
        shifts=list(rng.integers(-2, 4, size=n)),
        offsets=list(rng.integers(-40, 40, size=n)),
        input=FixedType(10, 4, "TRN", "SAT"),
        layers=layers,
        weights=[rng.integers(w_t.lo, w_t.hi + 1, size=(layer.n_out, layer.n_in)) for layer in layers],
        biases=[rng.integers(b_t.lo, b_t.hi + 1, size=layer.n_out) for layer in layers],
        score_kind=kind,
        score_features=[0, 2, 3] if kind == "mse" else [],
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["latent", "mse"]),
    st.sampled_from(["TRN", "RND"]),
    st.sampled_from(["SAT", "WRAP"]),
)
def test_emulator_equals_an_integer_reference(seed, kind, rounding, overflow):
    rng = np.random.default_rng(seed)
    spec = _random_spec(rng, kind, rounding, overflow)
    raw = spec.raw
    words = np.concatenate(
        [
            rng.integers(-600, 600, size=(30, 6)),
            rng.integers(raw.lo, raw.hi + 1, size=(10, 6)),
            np.zeros((1, 6), np.int64),
        ]
    )
    got = Emulator(spec, 0).run(words)[0]
    assert got.tolist() == [_reference_score(spec, row.tolist()) for row in words]


def test_input_words_are_floor_of_the_shifted_feature_then_saturation():
    spec = _random_spec(np.random.default_rng(1), "latent", "TRN", "SAT")
    spec.shifts = [0, 1, -1, 2, 0, 0]
    x = np.array([[1.0 / 64 + 1e-9, 3.0, -1.0 / 1024, 2.0**40, -(2.0**40), 0.0]])
    words = spec.hw_words(x)[0].tolist()
    assert words == [1, 3 * 32, -1, spec.raw.hi, spec.raw.lo, 0]  # LSB 2**(shift - 6)
    with pytest.raises(ValueError, match="row 0, feature x2"):
        spec.hw_words(np.array([[0.0, 0.0, np.nan, 0, 0, 0]]))


def test_rate_calibration_has_the_known_answer():
    rng = np.random.default_rng(3)
    scores = rng.permutation(40_000)  # 40,000 distinct zero-bias scores 0 .. 39,999
    result = calibrate(scores, 10.0)  # FPR 2.5e-4: 10 crossings above the threshold
    assert result["threshold"] == 39_989 and result["n_pass"] == 10
    assert result["rate_khz"] == pytest.approx(10.0) and result["rate_khz_error"] == pytest.approx(np.sqrt(10))
    assert calibrate(np.repeat(scores, 2), 10.0)["threshold"] == 39_989  # 80,000 crossings: 20 above
    tied = calibrate(np.r_[np.zeros(39_985, np.int64), np.full(15, 7)], 10.0)  # a tie across the boundary
    assert tied["threshold"] == 7 and tied["n_pass"] == 0  # never more than the rate
    with pytest.raises(ValueError, match="too few"):
        calibrate(scores[:1000], 1.0)
    assert parse_rate("1kHz") == 1.0 and parse_rate("500Hz") == 0.5 and parse_rate("0.1MHz") == 100.0


# -- the firmware, built once ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def firmware(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fw") / "default"
    assert firmware_main([MODEL, "-o", str(out)]) == 0
    return out


def test_firmware_directory_holds_both_forms_and_the_threshold(firmware):
    manifest = json.loads((firmware / "firmware.json").read_text())
    card = registry.load(MODEL, family="anomaly").card
    assert manifest["model"] == MODEL and manifest["spec_sha256"] == card["fixed_point"]["spec_sha256"]
    threshold = json.loads((firmware / "calibration.json").read_text())["threshold"]
    assert threshold == int(np.floor(card["thresholds_khz"]["10"] * 2 ** manifest["score_fraction_bits"]))
    assert f"ANOMALY_THRESHOLD_WORD = {threshold}LL" in (firmware / "hls4ml/firmware/anomaly_trigger.h").read_text()
    assert (firmware / "hls4ml/firmware/anomaly.cpp").is_file() and (firmware / "hls4ml/csim/anomaly_csim").is_file()
    assert list((firmware / "hls4ml/firmware").glob("anomaly-*.so"))  # hls4ml's own compile
    assert (firmware / "verilog/src/anomaly_trigger.v").is_file()
    estimate = manifest["verilog"]
    assert estimate["clock_mhz"] == 40.0 and estimate["pipeline_stages"] == 2 and estimate["latency_ns"] == 50.0
    assert 5_000 < estimate["lut_estimate"] <= 17_000  # the default model fits the size goal (14,423)


def test_emulator_equals_csim_and_rtl_bit_by_bit(firmware, capsys):
    assert firmware_main(["verify", str(firmware), "--events", "12000", "--edge-events", "2000"]) == 0
    result = json.loads((firmware / "verify.json").read_text())
    assert result["bit_exact"] and result["csim"]["mismatches"] == 0 and result["rtl"]["mismatches"] == 0
    assert result["csim"]["events"] == 14_000 and result["rtl"]["events"] == 14_000
    assert result["event_sources"]["edge inputs"] == 2000
    # every layer saturates somewhere where it can: the input stage, and each layer whose range the
    # interval bounds of its inputs reach (the default model's last layer has headroom)
    spec = Spec.load(firmware / "spec.fixed.json")
    reachable = {"input": True, **{f"dense{i}": r for i, r in enumerate(_can_saturate(spec))}}
    assert reachable["dense0"] and all(result["saturation_coverage"][k] > 0 for k, r in reachable.items() if r)
    assert 0 < result["passed_events"] < 14_000
    assert "0 mismatches in 14000 events" in capsys.readouterr().out


def _can_saturate(spec: Spec) -> list[bool]:
    """Per layer: can interval arithmetic from the input type's range reach its result type's ends?"""
    ends = spec.input.to_float(np.array([spec.input.lo, spec.input.hi]))
    lo, hi = np.full(spec.layers[0].n_in, ends[0]), np.full(spec.layers[0].n_in, ends[1])
    out = []
    for layer, w, b in zip(spec.layers, spec.weights, spec.biases):
        w, b = w * 2.0**-layer.weight.fraction, b * 2.0**-layer.bias.fraction
        pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
        lo, hi = pos @ lo + neg @ hi + b, pos @ hi + neg @ lo + b
        t_lo, t_hi = layer.result.to_float(np.array([layer.result.lo, layer.result.hi]))
        out.append(bool(np.any(hi >= t_hi) or (not layer.relu and np.any(lo <= t_lo))))
        lo, hi = np.clip(lo, t_lo, t_hi), np.clip(hi, t_lo, t_hi)
        if layer.relu:
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    return out


def test_a_wrong_weight_in_the_firmware_is_found(firmware, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(firmware, broken, symlinks=True)
    weights = broken / "hls4ml/firmware/weights"
    first = sorted(weights.glob("w3.txt"))[0]  # dense0's weights
    values = first.read_text().split(",")
    values[0] = str(float(values[0]) + 0.25)
    first.write_text(",".join(values))
    hls.build_csim(broken / "hls4ml")
    assert firmware_main(["verify", str(broken), "--events", "3000"]) == 1
    result = json.loads((broken / "verify.json").read_text())
    assert result["csim"]["mismatches"] > 0 and not result["bit_exact"] and result["rtl"]["mismatches"] == 0
    bad = result["csim"]["first"][0]
    assert bad["emulator"][0] != bad["firmware"][0]


def test_calibration_writes_the_threshold_into_both_firmware_forms(firmware, tmp_path):
    target = tmp_path / "calibrated"
    shutil.copytree(firmware, target, symlinks=True)
    hls.build_csim(target / "hls4ml")
    assert firmware_main(["calibrate", str(target), "--rate", "100kHz"]) == 0
    calibration = json.loads((target / "calibration.json").read_text())
    fw = project.load(target)
    from recotrig.sequences.firmware_cmd import store_features
    from recotrig.sequences.samples import L1_SAMPLE
    from recotrig.sim.premix import PROCESS_CODES

    x, processes = store_features(L1_SAMPLE.split(","))
    scores = fw.emulator.run(fw.emulator.words(x[processes == PROCESS_CODES["zerobias"]]))[0]
    assert calibration["n_zero_bias"] == 10_000 and calibration["threshold"] == int(np.sort(scores)[::-1][25])
    assert fw.emulator.threshold == calibration["threshold"]
    words = fw.emulator.words(x[:3000])
    expected = fw.emulator.run(words)
    for tool in (hls.run_csim(target / "hls4ml", words), rtl.simulate(target / "verilog", words)):
        assert np.array_equal(tool[0], expected[0]) and np.array_equal(tool[1], expected[1])


# -- the trigger in sequences ----------------------------------------------------------------------------
def _decisions(path: Path) -> dict[str, np.ndarray]:
    import uproot

    with uproot.open(path) as f:
        tree = f["decision"]
        return {k: np.asarray(tree[k].array(library="np")) for k in ("hw_score", "passed")}


def test_trigger_sequence_with_firmware_is_the_same_with_two_workers(firmware, tmp_path):
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}"
        assert (
            main(
                [
                    "run",
                    "trigger",
                    "-n",
                    "3000",
                    "-j",
                    str(jobs),
                    "--output",
                    str(out),
                    "--AnomalyTrigger.firmware",
                    str(firmware),
                    "--no-progress",
                ]
            )
            == 0
        )
        outs.append(_decisions(out / "trigger.root"))
        assert len(outs[-1]["passed"]) == 3000
    for key in outs[0]:
        assert np.array_equal(np.concatenate(list(outs[0][key])), np.concatenate(list(outs[1][key])))
    record = json.loads((tmp_path / "j1" / "run.json").read_text())["record"]
    assert [Path(e["path"]).name for e in record["files"]["firmware"]] == ["spec.fixed.json", "calibration.json"]


def test_anomaly_trigger_chunks_equal_single_events_and_empty_crossings_are_scored(firmware):
    from recotrig.algorithms.ml.anomaly_trigger import AnomalyTrigger
    from recotrig.io.l1_reader import L1Reader
    from recotrig.sequences.samples import L1_SAMPLE

    trigger = AnomalyTrigger(firmware=str(firmware))
    trigger.initialize()
    reader = L1Reader(input=L1_SAMPLE)
    reader.prepare(9990, 10010)
    events = [reader.read(entry)[0] for entry in range(9990, 10010)]
    empty = L1Objects(kind=np.zeros(0, "i4"), pt=np.zeros(0), eta=np.zeros(0), phi=np.zeros(0))
    events.append(empty)
    chunk = trigger.execute_chunk(events)
    for objects, together in zip(events, chunk):
        alone = trigger.execute(objects)
        assert int(alone["hw_score"][0]) == int(together["hw_score"][0])
        assert bool(alone.passed[0]) == bool(together.passed[0])
    fw = project.load(firmware)
    zero = fw.emulator.run(np.zeros((1, 57), np.int64))[0][0]
    assert int(chunk[-1]["hw_score"][0]) == int(zero) > 0  # an empty crossing gets the all-zero input's score


def test_full_sequence_has_tracks_vertices_and_the_trigger_row(tmp_path):
    out = tmp_path / "full"
    assert main(["run", "full", "-n", "2", "--output", str(out), "--no-progress"]) == 0
    table = json.loads((out / "comparison.json").read_text())
    rows = {row["algorithm"]: row for row in table["rows"]}
    assert {
        "ActsCKF [tracks_ckf]",
        "PVFinder [vertices_pvfinder]",
        "ActsAMVF(seeder=gaussian) [vertices_amvf]",
        "AnomalyTrigger [decision]",
    } <= set(rows)
    trigger = rows["AnomalyTrigger [decision]"]
    assert trigger["efficiency"] in (0.0, 0.5, 1.0) and trigger["rate_khz"] is None  # ttbar crossings: no rate
    assert trigger["threshold"] > 0 and trigger["mean_score"] > 0


# -- bad input -----------------------------------------------------------------------------------------------
def test_a_precision_that_overflows_names_the_layer():
    spec = _random_spec(np.random.default_rng(2), "latent", "TRN", "SAT")
    wide = FixedType(32, 16, "TRN", "SAT")
    spec.input = wide
    spec.layers[0] = Layer(n_in=6, n_out=5, weight=FixedType(32, 8, "RND", "SAT"), bias=wide, result=wide, relu=True)
    spec.weights[0] = spec.weights[0] << 20
    with pytest.raises(ValueError, match="layer 0 .* needs .* bits"):
        Emulator(spec, 0)


def test_a_layer_the_converter_cannot_map_is_named():
    spec = _random_spec(np.random.default_rng(4), "latent", "RND", "SAT")
    with pytest.raises(FirmwareError, match="layer 0: result rounding RND"):
        rtl.trace(spec, 0)


def test_missing_compiler_and_simulator_are_errors_not_success(firmware, tmp_path, monkeypatch):
    target = tmp_path / "copy"
    shutil.copytree(firmware, target, symlinks=True)
    (target / "hls4ml" / hls.CSIM).unlink()
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(FirmwareError, match="no C\\+\\+ compiler"):
        hls.run_csim(target / "hls4ml", np.zeros((2, 57), np.int64))
    assert firmware_main(["verify", str(target), "--events", "1000"]) == 1  # an error, never a success
    monkeypatch.delenv("CXX")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(rtl, "_verilator_dirs", list)
    with pytest.raises(FirmwareError, match="no Verilator"):
        rtl._verilator_env()


def test_a_directory_that_is_not_a_firmware_project(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    assert firmware_main(["verify", str(tmp_path / "junk")]) == 1
    assert "not a recotrig firmware directory" in capsys.readouterr().err
    with pytest.raises(FirmwareError, match="not an anomaly-trigger hls4ml project"):
        hls.run_csim(tmp_path / "junk", np.zeros((1, 57), np.int64))
    with pytest.raises(FirmwareError, match="not an anomaly-trigger da4ml project"):
        rtl.load(tmp_path / "junk")
    (tmp_path / "junk" / "other.txt").write_text("x")
    assert firmware_main([MODEL, "-o", str(tmp_path / "junk")]) == 1
    assert "is not a firmware directory" in capsys.readouterr().err
    assert firmware_main(["anomaly-no-such-model", "-o", str(tmp_path / "new")]) == 1
