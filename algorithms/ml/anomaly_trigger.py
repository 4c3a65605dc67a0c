"""AnomalyTrigger: the Level-1 anomaly score of each crossing and the trigger decision.

The 57 L1 inputs (``edm.trigger.l1_features``) go through the model twice: the float network in
ONNX Runtime (``score``) and the quantised network's exact fixed-point forward pass from the
spec shipped beside it (``hw_score``, the integer word the firmware computes). The decision is
made on ``hw_score`` against the threshold the card gives for ``rate_khz`` (tuned on held-out
zero-bias crossings), or on ``threshold`` when it is set.
"""

from __future__ import annotations

from ...edm import L1Objects, TriggerDecision
from ...edm.trigger import l1_feature_names, l1_features
from ...framework import ConfigError, Option
from ...models import registry
from ...models.anomaly.fixedpoint import Spec
from ...models.runtime import Session
from .base import ModelAlgorithm


class AnomalyTrigger(ModelAlgorithm):
    """Scores ``l1`` with an L1 anomaly-detection model and decides at a fixed zero-bias rate."""

    requires = ("onnxruntime",)
    family = "anomaly"
    outputs = ("decision",)
    model = Option("anomaly-ae-zerobias-mu60", "a shipped model's name, or the path of an .onnx file (card beside it)",
                   role="model")
    rate_khz = Option(10.0, "trigger rate of the threshold, from the card's zero-bias thresholds [kHz]", low=0.0)
    threshold = Option(-1.0, "score threshold to use instead (-1: the card's for rate_khz)", low=-1.0)

    def initialize(self) -> None:
        model = self.load_model(features=l1_feature_names())
        card = model.card
        spec_path = model.onnx.parent / card["fixed_point"]["spec"]
        if not spec_path.exists() or registry.sha256(spec_path) != card["fixed_point"]["spec_sha256"]:
            raise ConfigError(f"{self.name}: the fixed-point spec {spec_path} of model {model.onnx} is missing or "
                              "differs from its card")
        self._spec = Spec.load(spec_path)
        self._lsb = 2.0 ** -self._spec.score_fraction_bits
        if self.threshold >= 0:
            self._threshold = float(self.threshold)
        else:
            thresholds = card.get("thresholds_khz", {})
            key = f"{self.rate_khz:g}"
            if key not in thresholds:
                raise ConfigError(f"{self.name}: model {model.onnx} has no threshold for {key} kHz; its card has "
                                  f"{sorted(thresholds)} kHz (or set threshold)")
            self._threshold = float(thresholds[key])
        self._session = Session(model.onnx, threads=1)

    def execute(self, l1: L1Objects) -> TriggerDecision:
        x = l1_features(l1)[None]
        score = float(self._session.run(l1_inputs=x)["score"][0])
        hw = int(self._spec.score_int(x)[0])
        return TriggerDecision(score=[score], passed=[hw * self._lsb > self._threshold], threshold=[self._threshold],
                               hw_score=[hw])
