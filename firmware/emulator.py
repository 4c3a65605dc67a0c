"""The bit-accurate emulator of the anomaly-trigger firmware, and its rate calibration.

The firmware (``firmware/hls.py``, ``firmware/rtl.py``) computes, from the 57 input words, the
integer score of the quantised network (``models.anomaly.fixedpoint.Spec``: input offset and
saturation, products, exact accumulators, bias, truncation, saturation, ReLU, the score sum) and
one decision bit, ``score > threshold``, with the integer threshold written into it. The
emulator is that arithmetic in vectorised numpy (the spec's integer forward pass) plus the
comparison: it needs neither hls4ml nor a compiler, and works on a batch of events at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.edm.trigger import fpr_of_rate, pass_rate, threshold_at_fpr
from recotrig.models import registry
from recotrig.models.anomaly.fixedpoint import Spec
from recotrig.models.cards import AnomalyCard

__all__ = [
    "BACKGROUND_FPR",
    "Emulator",
    "Firmware",
    "FirmwareError",
    "TooFewCrossings",
    "calibrate",
    "card_threshold",
    "load",
]

#: a model whose card has no zero-bias threshold decides at this false-positive rate of its own
#: held-out background (the largest the cards quote)
BACKGROUND_FPR = 1e-3

MANIFEST = "firmware.json"
FORMAT = "recotrig anomaly-trigger firmware, version 1"


class FirmwareError(RuntimeError):
    """A firmware step that cannot be done: names the file, layer or tool."""


@dataclass(frozen=True)
class Emulator:
    """``spec``'s integer score and the decision ``score > threshold`` (the integer score word)."""

    spec: Spec
    threshold: int

    def __post_init__(self) -> None:
        self.spec.check_widths()
        if not 0 <= self.threshold < 2 ** self.spec.score_bits():
            raise ValueError(f"threshold {self.threshold} is outside the {self.spec.score_bits()}-bit score word")

    @property
    def lsb(self) -> float:
        """The value of one unit of the score word."""
        return 2.0**-self.spec.score_fraction_bits

    def words(self, features: np.ndarray) -> np.ndarray:
        """The firmware's input words of float L1 features ``(events, 57)``."""
        return self.spec.hw_words(features)

    def run(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer scores (int64) and decision bits (bool) of input words ``(events, 57)``."""
        score = self.spec.score_words(words)
        return score, score > self.threshold


def card_threshold(card: AnomalyCard, spec: Spec, rate_khz: float, threshold: float | None = None) -> tuple[int, str]:
    """The integer threshold word of a model's decision and a sentence saying where it comes
    from: ``threshold`` (a score) when given; else the card's zero-bias threshold for
    ``rate_khz``; else, when the card has no zero-bias threshold at all (the model's background
    is not zero bias), the threshold at ``BACKGROUND_FPR`` of its held-out background (the
    card's quantised figures). ``FirmwareError`` when the card has zero-bias thresholds but none
    for ``rate_khz``, or nothing to take a threshold from."""
    scale = 2**spec.score_fraction_bits  # score > value  <=>  word > floor(value / lsb)
    if threshold is not None:
        return math.floor(threshold * scale), f"the threshold {threshold:g} given"
    key, thresholds = f"{rate_khz:g}", card.thresholds_khz
    if key in thresholds:
        return math.floor(thresholds[key] * scale), f"the card's threshold for {key} kHz of zero-bias crossings"
    if thresholds:
        raise FirmwareError(
            f"{card.name}: the card has no threshold for {key} kHz (it has "
            f"{', '.join(sorted(thresholds, key=float))} kHz): build at one of those and run "
            "'recotrig firmware calibrate', or give a threshold"
        )
    figures = card.held_out.get("quantised", {})
    points = [row[_fpr_key(BACKGROUND_FPR)] for row in figures.values() if isinstance(row, dict)]
    point = next((p for p in points if p.get("measured")), None)
    if point is None:
        raise FirmwareError(f"{card.name}: the card has neither a zero-bias threshold nor a background one; give one")
    return math.floor(point["threshold"] * scale), (
        f"no zero-bias threshold in the card: FPR {BACKGROUND_FPR:g} of the model's held-out background "
        f"({point['n_background_pass']} of {point['n_background']} events pass), not a rate"
    )


def _fpr_key(fpr: float) -> str:
    """The cards' key of a figure at a false-positive rate (``at_fpr_1e-3``)."""
    mantissa, exponent = f"{fpr:.0e}".split("e")
    return f"at_fpr_{mantissa}e{int(exponent)}"


class TooFewCrossings(ValueError):
    """Too few zero-bias crossings for the rate asked."""


def calibrate(scores: np.ndarray, rate_khz: float, *, replicas: Sequence[int] | None = None) -> dict[str, Any]:
    """The integer threshold at which ``rate_khz`` of the 40 MHz zero-bias crossings pass, from
    the integer scores of zero-bias crossings: the ``floor(fpr * n)``-th largest score (``fpr =
    rate / 40 MHz``), so that at most that many crossings lie above it (ties lower the count);
    with the rate actually reached and its statistical error (``edm.trigger.pass_rate``: of
    independent crossings, or, with ``replicas``, from the spread of independent blocks of
    crossings that share pile-up within a block) and the effective sample size."""
    scores = np.asarray(scores)
    if scores.ndim != 1 or not np.issubdtype(scores.dtype, np.integer):
        raise ValueError("calibration needs one integer score per zero-bias crossing")
    fpr = fpr_of_rate(rate_khz)
    if math.floor(fpr * len(scores) + 1e-9) < 1:
        raise TooFewCrossings(
            f"{len(scores)} zero-bias crossings are too few for {rate_khz:g} kHz "
            f"(FPR {fpr:.2g}): at least {math.ceil(1 / fpr)} are needed"
        )
    threshold, _, n_pass = threshold_at_fpr(scores.astype(np.float64), fpr)
    rate = pass_rate(scores > threshold, replicas)
    return {
        "rate_khz_target": float(rate_khz),
        "threshold": int(threshold),
        "n_zero_bias": len(scores),
        "n_pass": n_pass,
        "rate_khz": rate["rate_khz"],
        "rate_khz_error": rate["rate_khz_error"],
        "n_effective": rate["n_effective"],
        "error_from": "independent crossings" if replicas is None else f"the spread of {len(replicas)} replicas",
    }


@dataclass
class Firmware:
    """A firmware directory as read back: its manifest and the emulator of what it holds."""

    path: Path
    manifest: dict[str, Any]
    emulator: Emulator

    @property
    def model(self) -> str:
        return self.manifest["model"]


def load(path: str | Path) -> Firmware:
    """A firmware directory's manifest and emulator; ``FirmwareError`` naming the file otherwise."""
    path = Path(path)
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        calibration = json.loads((path / "calibration.json").read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}")
    except (OSError, ValueError) as err:
        raise FirmwareError(f"{path}: not a recotrig firmware directory ({manifest_path.name}: {err})") from None
    spec_path = path / "spec.fixed.json"
    if not spec_path.is_file() or registry.sha256(spec_path) != manifest["spec_sha256"]:
        raise FirmwareError(f"{spec_path}: missing or not the spec the firmware was built from")
    return Firmware(path, manifest, Emulator(Spec.load(spec_path), int(calibration["threshold"])))
