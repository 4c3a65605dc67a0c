"""TrackFormer models: data sets from our stores (``dataset``), the torch encoder (``model``),
training, export and evaluation (``train``), and hits-to-tracks clustering (``tracks``). Only
``model`` and ``train`` import torch."""
