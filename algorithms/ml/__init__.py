"""Machine-learning algorithms: ONNX models run through ONNX Runtime (no torch at run time)."""
