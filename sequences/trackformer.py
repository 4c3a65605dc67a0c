"""TrackFormerFinder (EncReg, ONNX) and ActsCKF on the identical pixel hits of reduced events,
the ML tracks Kalman-fitted by ActsTrackFit, one truth-matched comparison table."""

from __future__ import annotations

import os

from recotrig.algorithms.acts.ckf import ActsCKF
from recotrig.algorithms.acts.fit import ActsTrackFit
from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.io.hit_reader import HitReader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.sequences._acts import acts_options
from recotrig.sequences.samples import SAMPLE_MU20

DEFAULT_INPUT = str(SAMPLE_MU20)
PIXELS = [7, 8, 9]


def build(*, input: str | None, output: str) -> list:
    input = input or DEFAULT_INPUT
    acts = acts_options(input)
    return [
        # the TrackFormers "10-50 tracks" setting: 30 random particles' pixel hits per crossing, noise dropped
        HitReader(input=input, volumes=PIXELS, tracks_per_event=30),
        TrackFormerFinder(name="TrackFormerEncReg", tracks="tracks_encreg"),
        # pixel-only tracks have 4-8 measurements: CKF asks for 4 (default 7), all else as in `tracking`
        ActsCKF(tracks="tracks_ckf", min_measurements=4, **acts),
        ActsTrackFit(name="FitEncReg", tracks="tracks_encreg", fitted="tracks_encreg_fitted", **acts),
        Performance(tracks=["tracks_ckf", "tracks_encreg", "tracks_encreg_fitted"], output=output, min_hits=4),
        StoreWriter(path=os.path.join(output, "tracks.root"),
                    collections=["tracks_ckf", "tracks_encreg", "tracks_encreg_fitted"]),
    ]
