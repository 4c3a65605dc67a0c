"""The fixed-point specification of a quantised dense network, its exact integer forward pass
(numpy, the reference the firmware must reproduce bit for bit), and the torch fake-quantisation
used in training.

A type is ``ap_fixed<width, integer>`` (signed; ``integer`` bits include the sign) with a rounding
mode (``TRN``: towards minus infinity, ``RND``: half up) and an overflow mode (``SAT``: clip to
the range, ``WRAP``: two's complement wrap), as in Xilinx's ``ap_fixed``. A value of the type is
an integer ``k`` with value ``k * 2**-(width - integer)``.

The network (``Spec``): inputs ``x`` (float) are scaled per feature by ``2**-shift``, an offset
of ``offset`` input LSBs is subtracted (exact: the offset is on the input grid) and the result is
cast to the input type; each dense layer computes ``sum_j w_ij x_j + b_i`` exactly (products of integers,
an accumulator wide enough never to overflow), casts the sum to its ``result`` type, and applies
ReLU where asked (ReLU of a fixed-point value is exact). The score is ``sum_i y_i**2`` of the last
layer's outputs (a VAE encoder) or ``sum_i (y_i - x_i)**2`` against the quantised inputs (an
autoencoder), exact in integers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FixedType", "Layer", "Spec", "saturation_report"]


@dataclass(frozen=True)
class FixedType:
    width: int
    integer: int
    rounding: str = "TRN"
    overflow: str = "SAT"

    def __post_init__(self) -> None:
        if not 1 <= self.width <= 32 or not -8 <= self.integer <= self.width:
            raise ValueError(f"ap_fixed<{self.width},{self.integer}> is outside the supported widths")
        if self.rounding not in ("TRN", "RND") or self.overflow not in ("SAT", "WRAP"):
            raise ValueError(f"rounding must be TRN or RND and overflow SAT or WRAP, got {self.rounding}, {self.overflow}")

    @property
    def fraction(self) -> int:
        return self.width - self.integer

    @property
    def lo(self) -> int:
        return -(1 << (self.width - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.width - 1)) - 1

    def __str__(self) -> str:
        return f"ap_fixed<{self.width},{self.integer},AP_{self.rounding},AP_{self.overflow}>"

    # -- exact integer semantics -------------------------------------------------------------------
    def from_float(self, x: np.ndarray) -> np.ndarray:
        """Integers of the type for float values (rounding, then overflow)."""
        scaled = np.asarray(x, np.float64) * 2.0**self.fraction
        k = np.floor(scaled + (0.5 if self.rounding == "RND" else 0.0))
        return self._overflow(k.astype(np.int64))

    def from_integer(self, k: np.ndarray, fraction: int) -> np.ndarray:
        """Cast integers with ``fraction`` fraction bits to this type (exact shifts, rounding, overflow)."""
        k = np.asarray(k, np.int64)
        shift = fraction - self.fraction
        if shift > 0:
            if self.rounding == "RND":
                k = k + (np.int64(1) << np.int64(shift - 1))
            k = k >> np.int64(shift)  # arithmetic shift: floor
        elif shift < 0:
            k = k << np.int64(-shift)
        return self._overflow(k)

    def _overflow(self, k: np.ndarray) -> np.ndarray:
        if self.overflow == "SAT":
            return np.clip(k, self.lo, self.hi)
        span = np.int64(1) << np.int64(self.width)
        return ((k - self.lo) % span) + self.lo

    def to_float(self, k: np.ndarray) -> np.ndarray:
        return np.asarray(k, np.float64) * 2.0**-self.fraction

    def saturates(self, x: np.ndarray) -> np.ndarray:
        """Which float values lie outside the type's range (before rounding)."""
        scaled = np.floor(np.asarray(x, np.float64) * 2.0**self.fraction)
        return (scaled < self.lo) | (scaled > self.hi)


@dataclass(frozen=True)
class Layer:
    """A dense layer: ``n_in`` -> ``n_out``, weight/bias/result types, ReLU or not."""

    n_in: int
    n_out: int
    weight: FixedType
    bias: FixedType
    result: FixedType
    relu: bool


