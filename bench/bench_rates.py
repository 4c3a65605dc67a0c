"""Trigger rates that hold: the zero-bias models' thresholds calibrated on independent pile-up pools
and validated on zero-bias crossings whose pile-up is entirely fresh.

    python bench/bench_rates.py                   # the blocks already made (training.anomaly.rates)
    python bench/bench_rates.py --generate        # first make the missing blocks (hours on one core)
    python bench/bench_rates.py --write-cards     # also write the calibrated thresholds into the cards

Samples (``recotrig.training.anomaly.rates``): ``zerobias-mu60-rates``, replicas of crossings
premixed from independent pools of 100,000 interactions each (the calibration), and
``zerobias-mu60-fresh``, crossings whose every pile-up interaction is used once (the validation).
Per model (the integer score of its fixed-point spec, what the firmware decides on) and rate:

* ``card_before``: the threshold the card holds when the bench starts (before ``--write-cards``;
  the first cards' were set on the held-out million premixed from one pool of 200,000
  interactions), measured on the fresh crossings;
* ``calibrated``: the threshold from all calibration replicas, the rate there with the error from
  the replicas' spread and the effective sample size it means;
* ``validated``: that threshold on the fresh crossings: passing crossings, the rate with its
  binomial (Poisson) error, the expected count at the nominal rate, and the pull
  ``(measured - nominal) / error`` with the error of the validation at the nominal rate and of the
  calibration combined;
* ``repooled`` (a check of the method): the same threshold on crossings premixed from the pools
  of the fresh blocks (``rates.REPOOLED``) beside the fresh crossings of those blocks: premixing
  is unbiased where the two agree, and a calibration that differs from both differs by the
  content of its own pools;
* ``tail_makers``: how many of the crossings above the threshold (fresh, and calibration) hold an
  L1 muon, or a pile-up interaction of more than ``HARD_ET`` summed tower ET; the samples' own
  ``tail_makers`` give the fraction of all their crossings that do and how many such
  interactions their pools hold (these rare interactions make the tail, and a pool holds few);
  ``calibration_distinct``: how many distinct interactions make the calibration crossings above
  the threshold (one replica's crossings whose leading muon, else leading jet, is the same
  object share the pool interaction that made it) and the largest groups;
* ``signal_efficiency``: each signal's efficiency at either threshold on its 20,000 held-out
  crossings (``training.anomaly.dataset.signal``, made and cached if missing);
* ``reuse_scan``: the same from the first 2,500, 5,000, 12,500 and 25,000 crossings of each
  replica, i.e. each pool interaction used about 1.5, 3, 7.5 and 15 times: the design effect
  (crossings / effective sample size) against that reuse;
* ``pool_scan``: the threshold calibrated on the first 1, 2, 4, ... replicas (pools of 100,000,
  200,000, 400,000, ... interactions in all): its rate on the fresh crossings and the
  calibration's effective sample size, which says how large a pool is enough.

Prints one JSON object (``bench/results/rates.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections import Counter

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np
from scipy.stats import poisson

sys.path.insert(0, os.path.dirname(__file__))
from _common import stdout_to_stderr

MODELS = (
    "anomaly-vae-zerobias-mu60",
    "anomaly-ae-zerobias-mu60",
    "anomaly-vae-small-zerobias-mu60",
    "anomaly-student-zerobias-mu60",
)
RATES_KHZ = (1.0, 10.0)
#: a pile-up interaction above this summed tower ET [GeV] is one of the rare hard ones (~3 per million)
HARD_ET = 600.0


def validate(scores: list[np.ndarray], threshold: float, rate_khz: float, calibration_error: float) -> dict:
    """``threshold`` on the fresh crossings against the nominal ``rate_khz``."""
    from recotrig.edm.trigger import CROSSING_RATE_KHZ
    from recotrig.training.anomaly.rates import rate_at

    measured = rate_at(scores, threshold, replicas=False)
    n, k = measured["crossings"], measured["passed"]
    expected = n * rate_khz / CROSSING_RATE_KHZ
    error = math.hypot(math.sqrt(expected) / n * CROSSING_RATE_KHZ, calibration_error)
    p_value = 2 * min(poisson.cdf(k, expected), poisson.sf(k - 1, expected), 0.5)
    return {
        **measured,
        "expected_at_nominal": expected,
        "nominal_error_khz": math.sqrt(expected) / n * CROSSING_RATE_KHZ,
        "pull": (measured["rate_khz"] - rate_khz) / error,
        "poisson_p_value": p_value,
        "within_1_sigma": abs(measured["rate_khz"] - rate_khz) <= error,
        "within_2_sigma": abs(measured["rate_khz"] - rate_khz) <= 2 * error,
    }


def held_out_signals() -> dict[str, np.ndarray]:
    """The L1 features of each signal's held-out crossings (20,000 each, mu = 60)."""
    from recotrig.edm.trigger import SIGNALS
    from recotrig.training.anomaly import dataset

    return {s: np.asarray(dataset.signal("zerobias-mu60", s)[0]) for s in SIGNALS}


