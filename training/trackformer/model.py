"""The TrackFormer encoders in torch (training and export only; inference runs the ONNX file).

A hand-written encoder block — linear q/k/v, attention with an additive padding mask (``attention``),
LayerNorm, feed-forward — rather than ``nn.TransformerEncoder``: it exports to ONNX with a dynamic
hit axis (``nn.TransformerEncoder`` bakes the length in) and trains faster on CPU. No positional
encoding: the hits of an event are a set.

Every softmax (the attention's, EncCla's over its classes) first raises the scores more than
``SCORE_SPAN`` below their row's largest to that floor. A weight below e^-87 of the largest is a
denormal float32, which a CPU computes with far more slowly than with normal numbers: a few
per cent of the attention weights of the 200-500 models are denormal on real events, which made
their encoder twice as slow. At the floor a weight is 1.8e-35 of the largest: no output changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SCORE_SPAN", "Encoder", "FactorisedHead", "FactorisedTopK", "TopK", "attention", "softmax"]

#: scores more than this below their row's largest are raised to it before a softmax (above)
SCORE_SPAN = 80.0


def softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, no weight below e^-SCORE_SPAN of the row's largest (no denormals)."""
    return torch.softmax(torch.maximum(scores, scores.amax(-1, keepdim=True) - SCORE_SPAN), dim=-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention (q, k, v: batch, heads, hits, d) through ``softmax``, with ``bias``
    (batch, 1, hits, 1: 0, or -1e9 for a padding key) added to every score of its key. The scale
    goes on the queries and the bias rides in the product as one more column of the keys, against a
    column of ones in the queries: no pass over the hits x hits scores is spent on either (a
    quarter of the encoder's time at 300 tracks, where the windows have no padding at all)."""
    q = torch.cat([q * q.shape[-1] ** -0.5, torch.ones_like(q[..., :1])], dim=-1)
    k = torch.cat([k, bias.expand(-1, k.shape[1], -1, -1)], dim=-1)
    return softmax(q @ k.transpose(-2, -1)) @ v


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
        a = attention(q, k, v, bias)
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
        return self.head(self.features(hits, mask))

    def features(self, hits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """What the head reads: each hit's (batch, n, d) vector after the blocks."""
        bias = ((1.0 - mask) * -1e9)[:, None, :, None]  # padding keys get no attention (``attention``)
        h = self.embed(hits)
        for block in self.blocks:
            h = block(h, bias)
        return self.norm(h)


class TopK(nn.Module):
    """EncCla's exported graph: the encoder's class logits -> softmax -> the ``k`` most probable
    classes per hit (int64) and their probabilities."""

    def __init__(self, encoder: Encoder, k: int):
        super().__init__()
        self.encoder = encoder
        self.k = k

    def forward(self, hits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities, classes = softmax(self.encoder(hits, mask)).topk(self.k, dim=-1)
        return classes, probabilities


class FactorisedHead(nn.Module):
    """EncCla's class posterior as a product of three factors: the phi bin, the theta bin and the
    (p bin, charge) pair of a hit's particle, each a log-softmax over one hidden layer of the
    encoder's features (``bins``: their sizes). Per hit d x width + width x (sum of the bins)
    products, where a joint head over every class takes d x (product of the bins): at 5,400
    classes the joint head was two thirds of EncCla's time."""

    def __init__(self, d: int, width: int, bins: tuple[int, int, int]):
        super().__init__()
        self.bins = bins
        self.hidden = nn.Linear(d, width)
        self.factors = nn.ModuleList(nn.Linear(width, n) for n in bins)

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        h = F.gelu(self.hidden(h))
        return [torch.log_softmax(factor(h), dim=-1) for factor in self.factors]


class FactorisedTopK(nn.Module):
    """EncCla's exported graph with a ``FactorisedHead``: the ``k`` most probable classes per hit
    and their probabilities, as ``TopK`` gives them (class id (i_phi x n_theta + i_theta) x n_pq +
    i_pq, ``models/trackformer/classes.py``). The k most probable products lie among the products
    of each factor's k most probable values (all of a factor's, where it has fewer), so only k^3
    of them are formed."""

    def __init__(self, encoder: Encoder, head: FactorisedHead, k: int):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.k = k

    def forward(self, hits: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _, n_theta, n_pq = self.head.bins
        kp, kt, kq = (min(self.k, n) for n in self.head.bins)
        factors = self.head(self.encoder.features(hits, mask))
        (lp, ip), (lt, it), (lq, iq) = (f.topk(k, dim=-1) for f, k in zip(factors, (kp, kt, kq)))
        joint = (lp[..., :, None, None] + lt[..., None, :, None] + lq[..., None, None, :]).flatten(-3)
        best, index = joint.topk(min(self.k, kp * kt * kq), dim=-1)
        phi, theta, pq = ip.gather(-1, index // (kt * kq)), it.gather(-1, index // kq % kt), iq.gather(-1, index % kq)
        return (phi * n_theta + theta) * n_pq + pq, torch.exp(best)
