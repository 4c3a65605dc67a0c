"""The fixed-point specification of a quantised dense network, its exact integer forward pass
(numpy, the reference the firmware must reproduce bit for bit), and the torch fake-quantisation
used in training.

A type is ``ap_fixed<width, integer>`` (signed; ``integer`` bits include the sign) with a rounding
mode (``TRN``: towards minus infinity, ``RND``: half up) and an overflow mode (``SAT``: clip to
the range, ``WRAP``: two's complement wrap), as in Xilinx's ``ap_fixed``. A value of the type is
an integer ``k`` with value ``k * 2**-(width - integer)``.

The network (``Spec``): a float feature ``x`` becomes the firmware's input word
``u = floor(x * 2**(fraction - shift))`` (per-feature shift; saturated to the ``raw`` type, the
input type with ``RAW_EXTRA_BITS`` more integer bits); the firmware subtracts the per-feature
``offset`` (in input LSBs) and saturates to the input type; each dense layer computes
``sum_j w_ij x_j + b_i`` exactly (products of integers, an accumulator wide enough never to
overflow), casts the sum to its ``result`` type, and applies ReLU where asked (ReLU of a
fixed-point value is exact). The score is ``sum_i y_i**2`` of the last layer's outputs (a VAE
encoder) or ``sum_i (y_i - x_i)**2`` against the quantised inputs (an autoencoder), exact in
integers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FEATURE_DTYPE", "RAW_EXTRA_BITS", "FixedType", "Layer", "Spec", "saturation_report"]

#: the firmware input words have this many more integer bits than the network's input type
RAW_EXTRA_BITS = 10
#: the precision of the float L1 features input words are made from (``edm.trigger.l1_features``,
#: the models' ONNX input): features in any other float type are rounded to it first, so a float64
#: copy of a feature gives the word of its float32 original
FEATURE_DTYPE = np.float32


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
            raise ValueError(
                f"rounding must be TRN or RND and overflow SAT or WRAP, got {self.rounding}, {self.overflow}"
            )

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
        return _cast(np.asarray(x, np.float64) * 2.0**self.fraction, self).astype(np.int64)

    def from_integer(self, k: np.ndarray, fraction: int) -> np.ndarray:
        """Cast integers with ``fraction`` fraction bits to this type (exact shifts, rounding, overflow)."""
        return _cast(np.asarray(k, np.float64) * 2.0 ** (self.fraction - fraction), self).astype(np.int64)

    def to_float(self, k: np.ndarray) -> np.ndarray:
        return np.asarray(k, np.float64) * 2.0**-self.fraction


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
    # Integers are carried in float64 arrays: every value below is an integer times a power of two
    # whose magnitude stays under 2**53 (``check_widths``), so sums, scalings by powers of two and
    # floors are exact and the products run in BLAS. The results are returned as int64.
    @property
    def raw(self) -> FixedType:
        """The type of the firmware's input words: the input type's LSB with ``RAW_EXTRA_BITS``
        more integer bits (an L1 object word in units of ``2**(shift - fraction)``)."""
        return FixedType(self.input.width + RAW_EXTRA_BITS, self.input.integer + RAW_EXTRA_BITS, "TRN", "SAT")

    def hw_words(self, x: np.ndarray) -> np.ndarray:
        """The firmware's input words for float features ``(n, features)``: per feature
        ``floor(x * 2**(fraction - shift))`` of ``x`` in ``FEATURE_DTYPE``, saturated to ``raw`` (int64)."""
        return self._words(x).astype(np.int64)

    def _words(self, x: np.ndarray) -> np.ndarray:
        """``hw_words`` carried in float64 (a new array)."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.shifts):
            raise ValueError(f"expected inputs of shape (events, {len(self.shifts)}), got {x.shape}")
        if not np.isfinite(np.add.reduce(x, axis=None, dtype=np.float64)):  # one pass; the culprit only if needed
            bad = ~np.isfinite(x)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                name = self.feature_names[col] if self.feature_names else f"x{col}"
                raise ValueError(f"input row {row}, feature {name}: {x[row, col]} is not a finite number")
        with np.errstate(over="ignore"):  # beyond float32's range: infinite, then saturated below
            words = x.astype(FEATURE_DTYPE, copy=False).astype(np.float64)
        words *= 2.0 ** (self.input.fraction - np.asarray(self.shifts, np.float64))
        np.floor(words, out=words)
        return np.clip(words, self.raw.lo, self.raw.hi, out=words)

    def layer_values(self, words: np.ndarray) -> Iterator[np.ndarray]:
        """The quantised inputs, then each layer's results (after ReLU), as integers (float64) of
        the layer's type, for input words ``(n, features)``."""
        k = np.asarray(words, np.float64) - np.asarray(self.offsets or 0.0, np.float64)
        k = _cast(k, self.input)
        yield k
        fraction = self.input.fraction
        for layer, w, b in zip(self.layers, self.weights, self.biases):
            acc_fraction = fraction + layer.weight.fraction
            if layer.bias.fraction > acc_fraction:
                raise ValueError(f"layer {layer}: a bias with more fraction bits than the products is not supported")
            drop = acc_fraction - layer.result.fraction  # the products' LSBs below the result's
            acc = k @ (w.T * 2.0**-drop)
            acc += b * 2.0 ** (layer.result.fraction - layer.bias.fraction)
            k = _cast(acc, layer.result, low=0.0 if layer.relu else None)  # ReLU of a saturated value
            fraction = layer.result.fraction
            yield k

    def score_words(self, words: np.ndarray, block: int = 8192) -> np.ndarray:
        """The exact integer score (fraction bits ``score_fraction_bits``) of input words (int64,
        or float64 holding integers), ``block`` events at a time (they stay in cache)."""
        words = np.asarray(words)
        out = np.empty(len(words), np.int64)
        for start in range(0, len(words), block):
            out[start : start + block] = self._score_block(words[start : start + block])
        return out

    def _score_block(self, words: np.ndarray) -> np.ndarray:
        values = list(self.layer_values(words))
        y = values[-1]
        if self.score_kind == "mse":
            common = self._common_fraction
            y = y * 2.0 ** (common - self.layers[-1].result.fraction) - values[0] * 2.0 ** (
                common - self.input.fraction
            )
            if self.score_features and len(self.score_features) != y.shape[1]:
                y = y[:, self.score_features]
        return np.einsum("ij,ij->i", y, y)

    def score_int(self, x: np.ndarray) -> np.ndarray:
        """The exact integer score of float features (``score_words(hw_words(x))``)."""
        return self.score_words(self._words(x))

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

    # -- widths ------------------------------------------------------------------------------------------
    def accumulator_bits(self) -> list[int]:
        """Per layer, the signed width that holds every sum of products plus bias exactly, in the
        products' LSB (the accumulator a firmware needs; all values of the input type assumed)."""
        bits = []
        largest = max(-self.input.lo, self.input.hi)
        fraction = self.input.fraction
        for layer, w, b in zip(self.layers, self.weights, self.biases):
            shift = fraction + layer.weight.fraction - layer.bias.fraction
            bound = int(np.abs(w).sum(axis=1).max()) * largest + int(np.abs(b).max()) * 2**shift
            bits.append(bound.bit_length() + 1)
            largest = max(-layer.result.lo, layer.result.hi) if not layer.relu else layer.result.hi
            fraction = layer.result.fraction
        return bits

    def score_bits(self) -> int:
        """The unsigned width of the score word (its largest value over all inputs)."""
        last = self.layers[-1].result
        if self.score_kind == "mse":
            common = self._common_fraction
            big = (max(-last.lo, last.hi) << (common - last.fraction)) + (
                max(-self.input.lo, self.input.hi) << (common - self.input.fraction)
            )
            n = len(self.score_features) or self.layers[-1].n_out
        else:
            big, n = max(-last.lo, last.hi), self.layers[-1].n_out
        return (n * big * big).bit_length()

    def check_widths(self) -> None:
        """``ValueError`` naming the layer whose exact arithmetic needs more than 53 bits (the
        float64 carrier) or a score word over 62 bits."""
        for i, bits in enumerate(self.accumulator_bits()):
            if bits > 53:
                raise ValueError(
                    f"layer {i} ({self.layers[i].n_in} -> {self.layers[i].n_out}): its exact accumulator "
                    f"needs {bits} bits, more than the 53 the emulator carries; narrow its types"
                )
        if self.score_bits() > 53:
            raise ValueError(
                f"the score word needs {self.score_bits()} bits, more than the 53 the emulator carries; "
                "narrow the last layer's result type"
            )

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
                {
                    **{k: (asdict(v) if isinstance(v, FixedType) else v) for k, v in asdict(layer).items()},
                    "weights": w.astype(int).tolist(),
                    "biases": b.astype(int).tolist(),
                    "hls_types": {"weight": str(layer.weight), "bias": str(layer.bias), "result": str(layer.result)},
                }
                for layer, w, b in zip(self.layers, self.weights, self.biases)
            ],
            "score": {
                "kind": self.score_kind,
                "fraction_bits": self.score_fraction_bits,
                "features": list(map(int, self.score_features)),
                "definition": "latent: sum_i y_i^2 of the last layer; mse: sum_i (y_i - x_i)^2 with x the "
                "quantised inputs, both aligned to the larger fraction; exact integers",
            },
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        layers, weights, biases = [], [], []
        for entry in data["layers"]:
            types = {k: FixedType(**entry[k]) for k in ("weight", "bias", "result")}
            layers.append(Layer(n_in=entry["n_in"], n_out=entry["n_out"], relu=entry["relu"], **types))
            weights.append(np.asarray(entry["weights"], np.int64).reshape(entry["n_out"], entry["n_in"]))
            biases.append(np.asarray(entry["biases"], np.int64).reshape(entry["n_out"]))
        return cls(
            shifts=list(data["input_shifts"]),
            offsets=list(data.get("input_offsets_lsb", [])),
            input=FixedType(**data["input_type"]),
            layers=layers,
            weights=weights,
            biases=biases,
            feature_names=list(data.get("feature_names", [])),
            score_kind=data["score"]["kind"],
            score_features=list(data["score"].get("features", [])),
        )

    @classmethod
    def load(cls, path: str | Path) -> Spec:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a readable fixed-point spec ({err})") from None


def saturation_report(spec: Spec, x: np.ndarray) -> dict[str, float]:
    """Per input feature, the fraction of ``x`` rows that saturate the input type."""
    k = spec.hw_words(x) - np.asarray(spec.offsets or np.zeros(len(spec.shifts)), np.int64)
    fractions = ((k < spec.input.lo) | (k > spec.input.hi)).mean(axis=0)
    names = spec.feature_names or [f"x{i}" for i in range(x.shape[1])]
    return {name: float(f) for name, f in zip(names, fractions)}


def _cast(k: np.ndarray, t: FixedType, low: float | None = None) -> np.ndarray:
    """Values ``k`` (float64, exact multiples of a power of two, in units of ``t``'s LSB) cast in
    place to ``t``: floor (TRN) or half up (RND), then saturation or wrap; then, with ``low``,
    clipped from below (a ReLU). Float64 integers out."""
    if t.rounding == "RND":
        k += 0.5
    np.floor(k, out=k)
    if t.overflow == "SAT":
        return np.clip(k, t.lo if low is None else max(low, t.lo), t.hi, out=k)
    k -= t.lo
    np.mod(k, 2.0**t.width, out=k)
    k += t.lo
    return k if low is None else np.maximum(k, low, out=k)
