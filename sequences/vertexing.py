"""ACTS CKF tracks, then ACTS AMVF primary vertices on them, with truth-matched tracking and
vertexing figures (ACTS-style clean/merged/split/fake and the LHCb-style z window)."""

from __future__ import annotations

import os

from recotrig.algorithms.acts.amvf import ActsAMVF
from recotrig.algorithms.acts.ckf import ActsCKF
from recotrig.io.hit_reader import HitReader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.sequences.samples import SAMPLE_MU60
from recotrig.sim.store import acts_options

DEFAULT_INPUT = str(SAMPLE_MU60)


def build(*, input: str | None, output: str) -> list:
    input = input or DEFAULT_INPUT
    acts = acts_options(input)  # ACTS refits with the store's own geometry and field
    return [
        HitReader(input=input),
        ActsCKF(tracks="tracks_ckf", **acts),
        ActsAMVF(tracks="tracks_ckf", vertices="vertices_amvf", **acts),
        Performance(
            tracks=["tracks_ckf"], vertices=["vertices_amvf"], tracks_of={"vertices_amvf": "tracks_ckf"}, output=output
        ),
        StoreWriter(path=os.path.join(output, "reco.root"), collections=["tracks_ckf", "vertices_amvf"]),
    ]
