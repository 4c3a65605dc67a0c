"""PV-Finder's KDE-to-hist UNet, in torch, sized for a 2-core CPU.

Input: the raw KDE, (batch, 4, bins) with channels kde_a, kde_b [mm^-2, mm^-4], xmax, ymax [mm];
the model itself takes log1p of the densities (divided by 4) and scales x, y by 1/xy_scale, so the ONNX file
reads what ``KDEBuilder`` writes. Output: (batch, bins), the predicted vertex-density histogram
(softplus, >= 0). bins must be a multiple of 2^depth.

Encoder: per level two 1-D convolutions with ReLU, then max-pooling by 2; decoder: upsampling
by 2 (nearest), concatenation with the encoder level (skip connection), two convolutions; a
last convolution to one channel and softplus.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet", "asymmetric_loss"]


def _block(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=pad),
        nn.LeakyReLU(0.01),
        nn.Conv1d(c_out, c_out, kernel, padding=pad),
        nn.LeakyReLU(0.01),
    )


class UNet(nn.Module):
    def __init__(
        self, channels: tuple[int, ...] = (16, 32, 64), kernels: tuple[int, ...] = (9, 7, 5), xy_scale: float = 0.05
    ):
        super().__init__()
        if len(channels) != len(kernels):
            raise ValueError("one kernel size per level")
        self.depth = len(channels)
        self.xy_scale = xy_scale
        self.down = nn.ModuleList()
        c_prev = 4
        for c, k in zip(channels, kernels):
            self.down.append(_block(c_prev, c, k))
            c_prev = c
        self.bottom = _block(c_prev, c_prev, kernels[-1])
        self.up = nn.ModuleList()
        for c, k in zip(reversed(channels), reversed(kernels)):
            self.up.append(_block(c_prev + c, c, k))
            c_prev = c
        self.head = nn.Conv1d(c_prev, 1, 5, padding=2)
        # start from a flat prediction near the mean target density (about 0.01 per bin) with small
        # head weights: a large initial output makes the first steps push the pre-activations far
        # below zero, where softplus has no gradient left and the network never recovers
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.constant_(self.head.bias, -4.6)
        self.pool = nn.MaxPool1d(2)

    def forward(self, kde: torch.Tensor) -> torch.Tensor:
        x = torch.cat([torch.log1p(kde[:, 0:2].clamp(min=0.0)) / 4.0, kde[:, 2:4] / self.xy_scale], dim=1)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = torch.repeat_interleave(x, 2, dim=2)
            x = block(torch.cat([x, skip], dim=1))
        return nn.functional.softplus(self.head(x)[:, 0])


def asymmetric_loss(
    prediction: torch.Tensor, target: torch.Tensor, *, asymmetry: float = 2.5, epsilon: float = 1e-3
) -> torch.Tensor:
    """PV-Finder's cost: with r = (x + eps) / (y + eps), the symmetric -log(2r / (1 + r^2)) (zero
    at r = 1, growing as |log r|), times (1 + asymmetry * exp(-r)), which weighs predicting too
    little (r < 1: a missed vertex) above predicting too much (a false positive): the knob between
    efficiency and false positives. Mean over bins and events."""
    r = (prediction + epsilon) / (target + epsilon)
    cost = -torch.log(2 * r / (1 + r * r))
    return (cost * (1 + asymmetry * torch.exp(-r))).mean()
