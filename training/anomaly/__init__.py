"""Anomaly-trigger training: data sets of L1 objects (``dataset``), the torch auto-encoders (``model``) and
the training, export and evaluation (``train``). The fixed-point spec lives in ``models.anomaly``."""
