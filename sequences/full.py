"""Tracking, vertexing and the Level-1 trigger decision on the same events of one store:
HitReader -> ActsCKF -> (KDEBuilder -> PVFinder, ActsAMVF) for tracks and vertices, and
L1Reader -> AnomalyTrigger (the firmware emulator) for the trigger decision of each crossing,
with one comparison table: tracks, vertices and the trigger row (accepted events, the rate they
mean at 40 MHz, mean score word, threshold).

The default input is the bundled mu = 60 ttbar sample (its stores carry the L1 objects of every
crossing). ``--AnomalyTrigger.firmware DIR`` decides with a built firmware's calibration."""

from __future__ import annotations

import os

from recotrig.algorithms.acts.amvf import ActsAMVF
from recotrig.algorithms.acts.ckf import ActsCKF
from recotrig.algorithms.ml.anomaly_trigger import AnomalyTrigger
from recotrig.algorithms.ml.pvfinder import PVFinder
from recotrig.algorithms.vertexing.kde_builder import KDEBuilder
from recotrig.io.hit_reader import HitReader
from recotrig.io.l1_reader import L1Reader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.models import registry
from recotrig.sequences.pvfinder import MODEL as PVFINDER_MODEL
from recotrig.sequences.samples import SAMPLE_MU60
from recotrig.sim.store import acts_options

DEFAULT_INPUT = str(SAMPLE_MU60)


def build(*, input: str | None, output: str) -> list:
    input = input or DEFAULT_INPUT
    acts = acts_options(input)
    binning = registry.load(PVFINDER_MODEL, family="pvfinder").card["binning"]
    return [
        HitReader(input=input),
        L1Reader(input=input),
        ActsCKF(tracks="tracks_ckf", **acts),
        KDEBuilder(tracks="tracks_ckf", **binning),
        PVFinder(
            tracks="tracks_ckf",
            vertices="vertices_pvfinder",
            candidates="vertices_pvfinder_candidates",
            model=PVFINDER_MODEL,
        ),
        ActsAMVF(tracks="tracks_ckf", vertices="vertices_amvf", **acts),
        AnomalyTrigger(decision="decision"),
        Performance(
            tracks=["tracks_ckf"],
            vertices=["vertices_pvfinder", "vertices_amvf"],
            candidates=["vertices_pvfinder_candidates"],
            candidates_of={"vertices_pvfinder": "vertices_pvfinder_candidates"},
            tracks_of={"vertices_pvfinder": "tracks_ckf", "vertices_amvf": "tracks_ckf"},
            triggers=["decision"],
            output=output,
        ),
        StoreWriter(
            path=os.path.join(output, "reco.root"),
            collections=["tracks_ckf", "vertices_pvfinder", "vertices_amvf", "decision"],
        ),
    ]
