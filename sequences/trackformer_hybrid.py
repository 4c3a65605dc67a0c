"""TrackFormerFinder after ActsCKF on the full pixel content of each crossing (by default the
bundled mu = 60 ttbar sample): ActsCKF, seeded from pT >= 0.2 GeV, finds the clean tracks first;
the 200-500 models, in 36 phi sectors, find the rest on the hits its tracks leave
(``TrackFormerFinder.prior``), and their outputs hold both. The comparison shows ActsCKF alone
beside them, on the same hits. The seed pT was chosen on mu = 60 crossings of a seed apart from
the quoted ones (docs: TrackFormerFinder)."""

from __future__ import annotations

from recotrig.sequences.samples import SAMPLE_MU60
from recotrig.sequences.trackformer import finders
from recotrig.sequences.trackformer_dense import MODELS

SECTORS = 36
PRIOR_PT = 0.2  # GeV


def build(*, input: str | None, output: str) -> list:
    return finders(
        input=input or str(SAMPLE_MU60),
        output=output,
        tracks_per_event=0,
        models=MODELS,
        sectors=SECTORS,
        prior_pt=PRIOR_PT,
    )
