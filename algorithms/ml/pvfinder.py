"""PVFinder: primary vertices from PV-Finder's KDE with a UNet (KDE-to-hist) and a peak finder,
and a probabilistic assignment of the tracks to them.

1. The ONNX UNet (``recotrig train pvfinder``) turns the ``KDE`` of an event into a predicted
   vertex-density histogram over the same z bins; the card holds the binning the model was
   trained on, and a KDE of another binning is refused.
2. ``peaks.find_peaks`` gives each vertex's z (weighted mean over the peak) and sigma_z (the
   peak's spread); x and y are the KDE's xmax, ymax at the peak's maximum bin. The peak finder's
   threshold and limits default to the card's, tuned on validation events; a card may hold named
   operating points (``operating_point="mu6"``: tuned for low pile-up).
3. Track-to-vertex weights: for each track the KDE used (``TrackUse`` status 0) and each vertex,
   chi2_ij of its (d0, z0) at the vertex with the vertex's sigma_z added to the track's z0
   variance (``impact_chi2``); w_ij = exp(-chi2_ij/2) / (sum_k exp(-chi2_ik/2) + exp(-cutoff/2)):
   the track's z-pdf compared across the predicted vertices, with a constant for belonging to
   none (AMVF's form, at its final temperature). A track is listed at the vertices where its
   weight is at least ``min_track_weight``; a track's weights sum to at most 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from recotrig.algorithms.ml.base import ModelAlgorithm
from recotrig.algorithms.vertexing.assignment import ANNEALING_CUTOFF, annealed_weights, impact_chi2
from recotrig.algorithms.vertexing.peaks import find_peaks
from recotrig.edm import KDE, FittedTracks, TrackUse, Vertices
from recotrig.framework import ConfigError, Option
from recotrig.framework.algorithm import Algorithm
from recotrig.models.runtime import Session

CHANNELS = ["kde_a", "kde_b", "xmax", "ymax"]


class PVFinder(ModelAlgorithm):
    """Finds primary vertices in a ``KDE`` with a PV-Finder UNet (ONNX) and assigns ``tracks``."""

    requires = ("onnxruntime", "scipy")
    family = "pvfinder"
    outputs = ("vertices",)
    model = Option(
        "pvfinder-unet-mu60", "a shipped model's name, or the path of an .onnx file (card beside it)", role="model"
    )
    threads = Option(1, "ONNX Runtime intra-op threads (never more than the process's thread budget)", low=1, high=64)
    operating_point = Option(
        "",
        "the card's tuned peak-finder settings to use: '' (its default, tuned at mu = 60) or "
        "a named operating point ('mu6': low pile-up)",
    )
    threshold = Option(-1.0, "peak finder: minimum peak height (-1: the card's tuned value)", low=-1.0)
    min_integral = Option(-1.0, "peak finder: minimum peak integral (-1: the card's value)", low=-1.0)
    min_width = Option(1, "peak finder: minimum peak width [bins]", low=1)
    min_prominence = Option(-1.0, "peak finder: minimum prominence / height (-1: the card's value)", low=-1.0, high=1.0)
    min_track_weight = Option(0.1, "minimum weight for a track to be listed at a vertex", low=0.0, high=1.0)
    cutoff = Option(ANNEALING_CUTOFF, "chi2 at which a track is as likely to belong to no vertex", low=0.0)

    def check_upstream(self, upstream: dict[str, Algorithm]) -> None:
        """A KDEBuilder feeding this finder must bin as the model was trained."""
        producer = upstream.get("kde")
        binning = getattr(producer, "binning", None)
        if binning is None:
            return
        model = self.load_model(features=CHANNELS)
        trained = dataclasses.asdict(model.typed_card.binning)
        if {k: float(v) for k, v in binning.items()} != {k: float(v) for k, v in trained.items()}:
            raise ConfigError(
                f"{self.name}: model {model.onnx} was trained on KDE binning {trained}, "
                f"but {producer.name} bins {binning}"
            )

    def initialize(self) -> None:
        model = self.load_model(features=CHANNELS)
        card = model.typed_card
        self._path = model.onnx
        self._binning = card.binning
        points = card.operating_points
        if self.operating_point and self.operating_point not in points:
            raise ConfigError(
                f"{self.name}: model {model.onnx} has no operating point {self.operating_point!r}; "
                f"its card has {sorted(points)}"
            )
        tuned = points[self.operating_point] if self.operating_point else card.peak_finder
        self._peaks: dict[str, Any] = {
            "threshold": self.threshold if self.threshold >= 0 else tuned.threshold,
            "min_integral": self.min_integral if self.min_integral >= 0 else tuned.min_integral,
            "min_prominence": self.min_prominence if self.min_prominence >= 0 else tuned.min_prominence,
            "min_width": self.min_width,
        }
        self._session = Session(model.onnx, threads=min(self.threads, self.context.threads))

    def _check_binning(self, kde: KDE) -> np.ndarray:
        z = np.asarray(kde.z, np.float64)
        b = self._binning
        width = (b.z_max - b.z_min) / b.bins
        if len(z) != b.bins or not np.isclose(z[0], b.z_min + width / 2) or not np.isclose(z[-1], b.z_max - width / 2):
            raise ValueError(
                f"{self.name}: KDE {self.key('kde')!r} has {len(z)} bins over "
                f"[{z[0] if len(z) else 'nan'}, {z[-1] if len(z) else 'nan'}] mm, but model "
                f"{self._path} takes the binning {dataclasses.asdict(b)}"
            )
        return z

    def execute(self, kde: KDE, tracks: FittedTracks, kde_tracks: TrackUse) -> Vertices:
        z = self._check_binning(kde)
        if len(kde_tracks) != len(tracks):
            raise ValueError(
                f"{self.name}: {self.key('kde_tracks')!r} has {len(kde_tracks)} rows for "
                f"{len(tracks)} tracks in {self.key('tracks')!r}: not made from these tracks"
            )
        rows = np.flatnonzero(np.asarray(kde_tracks.status) == TrackUse.USED)
        targets = {"track_index": self.key("tracks")}
        if len(rows) == 0:
            return Vertices(x=[], y=[], z=[], ntracks=[], track_index=[], track_weight=[], sigma_z=[], targets=targets)
        features = np.stack([np.asarray(kde[c], np.float32) for c in CHANNELS])[None]
        hist = self._session.run(kde=features)["hist"][0]
        peaks = find_peaks(hist, z, **self._peaks)
        x = np.asarray(kde.xmax, np.float64)[peaks.bin]
        y = np.asarray(kde.ymax, np.float64)[peaks.bin]
        positions = np.stack([x, y, peaks.z], axis=1)
        chi2 = impact_chi2(tracks, rows, positions, vertex_var_z=peaks.sigma_z**2)
        weights = annealed_weights(chi2, cutoff=self.cutoff)
        index, weight = [], []
        for j in range(len(positions)):
            members = np.flatnonzero(weights[j] >= self.min_track_weight)
            index.append(rows[members].tolist())
            weight.append(weights[j, members].tolist())
        return Vertices(
            x=x,
            y=y,
            z=peaks.z,
            ntracks=np.array([len(i) for i in index], np.int32),
            track_index=index,
            track_weight=weight,
            sigma_z=peaks.sigma_z,
            targets=targets,
        )
