"""PV-Finder training: data sets through the full chain (``dataset``), the torch U-Net (``model``) and the
training, export and evaluation (``train``)."""
