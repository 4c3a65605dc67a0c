"""Toy sequence: straight tracks in a field-free cylinder tracker, truth grouping into tracks,
vertices from the z0 histogram, a per-event summary and the truth-matched comparison table. Needs no input file."""

from __future__ import annotations

import os

from recotrig.algorithms.toy import (
    SummaryWriter,
    ToyReader,
    TruthTracker,
    ZHistogramVertexer,
)
from recotrig.metrics.performance import Performance

DEFAULT_INPUT = None


def build(*, input: str | None, output: str) -> list:
    if input is not None:
        raise ValueError("the toy sequence makes its own events and takes no --input")
    return [
        ToyReader(),
        TruthTracker(),
        ZHistogramVertexer(),
        SummaryWriter(path=os.path.join(output, "summary.json")),
        Performance(tracks=["tracks"], vertices=["vertices"], output=output, min_hits=3),
    ]
