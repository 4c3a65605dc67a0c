"""The physics event data model: registered collection types for the tracker, vertexing and the
trigger, truth utilities, and units (mm, GeV, ns, everywhere).

The types are ordinary :class:`recotrig.framework.Collection` subclasses; a new type defined in any
module (an algorithm's own output) is registered the same way and needs no edit here.
"""

from recotrig.edm.tracker import (
    TRACK_PARAMETERS,
    Cells,
    FittedTracks,
    Hits,
    HitTruth,
    Particles,
    Tracks,
    TruthVertices,
    Vertices,
)
from recotrig.edm.trigger import CrossingInfo, L1Objects, TriggerDecision
from recotrig.edm.vertexing import KDE, TrackUse, VertexDensity
from recotrig.framework.collection import Collection, ColumnError, EventInfo

__all__ = [
    "Cells",
    "Collection",
    "CrossingInfo",
    "ColumnError",
    "EventInfo",
    "FittedTracks",
    "Hits",
    "HitTruth",
    "KDE",
    "L1Objects",
    "Particles",
    "TRACK_PARAMETERS",
    "Tracks",
    "TrackUse",
    "TriggerDecision",
    "TruthVertices",
    "VertexDensity",
    "Vertices",
]
