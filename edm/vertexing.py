"""Vertexing data beyond vertices themselves: the KDE histograms of PV-Finder."""

from __future__ import annotations

from recotrig.framework.collection import Collection

__all__ = ["KDE"]


class KDE(Collection, type_name="KDE"):
    """Kernel density estimates of tracks along the beam line, one row per z bin: bin centre ``z``
    (mm), ``kde_a`` (sum of track probabilities), ``kde_b`` (sum of squared probabilities), and
    ``xmax``/``ymax`` (mm), where ``kde_a`` peaks in x and y at that z."""

    columns = {"z": "f4", "kde_a": "f4", "kde_b": "f4"}
    optional = {"xmax": "f4", "ymax": "f4"}
