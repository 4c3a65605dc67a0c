"""TrackFormer training: data sets from our stores (``dataset``), the torch encoder (``model``) and the
training, export and evaluation (``train``). The inference pieces live in ``models.trackformer``."""
