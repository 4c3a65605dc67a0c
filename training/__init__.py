"""Training: per model family, the torch definitions (``model``), the data sets built from our stores
(``dataset``) and the training, export and evaluation (``train``), plus what they share (``common``:
checkpoints, the epoch loop, ONNX export, where a trained model is written).

This layer sits above ``algorithms`` and below ``sequences``: it may use the whole runtime (stores,
algorithms, metrics, simulation), and nothing in the runtime imports it. ``recotrig train <family>``
runs ``training.<family>.train``; torch is imported only here and in the firmware conversion."""
