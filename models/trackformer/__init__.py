"""TrackFormer at run time: a model applied to one event's hits (``inference``), the detector sectors it
reads (``sectors``), hits-to-tracks clustering (``tracks``) and the class bins (``classes``). No torch;
the training lives in ``training.trackformer``."""
