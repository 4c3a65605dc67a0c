"""The ``trackformer`` comparison at the TrackFormers "200-500 tracks" setting: 300 random
particles' pixel hits per crossing and the models trained on 200-500-track events, which cut an
event into overlapping phi sectors (``--HitReader.tracks_per_event 0`` runs them on the full
pixel content; more sectors with ``--TrackFormerEncReg.sectors``)."""

from __future__ import annotations

from recotrig.sequences.trackformer import DEFAULT_INPUT, finders

MODELS = {"EncCla": "trackformer-enccla-200-500", "EncReg": "trackformer-encreg-200-500"}


def build(*, input: str | None, output: str) -> list:
    return finders(input=input or DEFAULT_INPUT, output=output, tracks_per_event=300, models=MODELS)
