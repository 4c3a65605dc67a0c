"""The trigger's rough edges, each as a user meets it: every shipped anomaly model builds (a model
without a zero-bias threshold says which one it takes), a calibration with too few crossings names
the data set that has enough, one input precision for the emulator, decision columns named for
what they are, ``firmware verify``'s event counts and ``--input``, the object kind codes, the
default rate in ``--help``, the trigger row of a run on non-zero-bias events, the pile-up pool's
own progress, and the rates' statistical errors with pile-up shared within replicas.

The hls4ml and da4ml steps are replaced by stand-ins where a test is about what surrounds them
(``no_tools``): the real tools are built and compared bit by bit in ``test_firmware.py``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from recotrig.algorithms.ml.anomaly_trigger import AnomalyTrigger
from recotrig.edm import CrossingInfo, L1Objects, TriggerDecision
from recotrig.edm.trigger import pass_rate
from recotrig.firmware import hls, project, rtl
from recotrig.firmware.emulator import Emulator
from recotrig.metrics.trigger import TriggerCounts
from recotrig.models import registry
from recotrig.models.anomaly.fixedpoint import Spec
from recotrig.sequences.cli import main
from recotrig.sequences.samples import L1_SAMPLE

ANOMALY = [name for name in registry.available() if name.startswith("anomaly-")]
ADC = "anomaly-vae-adc2021-mu20"  # a shipped model whose card has no zero-bias threshold
VAE = "anomaly-vae-zerobias-mu60"


def spec_of(name: str) -> Spec:
    model = registry.load(name, family="anomaly")
    return Spec.load(model.onnx.parent / model.typed_card.fixed_point.spec)


@pytest.fixture
def no_tools(monkeypatch):
    """hls4ml and da4ml replaced by stand-ins that write their reports and answer with the
    emulator (the firmware directory around them is real)."""

    def write_hls(spec, directory, threshold, rate_khz):
        (directory / "firmware").mkdir(parents=True)
        (directory / "firmware" / "anomaly_trigger.h").write_text(hls.trigger_header(spec, threshold, rate_khz))
        return {"tool": "stand-in", "backend": "-", "io_type": "-", "strategy": "-", "not_done": "all"}

    def write_rtl(spec, directory, threshold, clock_mhz):
        directory.mkdir(parents=True)
        return {
            "tool": "stand-in",
            **dict.fromkeys(("lut_estimate", "ff_estimate", "delay_units", "delay_ns_estimate", "latency_ns"), 0),
            "pipeline_stages": 1,
            "clock_mhz": clock_mhz,
            "not_done": "all",
        }

    def simulate(path, words):
        return project.load(Path(path).parent).emulator.run(words)

    monkeypatch.setattr(hls, "write_project", write_hls)
    monkeypatch.setattr(rtl, "write_project", write_rtl)
    monkeypatch.setattr(hls, "build_csim", lambda path: None)
    monkeypatch.setattr(hls, "run_csim", simulate)
    monkeypatch.setattr(rtl, "simulate", simulate)


def one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


# -- every shipped model builds, and says which threshold it took ------------------------------------
@pytest.mark.parametrize("name", ANOMALY)
def test_every_shipped_anomaly_model_builds_and_says_which_threshold(name, tmp_path, no_tools, capsys):
    out = tmp_path / "fw"
    assert main(["firmware", name, "-o", str(out)]) == 0
    calibration = json.loads((out / "calibration.json").read_text())
    card = registry.load(name, family="anomaly").typed_card
    scale = 2 ** spec_of(name).score_fraction_bits
    if card.thresholds_khz:
        assert calibration["threshold"] == math.floor(card.thresholds_khz["10"] * scale)
        assert calibration["rate_khz_target"] == 10.0 and "10 kHz of zero-bias crossings" in calibration["source"]
    else:
        background = card.held_out["quantised"]["ato4l"]["at_fpr_1e-3"]["threshold"]
        assert calibration["threshold"] == math.floor(background * scale)
        assert calibration["rate_khz_target"] is None and "held-out background" in calibration["source"]
    said = capsys.readouterr().out
    assert calibration["source"].startswith(f"{name}: ")
    assert f"threshold: score word > {calibration['threshold']}, {calibration['source']}" in said


def test_a_threshold_given_by_hand_is_built_and_named(tmp_path, no_tools, capsys):
    out = tmp_path / "fw"
    assert main(["firmware", ADC, "-o", str(out), "--threshold", "80.5"]) == 0
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["threshold"] == math.floor(80.5 * 2 ** spec_of(ADC).score_fraction_bits)
    assert calibration["source"] == f"{ADC}: the threshold 80.5 given"
    assert project.load(out).emulator.threshold == calibration["threshold"]
    for bad in ("nan", "-1", "inf"):
        with pytest.raises(SystemExit) as done:
            main(["firmware", ADC, "-o", str(tmp_path / "x"), "--threshold", bad])
        assert done.value.code == 2 and "finite number >= 0" in one_error_line(capsys)
    assert main(["firmware", ADC, "-o", str(tmp_path / "x"), "--threshold", "1e12"]) == 1
    assert "outside the" in one_error_line(capsys) and not (tmp_path / "x").exists()


def test_the_trigger_runs_a_model_without_zero_bias_thresholds():
    trigger = AnomalyTrigger(model=ADC)
    trigger.initialize()
    card = registry.load(ADC, family="anomaly").typed_card
    expected = card.held_out["quantised"]["ato4l"]["at_fpr_1e-3"]["threshold"]
    assert trigger._emulator.threshold == math.floor(expected * 2 ** spec_of(ADC).score_fraction_bits)


# -- a calibration with too few crossings names the data set that has enough ---------------------------
def test_calibrating_1khz_on_the_bundled_sample_names_the_data_set_that_has_enough(tmp_path, no_tools, capsys):
    out = tmp_path / "fw"
    assert main(["firmware", VAE, "-o", str(out)]) == 0
    before = (out / "calibration.json").read_bytes()
    capsys.readouterr()
    assert main(["firmware", "calibrate", str(out), "--rate", "1kHz"]) == 1
    line = one_error_line(capsys)
    assert "the bundled L1 sample: 10000 zero-bias crossings are too few for 1 kHz" in line
    assert "--dataset zerobias-mu60-rates" in line
    assert (out / "calibration.json").read_bytes() == before


# -- one input precision ---------------------------------------------------------------------------------
def test_float64_and_float32_copies_of_the_features_give_the_same_words_and_decisions():
    spec = spec_of(VAE)
    jet0_pt = spec.feature_names.index("jet0_pt")
    assert spec.shifts[jet0_pt] == 3  # input LSB 2**-6 GeV
    x64 = np.zeros((1, 57))
    x64[0, jet0_pt] = 15.1093746  # float32: 15.109375 = 967 / 64 exactly; float64 lies just below
    assert spec.hw_words(x64)[0, jet0_pt] == spec.hw_words(x64.astype(np.float32))[0, jet0_pt] == 967
    rng = np.random.default_rng(4)
    x = np.abs(rng.normal(0.0, 30.0, size=(20_000, 57)))
    words64, words32 = spec.hw_words(x), spec.hw_words(x.astype(np.float32))
    assert np.array_equal(words64, words32)
    emulator = Emulator(spec, int(np.median(spec.score_words(words32))))
    assert np.array_equal(emulator.run(words64)[1], emulator.run(words32)[1])


# -- decision columns named for what they are ----------------------------------------------------------
@pytest.fixture(scope="module")
def trigger_run(tmp_path_factory) -> Path:
    """The trigger sequence on 1,000 zero-bias and 2,000 signal crossings of the bundled sample."""
    out = tmp_path_factory.mktemp("trigger") / "out"
    assert main(["run", "trigger", "-n", "3000", "--skip", "9000", "-o", str(out), "--no-progress"]) == 0
    return out


def test_the_decision_is_on_the_score_column_and_the_float_model_has_its_own(trigger_run):
    import uproot

    with uproot.open(trigger_run / "trigger.root") as f:
        tree = f["decision"]
        names = ("score", "passed", "threshold", "hw_score", "float_score")
        columns = {k: np.concatenate(list(tree[k].array(library="np"))) for k in names}
    score, passed, threshold = columns["score"], columns["passed"], columns["threshold"]
    assert np.array_equal(passed, score > threshold)  # the decision is on `score`
    lsb = 2.0 ** -spec_of(VAE).score_fraction_bits
    assert np.array_equal(score, columns["hw_score"] * lsb)
    differs = (columns["float_score"] > threshold) != passed
    trigger = json.loads((trigger_run / "trigger.json").read_text())
    assert trigger["score_pairs"]["float_decides_otherwise"] == int(differs.sum())
    assert not np.array_equal(columns["float_score"], score)


def test_the_report_draws_the_emulator_score_against_the_float_score(trigger_run):
    from recotrig.report.common import Figure, load_run
    from recotrig.report.trigger import figures

    drawn = {f.name: f for f in figures([load_run(trigger_run, "run")])}
    figure = drawn["trigger_emulator_vs_float"]
    assert isinstance(figure, Figure)
    pairs = json.loads((trigger_run / "trigger.json").read_text())["score_pairs"]
    assert len(pairs["float"]) == len(pairs["hw"]) == 2000 and pairs["events"] == 3000
    assert {"zerobias", "ato4l"} <= set(pairs["process"])
    assert f"would decide {pairs['float_decides_otherwise']} of the run's 3000 events otherwise" in figure.caption


# -- firmware verify: what --events counts, --input as run takes it -------------------------------------
def test_verify_counts_crossings_and_edge_inputs_apart(tmp_path, no_tools, capsys):
    out = tmp_path / "fw"
    assert main(["firmware", VAE, "-o", str(out)]) == 0
    assert main(["firmware", "verify", str(out), "--events", "500", "--edge-events", "100"]) == 0
    result = json.loads((out / "verify.json").read_text())
    assert result["event_sources"] == {"crossings of the bundled L1 sample": 500, "edge inputs": 100}
    assert result["csim"]["events"] == 600
    capsys.readouterr()
    assert main(["firmware", "verify", str(out), "--events", "20000"]) == 0
    said = capsys.readouterr().out
    assert "the bundled L1 sample has 12000 crossings, fewer than --events 20000: verifying on all" in said
    result = json.loads((out / "verify.json").read_text())
    assert result["event_sources"] == {"crossings of the bundled L1 sample": 12_000, "edge inputs": 1000}


def test_verify_input_takes_a_comma_list_as_run_does(tmp_path, no_tools):
    out = tmp_path / "fw"
    assert main(["firmware", VAE, "-o", str(out)]) == 0
    signals = [p for p in L1_SAMPLE.split(",") if "zerobias" not in p][:2]
    assert main(["firmware", "verify", str(out), "--input", ",".join(signals)]) == 0
    result = json.loads((out / "verify.json").read_text())
    assert result["event_sources"] == {f"crossings of {','.join(signals)}": 1000, "edge inputs": 1000}


# -- the object kind codes and the default rate are written down ------------------------------------------
def test_info_shows_what_the_integer_codes_mean(capsys):
    zero_bias = next(p for p in L1_SAMPLE.split(",") if "zerobias" in p)
    assert main(["info", zero_bias]) == 0
    said = capsys.readouterr().out
    assert "l1.kind codes: 0 met, 1 electron, 2 muon, 3 jet" in said
    assert "crossing.process codes: 0 zerobias, 1 minbias, 2 wlnu" in said
    assert main(["info", zero_bias, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["collections"]["l1"]["codes"] == {"kind": L1Objects.KINDS}


def test_firmware_help_gives_the_default_rate(capsys):
    with pytest.raises(SystemExit) as done:
        main(["firmware", "--help"])
    assert done.value.code == 0
    assert "1kHz or 10kHz (default: 10kHz)" in " ".join(capsys.readouterr().out.split())


# -- the trigger row of a run on events that are not zero bias ----------------------------------------------
def test_a_trigger_row_on_non_zero_bias_events_gives_no_rate_and_says_why(tmp_path, capsys):
    out = tmp_path / "full"
    sample = Path(__file__).resolve().parent.parent / "data" / "sample_mu20_ttbar.root"
    assert main(["run", "full", "-n", "1", "--input", str(sample), "-o", str(out), "--no-progress"]) == 0
    said = capsys.readouterr().out
    rows = {row["algorithm"]: row for row in json.loads((out / "comparison.json").read_text())["rows"]}
    trigger = rows["AnomalyTrigger [decision]"]
    assert trigger["rate_khz"] is None and trigger["threshold"] > 0
    assert "AnomalyTrigger [decision]: " in said and "No rate: these are not zero-bias crossings" in said


def test_trigger_counts_give_a_rate_for_zero_bias_crossings_only():
    def decision(passed: bool) -> TriggerDecision:
        return TriggerDecision(score=[2.0 if passed else 0.5], passed=[passed], threshold=[1.0])

    zero_bias = CrossingInfo(process=[0], n_pileup=[60])
    counts = TriggerCounts()
    for i in range(400):
        counts.add(decision(i < 4), zero_bias)
    result = counts.result()
    assert result["rate_khz"] == pytest.approx(400.0) and result["rate_khz_error"] == pytest.approx(200.0)
    assert result["note"].startswith("4 of 400 zero-bias crossings accepted")
    counts.add(decision(False), CrossingInfo(process=[5], n_pileup=[60]))
    assert math.isnan(counts.result()["rate_khz"])
    unlabelled = TriggerCounts()
    unlabelled.add(decision(True))
    assert math.isnan(unlabelled.result()["rate_khz"]) and "not zero-bias" in unlabelled.result()["note"]


# -- the pile-up pool's own progress -------------------------------------------------------------------------
def test_simulate_l1_shows_the_pool_step_as_its_own_progress(tmp_path, monkeypatch, capsys):
    from recotrig.sim.pileup import cache_dir

    cache = tmp_path / "cache"
    cache.mkdir()
    for table in cache_dir().glob("pythia-mpi-*.dat"):  # Pythia's initialisation tables, when made before
        shutil.copy(table, cache)
    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(cache))
    argv = ["simulate-l1", "-o", str(tmp_path / "l1.root"), "--mu", "2", "-n", "20", "--pool-size", "30"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "simulate-l1 pile-up pool (made once, cached)" in captured.err and "30/30" in captured.err
    summary = json.loads(captured.out)
    assert summary["written"] == 20 and summary["pools_s"] > 0
    assert main([*argv[:2], str(tmp_path / "again.root"), *argv[3:]]) == 0
    assert "pile-up pool" not in capsys.readouterr().err  # cached: no pool step


# -- rates with pile-up shared within replicas ---------------------------------------------------------------
def test_the_rate_error_of_replicas_comes_from_their_spread():
    passed = np.zeros(10_000, bool)
    passed[:10] = True  # all ten passing crossings in the first of ten replicas: one shared rare interaction
    independent = pass_rate(passed)
    assert independent["rate_khz"] == pytest.approx(40.0) and independent["n_effective"] == 10_000
    assert independent["rate_khz_error"] == pytest.approx(40.0 / math.sqrt(10))
    shared = pass_rate(passed, [1000] * 10)
    assert shared["fraction_error"] == pytest.approx(1e-3) and shared["n_effective"] == 1000
    spread = np.zeros(10_000, bool)
    spread[::1000] = True  # one in each replica: no more spread than independent crossings
    assert pass_rate(spread, [1000] * 10)["rate_khz_error"] == pass_rate(spread)["rate_khz_error"]
    with pytest.raises(ValueError, match="do not add up"):
        pass_rate(passed, [1000] * 9)


def test_calibrating_on_replicas_takes_the_error_from_their_spread(tmp_path, no_tools, monkeypatch, capsys):
    from recotrig.sequences.firmware_cmd import store_features
    from recotrig.training.anomaly import rates

    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(tmp_path / "cache"))
    sample = rates.RateSample("replicas-test", 60.0, 4, 2500, 20_000, 3000)
    monkeypatch.setitem(rates.SAMPLES, sample.name, sample)
    x, _ = store_features(next(p for p in L1_SAMPLE.split(",") if "zerobias" in p))
    for block in range(sample.blocks):  # the bundled zero-bias crossings as four replicas, already made
        sample.path(block).parent.mkdir(parents=True, exist_ok=True)
        np.save(sample.path(block), x[block * 2500 : (block + 1) * 2500])
    out = tmp_path / "fw"
    assert main(["firmware", VAE, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["firmware", "calibrate", str(out), "--rate", "10kHz", "--dataset", sample.name]) == 0
    assert "error from the spread of 4 replicas" in capsys.readouterr().out
    calibration = json.loads((out / "calibration.json").read_text())
    scores = project.load(out).emulator.spec.score_int(x)
    expected = pass_rate(scores > calibration["threshold"], [2500] * 4)
    assert calibration["rate_khz_error"] == pytest.approx(expected["rate_khz_error"])
    assert calibration["source"] == f"10000 zero-bias crossings of data set {sample.name}"


def test_the_repooled_check_premixes_from_the_fresh_blocks_own_pools(tmp_path, monkeypatch):
    from recotrig.training.anomaly import rates

    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(tmp_path / "cache"))
    fresh = rates.RateSample("fresh-test", 3.0, 2, 40, 0, 3100)
    again = rates.RateSample("repooled-test", 3.0, 2, 60, 0, 3200, pool_of=fresh)
    assert fresh.fresh and not again.fresh
    for block in range(2):
        made, premixed = fresh.dataset(block), again.dataset(block)
        assert made.fresh_pileup and not premixed.fresh_pileup
        assert premixed.pool == made.pool and premixed.n_events == 60 and premixed.seed == 3200 + block
        assert premixed.pool.n_events == made.pileup_needed()  # exactly the interactions the fresh crossings use
    x = rates.load(again, [0])[0]
    assert x.shape == (60, 57)
    pools = [p.name for p in (tmp_path / "cache" / "l1pools").iterdir()]
    assert pools == [fresh.dataset(0).pool.path.name]  # the fresh block's pool, no pool of its own


def test_a_crossings_hardest_pileup_interaction_is_read_from_its_composition(tmp_path, monkeypatch):
    from recotrig.training.anomaly import rates

    monkeypatch.setenv("RECOTRIG_CACHE_DIR", str(tmp_path / "cache"))
    fresh = rates.RateSample("fresh-test", 3.0, 1, 40, 0, 3100)
    ds = fresh.dataset(0)
    n_pu, events, crossing = ds.pileup(0, 40)
    assert n_pu.sum() == len(events) == ds.pool_size and np.array_equal(events, np.arange(ds.pool_size))
    assert np.array_equal(np.bincount(crossing, minlength=40), n_pu)  # each interaction used once, in order
    pool = ds.pool.load()[0]
    et = pool.total_et()
    sums = [
        float(pool.tower_et[pool.tower_offsets[i] : pool.tower_offsets[i + 1]].sum(dtype=np.float64)) for i in range(3)
    ]
    assert et[:3] == pytest.approx(sums)
    hardest, pool_et = rates.hardest_interaction_et(fresh, 0)
    assert np.array_equal(pool_et, et)
    expected = [max(et[events[crossing == i]], default=0.0) for i in range(40)]
    assert hardest == pytest.approx(expected)
