"""Vertexing data beyond vertices themselves: the KDE histograms of PV-Finder and its predicted
vertex density."""

from __future__ import annotations

from recotrig.framework.collection import Collection

__all__ = ["KDE", "TrackUse", "VertexDensity"]


class KDE(Collection, type_name="KDE"):
    """Kernel density estimates of tracks along the beam line, one row per z bin: bin centre ``z``
    (mm), ``kde_a`` (sum of track probabilities), ``kde_b`` (sum of squared probabilities), and
    ``xmax``/``ymax`` (mm), where ``kde_a`` peaks in x and y at that z."""

    columns = {"z": "f4", "kde_a": "f4", "kde_b": "f4"}
    optional = {"xmax": "f4", "ymax": "f4"}


class VertexDensity(Collection, type_name="VertexDensity"):
    """A predicted density of vertices along the beam line, one row per z bin: bin centre ``z``
    (mm) and ``density`` (vertices per bin), e.g. PV-Finder's network output for a ``KDE``."""

    columns = {"z": "f4", "density": "f4"}


class TrackUse(Collection, type_name="TrackUse"):
    """Per row of a track collection, whether a vertexing algorithm used it: ``status`` 0 used,
    1 skipped for non-finite parameters or a covariance that is not positive definite, 2 outside
    the algorithm's z range. Parallel to the tracks (row i is track row i)."""

    columns = {"status": "i1"}

    USED, BAD, OUTSIDE = 0, 1, 2
