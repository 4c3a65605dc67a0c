"""Trigger figures of merit from background and signal scores: ROC AUC, the signal efficiency at
a fixed background rate, and rates in kHz of the LHC crossing rate.

An event passes a threshold when its score is strictly above it. The threshold for a false-positive
rate ``fpr`` on ``N`` background events is the score of the ``floor(fpr * N) + 1``-th highest
background event, so at most ``floor(fpr * N)`` background events pass; with ``floor(fpr * N) = 0``
the figure is not measured (``n_background_pass`` says how many events stand behind each figure).
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from scipy.stats import rankdata

from recotrig.edm import CrossingInfo, TriggerDecision
from recotrig.edm.trigger import CROSSING_RATE_KHZ, PROCESS_CODES, SIGNALS, fpr_of_rate, threshold_at_fpr
from recotrig.framework import Metric, Option
from recotrig.framework.files import write_json
from recotrig.framework.result import RunResult

__all__ = [
    "CROSSING_RATE_KHZ",
    "FPRS",
    "RATES_KHZ",
    "TriggerPerformance",
    "efficiency_at_fpr",
    "fpr_key",
    "fpr_of_rate",
    "roc_auc",
    "roc_curve",
    "score_histograms",
    "score_pairs",
    "trigger_figures",
]

#: the false-positive rates and the zero-bias rates every report quotes
FPRS = (1e-5, 1e-4, 1e-3)
RATES_KHZ = (1.0, 10.0)


def roc_auc(background: np.ndarray, signal: np.ndarray) -> float:
    """Area under the ROC curve: probability that a signal event scores above a background event
    (ties count one half)."""
    b, s = np.asarray(background, np.float64), np.asarray(signal, np.float64)
    if len(b) == 0 or len(s) == 0:
        raise ValueError("the AUC needs background and signal events")
    ranks = rankdata(np.concatenate([b, s]))
    return float((ranks[len(b) :].sum() - len(s) * (len(s) + 1) / 2) / (len(b) * len(s)))


def roc_curve(background: np.ndarray, signal: np.ndarray) -> dict[str, list[float]]:
    """The ROC curve's corners: for each threshold (descending) the fraction of background
    (``fpr``) and of signal (``tpr``) events scoring strictly above it; points on a straight
    stretch between two corners are left out, so the curve is exact and small."""
    b, s = np.sort(np.asarray(background, np.float64)), np.sort(np.asarray(signal, np.float64))
    cuts = np.r_[np.inf, np.unique(np.concatenate([b, s]))[::-1], -np.inf]  # from nothing passing to all
    fpr = 1.0 - np.searchsorted(b, cuts, side="right") / max(len(b), 1)
    tpr = 1.0 - np.searchsorted(s, cuts, side="right") / max(len(s), 1)
    bend = np.r_[True, np.logical_or(np.diff(fpr, 2) != 0, np.diff(tpr, 2) != 0), True]
    return {
        "threshold": [float(c) if np.isfinite(c) else None for c in cuts[bend]],
        "fpr": fpr[bend].tolist(),
        "tpr": tpr[bend].tolist(),
    }


def score_histograms(score: np.ndarray, groups: dict[str, np.ndarray], bins: int = 50) -> dict[str, Any]:
    """Histograms of ``score`` for each group (a boolean mask per name) on common edges."""
    score = np.asarray(score, np.float64)
    edges = np.histogram_bin_edges(score, bins=bins) if len(score) else np.linspace(0.0, 1.0, bins + 1)
    return {
        "edges": edges.tolist(),
        "counts": {name: np.histogram(score[mask], edges)[0].tolist() for name, mask in groups.items()},
    }


def fpr_key(fpr: float) -> str:
    """The report key of an efficiency at a false-positive rate: ``at_fpr_1e-5``."""
    mantissa, exponent = f"{fpr:.0e}".split("e")
    return f"at_fpr_{mantissa}e{int(exponent)}"


def efficiency_at_fpr(background: np.ndarray, signal: np.ndarray, fpr: float) -> dict[str, float]:
    """Signal efficiency at a background false-positive rate ``fpr``: threshold, efficiency, the
    background events passing and the rate they represent (``measured`` false when no background
    event may pass at this sample size)."""
    n = len(background)
    threshold, allowed, n_pass = threshold_at_fpr(background, fpr)
    return {
        "fpr_target": fpr,
        "threshold": threshold,
        "efficiency": float(np.mean(np.asarray(signal) > threshold)) if len(signal) else math.nan,
        "n_background": n,
        "n_background_pass": n_pass,
        "fpr": n_pass / n,
        "measured": allowed > 0,
    }


def trigger_figures(background: np.ndarray, signal: np.ndarray, *, zero_bias: bool) -> dict[str, Any]:
    """AUC and the signal efficiency at each of ``FPRS`` and, against a zero-bias background, at
    each of ``RATES_KHZ`` (keys ``auc``, ``at_fpr_1e-5``, ..., ``at_1_kHz``, ...)."""
    row: dict[str, Any] = {"auc": roc_auc(background, signal)}
    row.update({fpr_key(f): efficiency_at_fpr(background, signal, f) for f in FPRS})
    if zero_bias:
        row.update({f"at_{r:g}_kHz": efficiency_at_fpr(background, signal, fpr_of_rate(r)) for r in RATES_KHZ})
    return row


#: at most this many (float score, integer score word) pairs are kept in trigger.json
SCORE_PAIRS = 2000


def score_pairs(acc: ScoreAccumulator, names: dict[int, str]) -> dict[str, Any]:
    """A sample of the events' float-model scores (``float``) against the scores the decision
    is made on (``decided``: the integer word ``hw`` times its LSB), evenly spread over the run
    (at most ``SCORE_PAIRS``), with their processes, the decision's threshold, and how many events
    of the whole run the float score would decide otherwise."""
    n = len(acc.score)
    pick = np.unique(np.linspace(0, n - 1, min(n, SCORE_PAIRS)).round().astype(np.int64)) if n else []
    score = np.asarray(acc.score, np.float64)
    passed = np.asarray(acc.passed, bool)
    flips = int(np.count_nonzero((score > acc.threshold) != passed)) if not math.isnan(acc.threshold) else None
    return {
        "events": n,
        "float": score[pick].tolist(),
        "decided": np.asarray(acc.decided, np.float64)[pick].tolist(),
        "hw": np.asarray(acc.hw_score, np.int64)[pick].tolist(),
        "process": [names[c] for c in np.asarray(acc.process, np.int64)[pick].tolist()],
        "threshold": acc.threshold,
        "float_decides_otherwise": flips,
    }


class ScoreAccumulator:
    """Per-event scores with their process code, merged in chunk order."""

    def __init__(self) -> None:
        self.process: list[int] = []
        self.score: list[float] = []  #: the float model's
        self.decided: list[float] = []  #: the score the decision compares with the threshold
        self.hw_score: list[int] = []
        self.passed: list[bool] = []
        self.threshold = math.nan  #: the decision's threshold on the float score scale

    def add(
        self,
        process: int,
        score: float,
        hw_score: int,
        passed: bool,
        threshold: float = math.nan,
        decided: float = math.nan,
    ) -> None:
        if not math.isnan(threshold):
            self.threshold = float(threshold)
        self.process.append(int(process))
        self.score.append(float(score))
        self.decided.append(float(decided))
        self.hw_score.append(int(hw_score))
        self.passed.append(bool(passed))

    def merge(self, other: ScoreAccumulator) -> ScoreAccumulator:
        self.process += other.process
        self.score += other.score
        self.decided += other.decided
        self.hw_score += other.hw_score
        self.passed += other.passed
        if not math.isnan(other.threshold):
            self.threshold = other.threshold
        return self


class TriggerCounts:
    """How often a trigger accepted the events of a run, how many of them were zero-bias
    crossings (``CrossingInfo``), and its mean and highest score (mergeable)."""

    def __init__(self) -> None:
        self.events = 0
        self.passed = 0
        self.zero_bias = 0
        self.score_sum = 0.0
        self.score_max = -math.inf
        self.threshold = math.nan

    def add(self, decision: TriggerDecision, crossing: CrossingInfo | None = None) -> None:
        self.events += 1
        self.passed += int(bool(decision.passed[0]))
        self.zero_bias += int(crossing is not None and int(crossing.process[0]) == PROCESS_CODES["zerobias"])
        self.score_sum += float(decision.score[0])
        self.score_max = max(self.score_max, float(decision.score[0]))
        if "threshold" in decision:
            self.threshold = float(decision["threshold"][0])

    def merge(self, other: TriggerCounts) -> TriggerCounts:
        self.events += other.events
        self.passed += other.passed
        self.zero_bias += other.zero_bias
        self.score_sum += other.score_sum
        self.score_max = max(self.score_max, other.score_max)
        if not math.isnan(other.threshold):
            self.threshold = other.threshold
        return self

    def result(self) -> dict[str, Any]:
        """Accepted events, accept fraction, the trigger rate it means at the 40 MHz crossing
        rate with its binomial error (only when every event is a zero-bias crossing; NaN
        otherwise), the mean and highest score, the threshold, and a sentence saying what the
        figures mean on these events (``note``)."""
        n, k = self.events, self.passed
        fraction = k / n if n else math.nan
        rated = n > 0 and self.zero_bias == n
        out: dict[str, Any] = {
            "events": n,
            "accepted": k,
            "accept_fraction": fraction,
            "zero_bias_events": self.zero_bias,
            "rate_khz": fraction * CROSSING_RATE_KHZ if rated else math.nan,
            "rate_khz_error": math.sqrt(max(k, 1)) / n * CROSSING_RATE_KHZ if rated else math.nan,
            "mean_score": self.score_sum / n if n else math.nan,
            "max_score": self.score_max if n else math.nan,
            "threshold": self.threshold,
        }
        if not n:
            out["note"] = "no events"
        elif rated:
            out["note"] = (
                f"{k} of {n} zero-bias crossings accepted: {out['rate_khz']:.3g} ± "
                f"{out['rate_khz_error']:.2g} kHz at 40 MHz"
            )
        else:
            out["note"] = (
                f"{k} of {n} events accepted; the highest score is {out['max_score'] / self.threshold:.2g} "
                "times the threshold. No rate: these are not zero-bias crossings (a rate needs an L1 "
                "zero-bias store, e.g. recotrig run trigger)"
            )
        return out


class TriggerPerformance(Metric):
    """ROC AUC and signal efficiencies of a trigger score per signal process against the
    background processes of the same run (crossings labelled by ``CrossingInfo``); writes
    ``trigger.json`` to ``output`` and prints a table. Efficiencies at FPR 1e-5, 1e-4, 1e-3 and,
    against a zero-bias background, at 1 and 10 kHz; each with the background events behind it; the
    ROC curve per signal (``roc_curve``), the float score's histograms per process with the
    decision's threshold (``scores``) and a sample of (float score, score word) pairs
    (``score_pairs``), so the report draws them from the file. ``hw`` figures are the decision's
    integer score word's, ``float`` the float model's."""

    output = Option("recotrig-out", "directory for trigger.json", role="output")

    def accumulator(self) -> ScoreAccumulator:
        return ScoreAccumulator()

    def execute(self, decision: TriggerDecision, crossing: CrossingInfo) -> None:
        hw = int(decision["hw_score"][0]) if "hw_score" in decision else 0
        threshold = float(decision["threshold"][0]) if "threshold" in decision else math.nan
        float_score = decision.get("float_score", decision.score)
        self.acc.add(
            int(crossing.process[0]),
            float(float_score[0]),
            hw,
            bool(decision.passed[0]),
            threshold,
            decided=float(decision.score[0]),
        )

    def summarise(self, acc: ScoreAccumulator, result: RunResult, producers: dict[str, str]) -> None:
        names = {code: name for name, code in PROCESS_CODES.items()}
        process = np.asarray(acc.process, np.int64)
        signal_codes = {PROCESS_CODES[s] for s in SIGNALS}
        background = ~np.isin(process, list(signal_codes))
        zero_bias = bool(background.any()) and set(process[background].tolist()) == {PROCESS_CODES["zerobias"]}
        if not background.any():
            raise ValueError(f"{self.name}: the run holds no background crossings to compare the signals with")
        report: dict[str, Any] = {
            "n_background": int(background.sum()),
            "background": sorted({names[c] for c in process[background].tolist()}),
            "signals": {},
        }
        lines = [f"{'signal':12s} {'events':>7s} {'AUC hw':>7s} {'AUC float':>9s}  efficiency at FPR 1e-3 (hw)"]
        for code in sorted(signal_codes & set(process.tolist())):
            sel = process == code
            row: dict[str, Any] = {"n_signal": int(sel.sum())}
            for label, values in (("hw", np.asarray(acc.hw_score, np.float64)), ("float", np.asarray(acc.score))):
                row[label] = trigger_figures(values[background], values[sel], zero_bias=zero_bias)
                row[label]["roc"] = roc_curve(values[background], values[sel])  # the report draws it
            report["signals"][names[code]] = row
            at = row["hw"][fpr_key(1e-3)]
            lines.append(
                f"{names[code]:12s} {row['n_signal']:7d} {row['hw']['auc']:7.3f} {row['float']['auc']:9.3f}  "
                f"{at['efficiency']:.3f} ({at['n_background_pass']} of {at['n_background']} background)"
            )
        present = sorted(signal_codes & set(process.tolist()))
        groups = {"background": background, **{names[c]: process == c for c in present}}
        report["scores"] = {"float": score_histograms(np.asarray(acc.score), groups), "threshold": acc.threshold}
        passed = np.asarray(acc.passed, bool)
        n_bg, k_bg = int(background.sum()), int(passed[background].sum())
        report["decision"] = {
            "background_passed": k_bg,
            "background_accept": k_bg / n_bg,
            "rate_khz": k_bg / n_bg * CROSSING_RATE_KHZ if zero_bias else None,
            "signal_accept": {
                names[c]: float(passed[process == c].mean()) for c in sorted(signal_codes & set(process.tolist()))
            },
        }
        rate = (
            f" = {k_bg / n_bg * CROSSING_RATE_KHZ:.3g} ± {math.sqrt(max(k_bg, 1)) / n_bg * CROSSING_RATE_KHZ:.2g} kHz"
            if zero_bias
            else ""
        )
        lines.append(
            f"decisions: {k_bg} of {n_bg} background crossings pass{rate}; signal accepted: "
            + ", ".join(f"{k} {v:.3f}" for k, v in report["decision"]["signal_accept"].items())
        )
        report["score_pairs"] = score_pairs(acc, names)
        self.report = report
        result.add_report("\n".join(lines))
        result.add_trigger(self.name, report)

    def finalize(self) -> None:
        report = getattr(self, "report", None)
        if report is not None:
            write_json(os.path.join(self.output, "trigger.json"), report)
