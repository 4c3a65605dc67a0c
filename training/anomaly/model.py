"""Dense autoencoder and VAE for the L1 anomaly score, with quantisation-aware training.

``AnomalyNet(kind="vae")``: encoder 57 -> 32 -> 16 -> mu (8) and a log-variance head; decoder
8 -> 16 -> 32 -> 57, used in training only. The L1 score is the encoder's ``sum mu**2``
(AXOL1TL's), so the firmware holds the encoder alone.
``AnomalyNet(kind="ae")``: the same shapes without the variance head; the score is the squared
reconstruction error, so the firmware holds encoder and decoder.
``AnomalyNet(kind="student")``: an encoder alone (e.g. 57 -> 16 -> 1) whose ``sum y**2`` is
trained to reproduce a teacher's score (distillation, CICADA's approach): the teacher's physics in
firmware the size of a small encoder, with the VAE's score kind.

Quantisation: the layers that go to firmware are ``QDense``: with ``quantised`` on, weights,
biases and outputs are rounded onto their ``FixedType`` grids in the forward pass (fake
quantisation; gradients pass straight through), and the inputs are cast onto the input type
after their per-feature shifts. ``to_spec`` exports those layers as integers into a
``fixedpoint.Spec`` whose exact integer forward pass is what the quantised figures use.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from recotrig.models.anomaly.fixedpoint import FixedType, Layer, Spec

__all__ = ["AnomalyNet", "QDense", "fake_quant"]


def fake_quant(x: torch.Tensor, t: FixedType) -> torch.Tensor:
    """``x`` rounded onto the grid of ``t`` (saturating), with a straight-through gradient."""
    scale = float(2**t.fraction)
    k = torch.floor(x * scale + (0.5 if t.rounding == "RND" else 0.0))
    k = torch.clamp(k, t.lo, t.hi)
    return x + (k / scale - x).detach()


class QDense(nn.Linear):
    """A dense layer with fixed-point weight, bias and result types (used when ``quantised``)."""

    def __init__(self, n_in: int, n_out: int, *, weight: FixedType, bias: FixedType, result: FixedType, relu: bool):
        super().__init__(n_in, n_out)
        self.types = {"weight": weight, "bias": bias, "result": result}
        self.relu = relu
        self.quantised = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quantised:
            w, b = fake_quant(self.weight, self.types["weight"]), fake_quant(self.bias, self.types["bias"])
            y = fake_quant(nn.functional.linear(x, w, b), self.types["result"])
        else:
            y = nn.functional.linear(x, self.weight, self.bias)
        return torch.relu(y) if self.relu else y

    def layer(self) -> Layer:
        return Layer(n_in=self.in_features, n_out=self.out_features, relu=self.relu, **self.types)


class AnomalyNet(nn.Module):
    """See the module docstring. ``shifts``: per-feature input shifts (inputs times 2**-shift);
    ``offsets``: per feature, subtracted after the shift, in input LSBs."""

    def __init__(
        self,
        *,
        kind: str,
        shifts: np.ndarray,
        offsets: np.ndarray | None = None,
        sizes: tuple[int, ...] = (57, 32, 16, 8),
        input_type: FixedType,
        weight: FixedType,
        bias: FixedType,
        result: FixedType,
        feature_names: list[str] | None = None,
        score_features: list[int] | None = None,
    ):
        super().__init__()
        if kind not in ("ae", "vae", "student"):
            raise ValueError(f"kind must be 'ae', 'vae' or 'student', got {kind!r}")
        self.kind = kind
        self.input_type = input_type
        self.feature_names = list(feature_names or [])
        self.register_buffer("scale", torch.tensor(2.0 ** -np.asarray(shifts, np.float64), dtype=torch.float32))
        self.shifts = [int(s) for s in shifts]
        self.offsets = [int(o) for o in (offsets if offsets is not None else np.zeros(len(shifts), int))]
        self.register_buffer(
            "offset",
            torch.tensor(np.asarray(self.offsets, np.float64) * 2.0**-input_type.fraction, dtype=torch.float32),
        )
        types = {"weight": weight, "bias": bias, "result": result}
        dims = list(sizes)
        n = len(dims) - 1
        self.encoder = nn.ModuleList(QDense(dims[i], dims[i + 1], relu=i < n - 1, **types) for i in range(n))
        back = dims[::-1]
        quantise_decoder = kind == "ae"
        self.decoder = nn.ModuleList(
            QDense(back[i], back[i + 1], relu=i < n - 1, **types)
            if quantise_decoder
            else _Dense(back[i], back[i + 1], relu=i < n - 1)
            for i in range(n if kind != "student" else 0)
        )
        self.logvar = nn.Linear(dims[-2], dims[-1]) if kind == "vae" else None
        self.quantised = False
        # the AE's reconstruction error (loss and score) sums over these features only
        self.score_features = list(score_features) if score_features is not None else list(range(dims[0]))
        mask = np.zeros(dims[0], np.float32)
        mask[self.score_features] = 1.0
        self.register_buffer("score_mask", torch.from_numpy(mask))

    def set_quantised(self, on: bool) -> None:
        self.quantised = on
        for m in self.modules():
            if isinstance(m, QDense):
                m.quantised = on

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale - self.offset
        return fake_quant(x, self.input_type) if self.quantised else x

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw features in; scaled inputs, latent mu (and log-variance), reconstruction, score out."""
        h = self._inputs(x)
        inputs = h
        for i, layer in enumerate(self.encoder):
            if i == len(self.encoder) - 1:
                hidden = h
            h = layer(h)
        mu = h
        out = {"inputs": inputs, "mu": mu}
        z = mu
        if self.logvar is not None:
            logvar = self.logvar(hidden).clamp(-10, 10)
            out["logvar"] = logvar
            if self.training:
                z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        for layer in self.decoder:
            z = layer(z)
        out["reco"] = z
        if self.kind != "ae":
            out["score"] = (mu**2).sum(dim=1)
        else:
            out["score"] = (((z - inputs) ** 2) * self.score_mask).sum(dim=1)
        return out

    def to_spec(self) -> Spec:
        """The quantised firmware part (the encoder, and for the AE the decoder too) as integers."""
        layers = list(self.encoder) + (list(self.decoder) if self.kind == "ae" else [])
        weights, biases = [], []
        for m in layers:
            weights.append(m.types["weight"].from_float(m.weight.detach().double().numpy()))
            biases.append(m.types["bias"].from_float(m.bias.detach().double().numpy()))
        return Spec(
            shifts=self.shifts,
            offsets=self.offsets,
            input=self.input_type,
            layers=[m.layer() for m in layers],
            weights=weights,
            biases=biases,
            feature_names=self.feature_names,
            score_kind="mse" if self.kind == "ae" else "latent",
            score_features=self.score_features,
        )


class _Dense(nn.Linear):
    def __init__(self, n_in: int, n_out: int, *, relu: bool):
        super().__init__(n_in, n_out)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return torch.relu(y) if self.relu else y


class ScoreModel(nn.Module):
    """The exported graph: raw 57 features -> score (float model, fake-quantisation off)."""

    def __init__(self, net: AnomalyNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["score"]
