"""PV-Finder (KDEBuilder -> PVFinder: KDE, UNet, peak finder, track weights) and ACTS AMVF with
its Gaussian and adaptive-grid seeders, all three on the identical ACTS CKF tracks of each
event, with one truth-matched vertexing table (ACTS-style and window definitions)."""

from __future__ import annotations

import os

from recotrig.algorithms.acts.amvf import ActsAMVF
from recotrig.algorithms.acts.ckf import ActsCKF
from recotrig.algorithms.ml.pvfinder import PVFinder
from recotrig.algorithms.vertexing.kde_builder import KDEBuilder
from recotrig.io.hit_reader import HitReader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.models import registry
from recotrig.sequences.samples import SAMPLE_MU60
from recotrig.sim.store import acts_options

DEFAULT_INPUT = str(SAMPLE_MU60)
MODEL = "pvfinder-unet-mu60"


def build(*, input: str | None, output: str) -> list:
    input = input or DEFAULT_INPUT
    acts = acts_options(input)
    binning = registry.load(MODEL, family="pvfinder").card["binning"]  # the KDE the model was trained on
    return [
        HitReader(input=input),
        ActsCKF(tracks="tracks_ckf", **acts),
        KDEBuilder(tracks="tracks_ckf", **binning),
        PVFinder(
            tracks="tracks_ckf", vertices="vertices_pvfinder", candidates="vertices_pvfinder_candidates", model=MODEL
        ),
        ActsAMVF(tracks="tracks_ckf", vertices="vertices_amvf", **acts),
        ActsAMVF(
            name="ActsAMVFGrid", tracks="tracks_ckf", vertices="vertices_amvf_grid", seeder="adaptive_grid", **acts
        ),
        Performance(
            tracks=["tracks_ckf"],
            output=output,
            vertices=["vertices_pvfinder", "vertices_amvf", "vertices_amvf_grid"],
            candidates=["vertices_pvfinder_candidates"],
            candidates_of={"vertices_pvfinder": "vertices_pvfinder_candidates"},
            tracks_of={
                "vertices_pvfinder": "tracks_ckf",
                "vertices_amvf": "tracks_ckf",
                "vertices_amvf_grid": "tracks_ckf",
            },
        ),
        StoreWriter(
            path=os.path.join(output, "reco.root"),
            collections=["tracks_ckf", "kde", "kde_tracks", "vertices_pvfinder", "vertices_amvf", "vertices_amvf_grid"],
        ),
    ]
