"""The TrackFormer encoders in torch (training and export only; inference runs the ONNX file).

A hand-written encoder block — linear q/k/v, ``scaled_dot_product_attention`` with an additive
padding mask, LayerNorm, feed-forward — rather than ``nn.TransformerEncoder``: it exports to ONNX
with a dynamic hit axis (``nn.TransformerEncoder`` bakes the length in) and trains faster on CPU.
No positional encoding: the hits of an event are a set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Encoder", "TopK"]


class Block(nn.Module):
    def __init__(self, d: int, heads: int, ff: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, ff)
        self.ff2 = nn.Linear(ff, d)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, n, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).chunk(3, dim=-1)
        shape = (b, n, self.heads, d // self.heads)
        q, k, v = (t.reshape(shape).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        h = h + self.out(a.transpose(1, 2).reshape(b, n, d))
        return h + self.ff2(F.gelu(self.ff1(self.ln2(h))))


class Encoder(nn.Module):
    """hits (batch, n, features) and mask (batch, n; 1 = hit, 0 = padding) -> (batch, n, outputs)."""

    def __init__(
        self, *, features: int = 3, outputs: int = 4, d: int = 64, layers: int = 4, heads: int = 4, ff: int = 128
    ):
        super().__init__()
        self.embed = nn.Linear(features, d)
        self.blocks = nn.ModuleList(Block(d, heads, ff) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, outputs)

    def forward(self, hits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]  # padding keys get no attention
        h = self.embed(hits)
        for block in self.blocks:
            h = block(h, bias)
        return self.head(self.norm(h))


class TopK(nn.Module):
    """EncCla's exported graph: the encoder's class logits -> softmax -> the ``k`` most probable
    classes per hit (int64) and their probabilities."""

    def __init__(self, encoder: Encoder, k: int):
        super().__init__()
        self.encoder = encoder
        self.k = k

    def forward(self, hits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities, classes = torch.softmax(self.encoder(hits, mask), dim=-1).topk(self.k, dim=-1)
        return classes, probabilities
