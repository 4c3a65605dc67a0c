"""The one place that makes ONNX Runtime sessions (and sets their options).

Sessions are made lazily, once per process, with the intra-op thread count an algorithm asks for
(default 1, so that ``-j N`` uses N cores, not N squared) and never more than the process's thread
budget. A file ONNX Runtime cannot load fails with ``ModelError`` naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recotrig.models.registry import ModelError

__all__ = ["Session"]


class Session:
    """An ONNX Runtime inference session on the CPU."""

    def __init__(self, path: str | Path, *, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: ONNX Runtime cannot load it: {type(err).__name__}: {err}") from None
        self.inputs = [i.name for i in self._session.get_inputs()]
        self.outputs = [o.name for o in self._session.get_outputs()]

    def run(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        values = self._session.run(None, inputs)
        return dict(zip(self.outputs, values))

    def __getstate__(self) -> Any:
        raise TypeError("ONNX sessions do not travel between processes; make them in initialize")
