"""PVFinder: primary vertices from PV-Finder's KDE with a UNet (KDE-to-hist) and a peak finder,
and a probabilistic assignment of the tracks to them.

1. The ONNX UNet (``recotrig train pvfinder``) turns the ``KDE`` of an event into a predicted
   vertex-density histogram over the same z bins; the card holds the binning the model was
   trained on, and a KDE of another binning is refused.
2. ``peaks.find_peaks`` gives each vertex's z (weighted mean over the peak) and sigma_z (the
   peak's spread); x and y are the KDE's xmax, ymax at the peak's maximum bin. The threshold
   applies to the peak score the card names (``score``: the height, or sqrt(height x area),
   ``peaks.SCORES``); a peak with the area of several vertices, if wider than ``split_spread``, is split
   into that many (``vertex_area``, as tuned on the card). The peak finder's
   settings are chosen per event by default (``operating_point="auto"``): the card's named
   operating points, each tuned at one pile-up (mu = 6, 60, 200), sit at the KDE scale of their
   tuning events (``kde_scale``: the 90th percentile of their sums of ``kde_a``, about 40 per
   track); an event's threshold is interpolated between them at its own KDE sum (log threshold
   against log scale, held at the end points beyond them), and its other limits are those of the
   nearest point. So an event of unknown pile-up gets the settings tuned for its track
   multiplicity. A named point
   (``operating_point="mu6"``), ``""`` (the card's default, tuned at mu = 60) or an explicit
   ``threshold`` fix them for every event.
3. Track-to-vertex weights: for each track the KDE used (``TrackUse`` status 0) and each vertex,
   chi2_ij of its (d0, z0) at the vertex with the vertex's sigma_z added to the track's z0
   variance (``impact_chi2``); w_ij = exp(-chi2_ij/2) / (sum_k exp(-chi2_ik/2) + exp(-cutoff/2)):
   the track's z-pdf compared across the predicted vertices, with a constant for belonging to
   none (AMVF's form, at its final temperature). A track is listed at the vertices where its
   weight is at least ``min_track_weight``; a track's weights sum to at most 1.
4. For the threshold scan of the metric (``metrics.vertexing.VertexMetrics``), ``candidates``,
   in z: the vertices (positions only) and the peaks the peak finder finds below the event's
   threshold, down to ``scan_floor`` x the lower of it and the reference threshold. Each has a
   ``score``, its peak score over the **reference threshold**, one number for every event: the
   fixed threshold where there is one (a named point, the card's default, or ``threshold``), else
   the card's default threshold. So the candidates scoring at least k are exactly the vertices
   this finder gives with ``threshold`` = k x reference (its other limits as chosen for the
   event), and the scan is the curve of one global threshold on the network output. With a fixed
   threshold the vertices are the candidates scoring >= 1 (the scan passes through the operating
   point); the per-event default's point lies beside its curve, its thresholds differing between
   events. ``vertex_density``: the network output along z (for the report's view of one event).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from recotrig.algorithms.ml.base import ModelAlgorithm
from recotrig.algorithms.vertexing.assignment import ANNEALING_CUTOFF, annealed_weights, impact_chi2
from recotrig.algorithms.vertexing.peaks import Peaks, find_peaks
from recotrig.edm import KDE, FittedTracks, TrackUse, VertexDensity, Vertices
from recotrig.framework import ConfigError, Option
from recotrig.framework.algorithm import Algorithm
from recotrig.models.runtime import Session

CHANNELS = ["kde_a", "kde_b", "xmax", "ymax"]


class PVFinder(ModelAlgorithm):
    """Finds primary vertices in a ``KDE`` with a PV-Finder UNet (ONNX) and assigns ``tracks``;
    also gives the scan candidates and the network output (module docstring, item 4)."""

    requires = ("onnxruntime", "scipy")
    family = "pvfinder"
    outputs = ("vertices", "candidates", "vertex_density")
    model = Option(
        "pvfinder-unet-mu60", "a shipped model's name, or the path of an .onnx file (card beside it)", role="model"
    )
    threads = Option(1, "ONNX Runtime intra-op threads (never more than the process's thread budget)", low=1, high=64)
    operating_point = Option(
        "auto",
        "the card's tuned peak-finder settings: 'auto' (per event, from its KDE's scale between the "
        "card's operating points), '' (its default, tuned at mu = 60) or a named operating point "
        "('mu6', 'mu60', 'mu200')",
    )
    threshold = Option(
        -1.0, "peak finder: minimum peak score, as the card scores peaks (-1: the card's tuned value)", low=-1.0
    )
    min_integral = Option(-1.0, "peak finder: minimum peak integral (-1: the card's value)", low=-1.0)
    min_width = Option(1, "peak finder: minimum peak width [bins]", low=1)
    vertex_area = Option(
        -1.0, "peak finder: the area of one vertex, to split peaks by (0: never; -1: the card's value)", low=-1.0
    )
    split_spread = Option(-1.0, "peak finder: least spread of a peak that is split [mm] (-1: the card's)", low=-1.0)
    min_prominence = Option(-1.0, "peak finder: minimum prominence / height (-1: the card's value)", low=-1.0, high=1.0)
    min_track_weight = Option(0.1, "minimum weight for a track to be listed at a vertex", low=0.0, high=1.0)
    cutoff = Option(ANNEALING_CUTOFF, "chi2 at which a track is as likely to belong to no vertex", low=0.0)
    scan_floor = Option(
        0.001,
        "candidates: peaks down to this fraction of the threshold (the threshold scan's floor)",
        low=0.0,
        high=1.0,
    )

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
        if self.operating_point not in ("auto", "", *points):
            raise ConfigError(
                f"{self.name}: model {model.onnx} has no operating point {self.operating_point!r}; "
                f"its card has {sorted(points)} (or 'auto', or '' for its default)"
            )
        # the points 'auto' chooses between, by KDE scale; none when the card places none (its default then)
        self._anchors = sorted(
            (p for p in points.values() if p.kde_scale),
            key=lambda p: p.kde_scale,  # type: ignore[arg-type, return-value]
        )
        if self.operating_point not in ("auto", ""):
            self._anchors = [points[self.operating_point]]
        elif not self._anchors or not self.operating_point:
            self._anchors = [card.peak_finder]
        # log KDE scale and log threshold of each point, for the per-event interpolation
        self._log_scales = np.log([max(a.kde_scale or 1.0, 1e-12) for a in self._anchors])
        self._log_thresholds = np.log([max(a.threshold, 1e-12) for a in self._anchors])
        # the scan's unit (module docstring, item 4): the one threshold every event shares, if any
        fixed = self._anchors[0].threshold if len(self._anchors) == 1 else card.peak_finder.threshold
        self.reference_threshold = self.threshold if self.threshold >= 0 else fixed
        self._session = Session(model.onnx, threads=min(self.threads, self.context.threads))

    def peak_settings(self, kde_scale: float) -> dict[str, Any]:
        """The peak finder's settings for an event whose KDE sums to ``kde_scale`` (module
        docstring, item 2); explicit options win over the card's."""
        at = np.log(max(kde_scale, 1e-12))
        nearest = self._anchors[int(np.argmin(np.abs(self._log_scales - at)))]
        threshold = nearest.threshold  # one point: its own, exactly
        if len(self._anchors) > 1:
            threshold = float(np.exp(np.interp(at, self._log_scales, self._log_thresholds)))
        return {
            "threshold": self.threshold if self.threshold >= 0 else threshold,
            "min_integral": self.min_integral if self.min_integral >= 0 else nearest.min_integral,
            "min_prominence": self.min_prominence if self.min_prominence >= 0 else nearest.min_prominence,
            "min_width": self.min_width,
            "vertex_area": self.vertex_area if self.vertex_area >= 0 else nearest.vertex_area,
            "split_spread": self.split_spread if self.split_spread >= 0 else nearest.split_spread,
            "score": nearest.score,
        }

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

    def execute(self, kde: KDE, tracks: FittedTracks, kde_tracks: TrackUse) -> tuple[Vertices, Vertices, VertexDensity]:
        z = self._check_binning(kde)
        if len(kde_tracks) != len(tracks):
            raise ValueError(
                f"{self.name}: {self.key('kde_tracks')!r} has {len(kde_tracks)} rows for "
                f"{len(tracks)} tracks in {self.key('tracks')!r}: not made from these tracks"
            )
        features = np.stack([np.asarray(kde[c], np.float32) for c in CHANNELS])[None]
        hist = self._session.run(kde=features)["hist"][0]
        density = VertexDensity(z=kde.z, density=hist)
        rows = np.flatnonzero(np.asarray(kde_tracks.status) == TrackUse.USED)
        targets = {"track_index": self.key("tracks")}
        if len(rows) == 0:
            empty = np.zeros(0)
            none = Vertices(x=[], y=[], z=[], ntracks=[], track_index=[], track_weight=[], sigma_z=[], targets=targets)
            return none, Vertices(x=empty, y=empty, z=empty, sigma_z=empty, extra={"score": empty}), density
        settings = self.peak_settings(float(np.sum(np.asarray(kde.kde_a, np.float64))))
        threshold = settings["threshold"]
        # the scan's peaks, down to its floor; by height x area the vertices are those of them that
        # reach the threshold (peaks.find_peaks), so the peaks are found once
        low = find_peaks(
            hist, z, **{**settings, "threshold": self.scan_floor * min(threshold, self.reference_threshold)}
        )
        if settings["score"] == "height_area":
            peaks = low.take(low.score >= threshold)
        else:
            peaks = find_peaks(hist, z, **settings)
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
        vertices = Vertices(
            x=x,
            y=y,
            z=peaks.z,
            ntracks=np.array([len(i) for i in index], np.int32),
            track_index=index,
            track_weight=weight,
            sigma_z=peaks.sigma_z,
            targets=targets,
        )
        return vertices, self._candidates(kde, peaks, low, threshold), density

    def _candidates(self, kde: KDE, found: Peaks, low: Peaks, threshold: float) -> Vertices:
        """The vertices' peaks and those found below the event's threshold down to the scan floor
        (``low``), in z, with their peak scores over the reference threshold as ``score`` (module
        docstring, item 4)."""
        reference = self.reference_threshold
        peaks = found.join(low.take(low.score < threshold))
        return Vertices(
            x=np.asarray(kde.xmax, np.float64)[peaks.bin],
            y=np.asarray(kde.ymax, np.float64)[peaks.bin],
            z=peaks.z,
            sigma_z=peaks.sigma_z,
            extra={"score": peaks.score / reference if reference > 0 else np.full(len(peaks.z), np.inf)},
        )
