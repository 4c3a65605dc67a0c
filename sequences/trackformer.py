"""TrackFormerFinder (EncCla and EncReg, ONNX) and ActsCKF on the identical pixel hits of reduced
events, the ML tracks Kalman-fitted by ActsTrackFit, one truth-matched comparison table.

The bundled default is the TrackFormers "10-50 tracks" setting: 30 random particles' pixel hits
per crossing, noise dropped, and the models trained on it; ``trackformer_dense`` is the same at
300 tracks with the sectored 200-500 models.
"""

from __future__ import annotations

import os

from recotrig.algorithms.acts.ckf import ActsCKF
from recotrig.algorithms.acts.fit import ActsTrackFit
from recotrig.algorithms.ml.trackformer import TrackFormerFinder
from recotrig.io.hit_reader import HitReader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.sequences.samples import SAMPLE_MU20
from recotrig.sim.store import acts_options

DEFAULT_INPUT = str(SAMPLE_MU20)
PIXELS = [7, 8, 9]
MODELS = {"EncCla": "trackformer-enccla-10-50", "EncReg": "trackformer-encreg-10-50"}


def finders(
    *,
    input: str,
    output: str,
    tracks_per_event: int,
    models: dict[str, str],
    sectors: int = 0,
    prior_pt: float | None = None,
) -> list:
    """HitReader (pixels, ``tracks_per_event`` random particles; 0: all) -> one TrackFormerFinder
    per model (``sectors``: 0, the card's) and ActsCKF on the same hits -> ActsTrackFit per ML
    collection -> Performance, store. With ``prior_pt``, ActsCKF seeds from that pT (GeV) and runs
    first, and each TrackFormerFinder takes its tracks' hits out before its model runs (``prior``)."""
    acts = acts_options(input)
    seeds = {} if prior_pt is None else {"seed_min_pt": prior_pt, "track_min_pt": prior_pt}
    prior = {} if prior_pt is None else {"prior": "tracks_ckf"}
    ml = [kind.lower() for kind in models]
    collections = ["tracks_ckf", *(f"tracks_{k}" for k in ml), *(f"tracks_{k}_fitted" for k in ml)]
    return [
        HitReader(input=input, volumes=PIXELS, tracks_per_event=tracks_per_event),
        *(
            TrackFormerFinder(
                name=f"TrackFormer{kind}", model=model, tracks=f"tracks_{kind.lower()}", sectors=sectors, **prior
            )
            for kind, model in models.items()
        ),
        # pixel-only tracks have 4-8 measurements: CKF asks for 4 (default 7), all else as in `tracking`
        ActsCKF(tracks="tracks_ckf", min_measurements=4, **acts, **seeds),
        *(
            ActsTrackFit(
                name=f"Fit{kind}", tracks=f"tracks_{kind.lower()}", fitted=f"tracks_{kind.lower()}_fitted", **acts
            )
            for kind in models
        ),
        Performance(tracks=collections, output=output, min_hits=4),
        StoreWriter(path=os.path.join(output, "tracks.root"), collections=collections),
    ]


def build(*, input: str | None, output: str) -> list:
    return finders(input=input or DEFAULT_INPUT, output=output, tracks_per_event=30, models=MODELS)
