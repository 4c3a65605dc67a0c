"""What the algorithms that run a registered model share: the model file in the run record and
loading it with its card checked."""

from __future__ import annotations

from typing import Any, ClassVar

from recotrig.framework import ConfigError
from recotrig.framework.algorithm import Algorithm
from recotrig.models import registry


class ModelAlgorithm(Algorithm):
    """An algorithm with a ``model`` option (declared by the subclass, ``role="model"``) naming a
    shipped model or an ``.onnx`` path of the model family ``family``."""

    family: ClassVar[str] = ""
    model: Any

    def files(self, model: str | None = None) -> dict[str, list[str]]:
        model = model or self.model
        try:
            return {"model": [str(registry.locate(model))]}  # the record hashes it; initialize checks it
        except registry.ModelError:
            return {"model": [model]}  # the record says it is missing; initialize says why

    def load_model(self, model: str | None = None, **expected: Any) -> registry.Model:
        """The model (``model``, default the option), its card read and checked (sha256, family,
        and each ``expected`` card entry); ``ConfigError`` naming the file otherwise."""
        try:
            model = registry.load(model or self.model, family=self.family)
            for key, value in expected.items():
                model.expect(key, value)
        except registry.ModelError as err:
            raise ConfigError(f"{self.name}: {err}") from None
        return model
