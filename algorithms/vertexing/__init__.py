"""Vertexing algorithms that are not ACTS's: the PV-Finder KDE, its peak finder, and the
track-to-vertex assignment shared by every vertex finder."""
