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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recotrig.edm.trigger import CROSSING_RATE_KHZ, fpr_of_rate, threshold_at_fpr
from recotrig.models import registry
from recotrig.models.anomaly.fixedpoint import Spec

__all__ = ["Emulator", "Firmware", "FirmwareError", "calibrate", "load"]

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


def calibrate(scores: np.ndarray, rate_khz: float) -> dict[str, float | int]:
    """The integer threshold at which ``rate_khz`` of the 40 MHz zero-bias crossings pass, from
    the integer scores of zero-bias crossings: the ``floor(fpr * n)``-th largest score (``fpr =
    rate / 40 MHz``), so that at most that many crossings lie above it (ties lower the count);
    with the rate actually reached and its binomial uncertainty."""
    scores = np.asarray(scores)
    if scores.ndim != 1 or not np.issubdtype(scores.dtype, np.integer):
        raise ValueError("calibration needs one integer score per zero-bias crossing")
    fpr = fpr_of_rate(rate_khz)
    if math.floor(fpr * len(scores) + 1e-9) < 1:
        raise ValueError(
            f"{len(scores)} zero-bias crossings are too few for {rate_khz:g} kHz "
            f"(FPR {fpr:.2g}): at least {math.ceil(1 / fpr)} are needed"
        )
    threshold, _, n_pass = threshold_at_fpr(scores.astype(np.float64), fpr)
    return {
        "rate_khz_target": float(rate_khz),
        "threshold": int(threshold),
        "n_zero_bias": len(scores),
        "n_pass": n_pass,
        "rate_khz": n_pass / len(scores) * CROSSING_RATE_KHZ,
        "rate_khz_error": math.sqrt(max(n_pass, 1)) / len(scores) * CROSSING_RATE_KHZ,
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