@dataclass
class Spec:
    """The quantised network: input shifts and type, layers (types and integer weights)."""

    shifts: list[int]
    input: FixedType
    layers: list[Layer]
    offsets: list[int] = field(default_factory=list)  # per feature, in input LSBs (empty: none)
    weights: list[np.ndarray] = field(default_factory=list)  # integer (n_out, n_in) per layer
    biases: list[np.ndarray] = field(default_factory=list)  # integer (n_out,) per layer
    feature_names: list[str] = field(default_factory=list)
    #: "latent": sum of squares of the last layer's outputs (a VAE encoder's mu);
    #: "mse": sum of squared differences between the last outputs and the quantised inputs (an AE)
    score_kind: str = "latent"
    #: for "mse": the features whose squared differences are summed (empty: all)
    score_features: list[int] = field(default_factory=list)

    # -- integer forward ---------------------------------------------------------------------------------
    def scaled_inputs(self, x: np.ndarray) -> np.ndarray:
        """``x * 2**-shift - offset``: exact in float64 (powers of two and grid values)."""
        x = np.asarray(x, np.float64) * 2.0 ** -np.asarray(self.shifts, np.float64)
        if self.offsets:
            x = x - np.asarray(self.offsets, np.float64) * 2.0**-self.input.fraction
        return x

    def quantise_inputs(self, x: np.ndarray) -> np.ndarray:
        return self.input.from_float(self.scaled_inputs(x))

    def forward_int(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """Integer outputs of the last layer and their fraction bits, for float inputs (n, features)."""
        k = self.quantise_inputs(x)
        fraction = self.input.fraction
        for layer, w, b in zip(self.layers, self.weights, self.biases):
            acc = k @ w.T.astype(np.int64)  # exact: fraction bits = fraction + weight fraction
            acc_fraction = fraction + layer.weight.fraction
            shift = acc_fraction - layer.bias.fraction
            acc = acc + (b.astype(np.int64) << np.int64(shift)) if shift >= 0 else None
            if acc is None:
                raise ValueError("bias with more fraction bits than the products is not supported")
            k = layer.result.from_integer(acc, acc_fraction)
            if layer.relu:
                k = np.maximum(k, 0)
            fraction = layer.result.fraction
        return k, fraction

    def score_int(self, x: np.ndarray) -> np.ndarray:
        """The exact integer score word (fraction bits ``score_fraction_bits``)."""
        k, fraction = self.forward_int(x)
        if self.score_kind == "mse":
            common = self._common_fraction
            k = (k << np.int64(common - fraction)) - (self.quantise_inputs(x) << np.int64(common - self.input.fraction))
            if self.score_features:
                k = k[:, self.score_features]
        return (k * k).sum(axis=1)

    @property
    def _common_fraction(self) -> int:
        return max(self.input.fraction, self.layers[-1].result.fraction)

    @property
    def score_fraction_bits(self) -> int:
        if self.score_kind == "mse":
            return 2 * self._common_fraction
        return 2 * self.layers[-1].result.fraction

    def score(self, x: np.ndarray) -> np.ndarray:
        """The score as a float (exactly the integer word times its LSB)."""
        return self.score_int(x) * 2.0**-self.score_fraction_bits

    # -- (de)serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "recotrig fixed-point dense network, version 1",
            "semantics": __doc__.strip().split("\n\n", 1)[1],
            "feature_names": self.feature_names,
            "input_shifts": list(map(int, self.shifts)),
            "input_offsets_lsb": list(map(int, self.offsets)),
            "input_type": asdict(self.input),
            "layers": [
                {**{k: (asdict(v) if isinstance(v, FixedType) else v) for k, v in asdict(layer).items()},
                 "weights": w.astype(int).tolist(), "biases": b.astype(int).tolist(),
                 "hls_types": {"weight": str(layer.weight), "bias": str(layer.bias), "result": str(layer.result)}}
                for layer, w, b in zip(self.layers, self.weights, self.biases)
            ],
            "score": {"kind": self.score_kind, "fraction_bits": self.score_fraction_bits,
                      "features": list(map(int, self.score_features)),
                      "definition": "latent: sum_i y_i^2 of the last layer; mse: sum_i (y_i - x_i)^2 with x the "
                                    "quantised inputs, both aligned to the larger fraction; exact integers"},
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Spec":
        layers, weights, biases = [], [], []
        for entry in data["layers"]:
            types = {k: FixedType(**entry[k]) for k in ("weight", "bias", "result")}
            layers.append(Layer(n_in=entry["n_in"], n_out=entry["n_out"], relu=entry["relu"], **types))
            weights.append(np.asarray(entry["weights"], np.int64).reshape(entry["n_out"], entry["n_in"]))
            biases.append(np.asarray(entry["biases"], np.int64).reshape(entry["n_out"]))
        return cls(shifts=list(data["input_shifts"]), offsets=list(data.get("input_offsets_lsb", [])),
                   input=FixedType(**data["input_type"]), layers=layers,
                   weights=weights, biases=biases, feature_names=list(data.get("feature_names", [])),
                   score_kind=data["score"]["kind"], score_features=list(data["score"].get("features", [])))

    @classmethod
    def load(cls, path: str | Path) -> "Spec":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a readable fixed-point spec ({err})") from None


def saturation_report(spec: Spec, x: np.ndarray) -> dict[str, float]:
    """Per input feature, the fraction of ``x`` rows that saturate the input type."""
    fractions = spec.input.saturates(spec.scaled_inputs(x)).mean(axis=0)
    names = spec.feature_names or [f"x{i}" for i in range(x.shape[1])]
    return {name: float(f) for name, f in zip(names, fractions)}
