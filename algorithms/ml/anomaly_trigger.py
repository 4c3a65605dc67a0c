"""AnomalyTrigger: the Level-1 anomaly score of each crossing and the trigger decision.

The decision is the firmware's, computed by its bit-accurate emulator (``firmware.emulator``):
the 57 L1 inputs (``edm.trigger.l1_features``) become the firmware's input words, the quantised
network's integer score word (``hw_score``) is compared with the integer threshold. The
threshold comes from a built firmware directory (``firmware``: its calibration, the same
integer that is written into its hls4ml and Verilog code), else from ``threshold``, else from
the model card for ``rate_khz`` (``firmware.emulator.card_threshold``). The decision's columns:
``hw_score`` (the word), ``score`` (the word times its LSB: ``passed`` is ``score >
threshold``) and ``float_score``, the float network's score in ONNX Runtime (the unquantised
reference, which decides nothing).

Crossings are processed a chunk at a time (``execute_chunk``): one emulator call and one ONNX
Runtime call per chunk.
"""

from __future__ import annotations

import numpy as np

from recotrig.algorithms.ml.base import ModelAlgorithm
from recotrig.edm import L1Objects, TriggerDecision
from recotrig.edm.trigger import l1_feature_names, l1_features
from recotrig.firmware.emulator import Emulator, FirmwareError, card_threshold
from recotrig.firmware.emulator import load as load_firmware
from recotrig.framework import ConfigError, Option
from recotrig.models import registry
from recotrig.models.anomaly.fixedpoint import Spec
from recotrig.models.runtime import Session

DEFAULT_MODEL = "anomaly-student-zerobias-mu60"  # the AE's physics in 14,400 LUTs and 2 clocks at 40 MHz


class AnomalyTrigger(ModelAlgorithm):
    """Scores ``l1`` with the firmware emulator of an L1 anomaly-detection model and decides."""

    requires = ("onnxruntime",)
    family = "anomaly"
    outputs = ("decision",)
    model = Option(
        "",
        f"a shipped model's name or an .onnx path (default: the firmware's model, else {DEFAULT_MODEL})",
        role="model",
    )
    firmware = Option("", "a firmware directory (recotrig firmware): its spec and calibrated threshold")
    rate_khz = Option(10.0, "without firmware: the model card's threshold for this zero-bias rate [kHz]", low=0.0)
    threshold = Option(
        -1.0, "without firmware: a score threshold to use instead (-1: the card's for rate_khz)", low=-1.0
    )

    def _model_name(self) -> str:
        """The model option, else the firmware's model, else the default."""
        if self.model or not self.firmware:
            return self.model or DEFAULT_MODEL
        try:
            return load_firmware(self.firmware).model
        except FirmwareError:
            return DEFAULT_MODEL  # initialize says why

    def files(self) -> dict[str, list[str]]:
        out = super().files(self._model_name())
        if self.firmware:  # what the decision depends on: the spec and the calibrated threshold
            out["firmware"] = [f"{self.firmware}/spec.fixed.json", f"{self.firmware}/calibration.json"]
        return out

    def initialize(self) -> None:
        fw = None
        if self.firmware:
            try:
                fw = load_firmware(self.firmware)
            except FirmwareError as err:
                raise ConfigError(f"{self.name}: {err}") from None
            if self.model and registry.locate(self.model).stem != fw.model:
                raise ConfigError(
                    f"{self.name}: the firmware {self.firmware} was built from {fw.model}, not {self.model}"
                )
        model = self.load_model(self._model_name(), features=l1_feature_names())
        card = model.typed_card
        if fw is not None:
            if fw.manifest.get("onnx_sha256") != card.onnx_sha256:
                raise ConfigError(f"{self.name}: the firmware {self.firmware} does not match model {model.onnx}")
            self._emulator = fw.emulator
        else:
            spec_path = model.onnx.parent / card.fixed_point.spec
            if not spec_path.exists() or registry.sha256(spec_path) != card.fixed_point.spec_sha256:
                raise ConfigError(
                    f"{self.name}: the fixed-point spec {spec_path} of model {model.onnx} is missing or "
                    "differs from its card"
                )
            spec = Spec.load(spec_path)
            try:
                word, _ = card_threshold(card, spec, self.rate_khz, self.threshold if self.threshold >= 0 else None)
                self._emulator = Emulator(spec, word)
            except (FirmwareError, ValueError) as err:
                raise ConfigError(f"{self.name}: model {model.onnx}: {err}") from None
        self._session = Session(model.onnx, threads=1)

    def execute(self, l1: L1Objects) -> TriggerDecision:
        return self.execute_chunk([l1])[0]

    def execute_chunk(self, l1: list[L1Objects]) -> list[TriggerDecision]:
        x = np.stack([l1_features(objects) for objects in l1])
        hw, passed = self._emulator.run(self._emulator.words(x))
        float_score = self._session.run(l1_inputs=x)["score"]
        lsb = self._emulator.lsb
        threshold = self._emulator.threshold * lsb
        return [
            TriggerDecision(
                score=[int(hw[i]) * lsb],
                passed=[bool(passed[i])],
                threshold=[threshold],
                hw_score=[int(hw[i])],
                float_score=[float(float_score[i])],
            )
            for i in range(len(l1))
        ]
