"""ACTS CKF tracks, then ACTS AMVF primary vertices on them, with truth-matched tracking and
vertexing figures (ACTS-style clean/merged/split/fake and the LHCb-style z window)."""

from __future__ import annotations

import os

from recotrig.algorithms.acts.amvf import ActsAMVF
from recotrig.algorithms.acts.ckf import ActsCKF
from recotrig.detector import DetectorSpec
from recotrig.io.hit_reader import HitReader
from recotrig.io.fileset import expand
from recotrig.io.store import read_metadata
from recotrig.io.writers import StoreWriter
from recotrig.metrics.performance import Performance
from recotrig.sequences.samples import SAMPLE_MU60

DEFAULT_INPUT = str(SAMPLE_MU60)


def build(*, input: str | None, output: str) -> list:
    input = input or DEFAULT_INPUT
    acts = DetectorSpec.from_metadata(read_metadata(expand(input)[0])).acts_options()  # the store's own geometry and field
    return [
        HitReader(input=input),
        ActsCKF(tracks="tracks_ckf", **acts),
        ActsAMVF(tracks="tracks_ckf", vertices="vertices_amvf", **acts),
        Performance(tracks=["tracks_ckf"], vertices=["vertices_amvf:tracks_ckf"], output=output),
        StoreWriter(path=os.path.join(output, "reco.root"), collections=["tracks_ckf", "vertices_amvf"]),
    ]
