"""The Level-1 anomaly trigger on L1 objects: L1Reader -> AnomalyTrigger (the firmware's
bit-accurate emulator: integer score word and decision at a fixed zero-bias rate; the float ONNX
score beside it) -> TriggerPerformance (ROC AUC and signal efficiencies per signal against the
zero-bias crossings, and the decisions: zero-bias rate and signal acceptance).
``--AnomalyTrigger.firmware DIR`` decides with a built firmware's calibrated threshold.

The default input is the bundled L1 sample: 10,000 zero-bias crossings and 500 crossings of each
signal at mu = 60 (``recotrig.sequences.samples.L1_COMMANDS``). With 10,000 background crossings
the efficiencies are measured down to FPR 1e-3; the figures at 1e-5 and at 1 kHz need the
held-out million of ``bench/bench_anomaly.py``."""

from __future__ import annotations

import os

from recotrig.algorithms.ml.anomaly_trigger import AnomalyTrigger
from recotrig.io.l1_reader import L1Reader
from recotrig.io.writers import StoreWriter
from recotrig.metrics.trigger import TriggerPerformance
from recotrig.sequences.samples import L1_SAMPLE

DEFAULT_INPUT = L1_SAMPLE


def build(*, input: str | None, output: str) -> list:
    return [
        L1Reader(input=input or DEFAULT_INPUT),
        AnomalyTrigger(decision="decision"),
        TriggerPerformance(decision="decision", output=output),
        StoreWriter(path=os.path.join(output, "trigger.root"), collections=["decision", "crossing"]),
    ]