def efficiencies(spec, signals: dict[str, np.ndarray], word: int) -> dict:
    """Each signal's fraction above the integer threshold ``word``, with its binomial error."""
    out = {}
    for signal, x in signals.items():
        eff = float(np.mean(spec.score_int(x) > word))
        out[signal] = {"efficiency": eff, "error": math.sqrt(eff * (1 - eff) / len(x)), "crossings": len(x)}
    return out


def tail_makers(sample, blocks: list[int], cached: dict[int, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Per crossing of the blocks: does it hold an L1 muon, does it hold a pile-up interaction of
    more than ``HARD_ET`` summed tower ET; and how many such interactions the blocks' pools hold."""
    from recotrig.edm.trigger import l1_feature_names
    from recotrig.training.anomaly import rates

    column = l1_feature_names().index("muon0_pt")
    hard, pools = [], []
    for b in blocks:
        hardest, pool_et = rates.hardest_interaction_et(sample, b)
        hard.append(hardest > HARD_ET)
        pools.append(pool_et)
    pool_et = np.concatenate(pools)
    holds = {
        "l1_muon": np.concatenate([np.asarray(cached[b][:, column]) > 0 for b in blocks]),
        f"interaction_above_{HARD_ET:g}_gev": np.concatenate(hard),
    }
    summary = {
        f"pool_interactions_above_{HARD_ET:g}_gev": int(np.count_nonzero(pool_et > HARD_ET)),
        **{f"crossings_holding_{k}": float(v.mean()) for k, v in holds.items()},
    }
    return holds, summary


def passing_share(scores: list[np.ndarray], word: int, holds: dict[str, np.ndarray]) -> dict:
    """How many of the crossings above ``word`` hold each tail maker (``tail_makers``)."""
    passed = np.concatenate(scores) > word
    return {"passed": int(passed.sum()), **{k: int((passed & v).sum()) for k, v in holds.items()}}


def distinct_makers(scores: list[np.ndarray], features: list[np.ndarray], word: int) -> dict:
    """How many distinct pile-up interactions make the crossings above ``word``: crossings of one
    replica whose leading L1 muon (else leading jet) has the same (pT, eta, phi) share the
    interaction that made it, reused from the replica's pool."""
    from recotrig.edm.trigger import l1_feature_names

    names = l1_feature_names()
    muon, jet = names.index("muon0_pt"), names.index("jet0_pt")
    makers = []
    for block, (s, x) in enumerate(zip(scores, features)):
        for row in np.asarray(x)[np.asarray(s) > word]:
            first = muon if row[muon] > 0 else jet
            makers.append((block, first, *row[first : first + 3].tolist()))
    counts = sorted(Counter(makers).values(), reverse=True)
    return {"passed": len(makers), "distinct": len(counts), "largest_groups": counts[:3]}


def repooled_check(repooled: dict[int, np.ndarray], fresh: dict[int, np.ndarray], word: int) -> dict:
    """``word`` on the crossings premixed from the fresh blocks' pools and on the fresh crossings
    of the same blocks: both are made of the same interactions."""
    from recotrig.training.anomaly import rates

    blocks = sorted(repooled)
    return {
        "blocks": blocks,
        "premixed_from_fresh_pools": rates.rate_at([repooled[b] for b in blocks], word, replicas=True),
        "fresh_same_blocks": rates.rate_at([fresh[b] for b in blocks], word, replicas=False),
    }


def model_rates(
    name: str,
    calibration: list[np.ndarray],
    fresh: dict[int, np.ndarray],
    repooled: dict[int, np.ndarray],
    holds: dict[str, dict[str, np.ndarray]],
    signals: dict,
) -> dict:
    from recotrig.models import registry
    from recotrig.models.anomaly.fixedpoint import Spec
    from recotrig.training.anomaly import rates

    model = registry.load(name, family="anomaly")
    card = model.typed_card
    spec = Spec.load(model.onnx.parent / card.fixed_point.spec)
    lsb = 2.0**-spec.score_fraction_bits
    cal = [spec.score_int(b) for b in calibration]
    by_block = {b: spec.score_int(x) for b, x in fresh.items()}
    val = list(by_block.values())
    again = {b: spec.score_int(x) for b, x in repooled.items()}
    out: dict = {"score_lsb": lsb}
    for rate in RATES_KHZ:
        key = f"{rate:g}"
        row: dict = {}
        if key in card.thresholds_khz:
            before = math.floor(card.thresholds_khz[key] / lsb)
            row["card_before"] = {
                "threshold_word": before,
                "on_calibration": rates.rate_at(cal, before, replicas=True),
                "on_fresh": validate(val, before, rate, 0.0),
                "signal_efficiency": efficiencies(spec, signals, before),
            }
        try:
            calibrated = rates.calibrate(cal, rate)
        except ValueError as err:  # too few crossings for this rate
            row["calibrated"] = {"not_measured": str(err)}
            out[f"{key}_kHz"] = row
            continue
        row["calibrated"] = {**calibrated, "threshold_value": calibrated["threshold"] * lsb}
        row["validated"] = validate(val, calibrated["threshold"], rate, calibrated["rate_khz_error"])
        row["tail_makers"] = {
            "fresh": passing_share(val, calibrated["threshold"], holds["fresh"]),
            "calibration": passing_share(cal, calibrated["threshold"], holds["calibration"]),
            "calibration_distinct": distinct_makers(cal, calibration, calibrated["threshold"]),
        }
        if again:
            row["repooled"] = repooled_check(again, by_block, calibrated["threshold"])
        row["signal_efficiency"] = efficiencies(spec, signals, calibrated["threshold"])
        scan = []
        for g in sorted({2**i for i in range(len(cal).bit_length()) if 2**i <= len(cal)} | {len(cal)}):
            try:
                point = rates.calibrate(cal[:g], rate)
            except ValueError:  # too few crossings for this rate
                continue
            scan.append(
                {
                    "replicas": g,
                    "interactions": g * rates.CALIBRATION.pool_size,
                    "crossings": point["n_zero_bias"],
                    "threshold_word": point["threshold"],
                    "calibration_error_khz": point["rate_khz_error"],
                    "n_effective": point["n_effective"],
                    "on_fresh": rates.rate_at(val, point["threshold"], replicas=False),
                }
            )
        row["pool_scan"] = scan
        reuse = []
        for n in (2500, 5000, 12_500, rates.CALIBRATION.crossings):
            try:
                point = rates.calibrate([b[:n] for b in cal], rate)
            except ValueError:
                continue
            reuse.append(
                {
                    "crossings_per_replica": n,
                    "reuse": n * rates.CALIBRATION.mu / rates.CALIBRATION.pool_size,
                    "crossings": point["n_zero_bias"],
                    "n_pass": point["n_pass"],
                    "n_effective": point["n_effective"],
                    "design_effect": point["n_zero_bias"] / point["n_effective"] if point["n_effective"] else None,
                }
            )
        row["reuse_scan"] = reuse
        out[f"{key}_kHz"] = row
    return out


def write_cards(results: dict, samples: dict) -> list[str]:
    """The calibrated thresholds into the shipped cards (JSON and Markdown; the ONNX and the
    fixed-point spec are untouched), with how they were calibrated and validated."""
    from recotrig.models import registry

    written = []
    for name, rows in results.items():
        model = registry.load(name, family="anomaly")
        card = dict(model.card)
        card["thresholds_khz"] = {f"{r:g}": rows[f"{r:g}_kHz"]["calibrated"]["threshold_value"] for r in RATES_KHZ}
        card["rate_calibration"] = {
            "calibration": samples["calibration"],
            "validation": samples["validation"],
            "command": "python bench/bench_rates.py --write-cards",
            "rates": {
                f"{r:g}": {
                    "threshold": rows[f"{r:g}_kHz"]["calibrated"]["threshold_value"],
                    "rate_khz_on_calibration": rows[f"{r:g}_kHz"]["calibrated"]["rate_khz"],
                    "calibration_error_khz": rows[f"{r:g}_kHz"]["calibrated"]["rate_khz_error"],
                    "n_effective": rows[f"{r:g}_kHz"]["calibrated"]["n_effective"],
                    "fresh_passed": rows[f"{r:g}_kHz"]["validated"]["passed"],
                    "fresh_crossings": rows[f"{r:g}_kHz"]["validated"]["crossings"],
                    "rate_khz_on_fresh": rows[f"{r:g}_kHz"]["validated"]["rate_khz"],
                    "fresh_error_khz": rows[f"{r:g}_kHz"]["validated"]["rate_khz_error"],
                }
                for r in RATES_KHZ
            },
        }
        registry.write_card(model.onnx, card)
        written.append(registry.card_path(model.onnx).name)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generate", action="store_true", help="make the missing blocks first")
    parser.add_argument("--write-cards", action="store_true", help="write the calibrated thresholds into the cards")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()

    from recotrig.training.anomaly import rates

    t0 = time.perf_counter()
    with stdout_to_stderr():
        if args.generate:
            for sample in (rates.VALIDATION, rates.REPOOLED, rates.CALIBRATION):
                rates.load(sample, range(sample.blocks), progress=lambda text: print(text, file=sys.stderr))
        calibration_blocks = rates.CALIBRATION.cached()
        calibration = rates.load(rates.CALIBRATION, calibration_blocks)
        fresh_blocks = rates.VALIDATION.cached()
        fresh = dict(zip(fresh_blocks, rates.load(rates.VALIDATION, fresh_blocks)))
        repooled_blocks = [b for b in rates.REPOOLED.cached() if b in fresh]
        repooled = dict(zip(repooled_blocks, rates.load(rates.REPOOLED, repooled_blocks)))
    if len(calibration) < 1 or len(fresh) < 1:
        raise SystemExit("no cached blocks: run with --generate first")
    samples = {
        "calibration": {
            "name": rates.CALIBRATION.name,
            "replicas": len(calibration),
            "interactions": len(calibration) * rates.CALIBRATION.pool_size,
            "crossings": int(sum(len(b) for b in calibration)),
            "of_planned": f"{len(calibration)} of {rates.CALIBRATION.blocks} blocks",
        },
        "validation": {
            "name": rates.VALIDATION.name,
            "crossings": int(sum(len(b) for b in fresh.values())),
            "interactions": int(sum(rates.VALIDATION.interactions(b) for b in rates.VALIDATION.cached())),
            "of_planned": f"{len(fresh)} of {rates.VALIDATION.blocks} blocks",
        },
        "repooled": {
            "name": rates.REPOOLED.name,
            "crossings": int(sum(len(b) for b in repooled.values())),
            "of_planned": f"{len(repooled)} of {rates.REPOOLED.blocks} blocks",
        },
    }
    holds = {}
    holds["calibration"], samples["calibration"]["tail_makers"] = tail_makers(
        rates.CALIBRATION, calibration_blocks, dict(zip(calibration_blocks, calibration))
    )
    holds["fresh"], samples["validation"]["tail_makers"] = tail_makers(rates.VALIDATION, fresh_blocks, fresh)
    signals = held_out_signals()
    results = {name: model_rates(name, calibration, fresh, repooled, holds, signals) for name in args.models.split(",")}
    report = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "mu": rates.CALIBRATION.mu,
        "samples": samples,
        "models": results,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.write_cards:
        report["cards_written"] = write_cards(results, samples)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
