"""TrackFormerFinder: transformer hit-to-track assignment (TrackFormers, Caron et al., EPJC 85, 460).

EncReg: the encoder regresses [theta, sin phi, cos phi, q] of each hit's particle from the hits'
(x, y, z) alone; HDBSCAN groups the hits in that space, one cluster per track. The model is an
ONNX file with its card (``recotrig models``): features, normalisation, the clustering parameters
tuned on validation data and the largest event the model may take all come from the card, which
is checked at ``initialize``.
"""

from __future__ import annotations

import numpy as np

from ...edm import Hits, Tracks
from ...framework import Option
from ...models.runtime import Session
from ...models.trackformer.tracks import cluster
from .base import ModelAlgorithm

FEATURES = ["x", "y", "z"]


class TrackFormerFinder(ModelAlgorithm):
    """Finds tracks in a hit collection with a TrackFormer model (ONNX) and HDBSCAN."""

    requires = ("onnxruntime", "scikit-learn")
    family = "trackformer"
    outputs = ("tracks",)
    model = Option("trackformer-encreg-10-50", "a shipped model's name, or the path of an .onnx file (card beside it)",
                   role="model")
    threads = Option(1, "ONNX Runtime intra-op threads (never more than the process's thread budget)", low=1,
                     high=64)
    min_cluster_size = Option(0, "HDBSCAN min_cluster_size (0: the card's tuned value)", low=0)
    min_samples = Option(0, "HDBSCAN min_samples (0: the card's tuned value)", low=0)

    def initialize(self) -> None:
        model = self.load_model(features=FEATURES, kind="encreg")
        card = model.card
        norm = card["normalisation"]
        self._mean = np.asarray(norm["features_mean"], np.float32)
        self._std = np.asarray(norm["features_std"], np.float32)
        self._params = {"min_cluster_size": self.min_cluster_size or int(card["clustering"]["min_cluster_size"]),
                        "min_samples": self.min_samples or int(card["clustering"]["min_samples"])}
        self._max_hits = int(card["max_hits"])
        self._path = model.onnx
        self._session = Session(model.onnx, threads=min(self.threads, self.context.threads))

    def execute(self, hits: Hits) -> Tracks:
        n = len(hits)
        if n == 0:
            return Tracks(hit_ids=[])
        if n > self._max_hits:
            raise ValueError(f"{self.name}: {n} hits exceed the {self._max_hits} that model {self._path.name} takes "
                             "(its card's max_hits); reduce the event (HitReader.tracks_per_event)")
        x = np.stack([np.asarray(hits[c], np.float32) for c in FEATURES], axis=1)
        x = ((x - self._mean) / self._std)[None]
        prediction = self._session.run(hits=x, mask=np.ones((1, n), np.float32))["output"][0]
        groups = cluster(prediction, np.asarray(hits.hit_id), **self._params)
        return Tracks(hit_ids=[g.tolist() for g in groups])
