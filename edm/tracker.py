"""Tracker data: hits, cells, truth particles and hit truth, truth vertices, tracks and vertices.

Units (``recotrig.edm.units``): mm, GeV, ns, e.
"""

from __future__ import annotations

from recotrig.framework.collection import Collection

__all__ = ["TRACK_PARAMETERS", "Cells", "Hits", "HitTruth", "Particles", "Tracks", "TruthVertices", "Vertices"]


class Hits(Collection, type_name="Hits"):
    """Measured hits. Global position in mm, time in ns.

    The optional ACTS columns let ACTS refit the identical measurements: ``geometry_id`` of the
    sensitive surface, the two local coordinates ``loc0``/``loc1`` (mm) and their variances.
    """

    columns = {"hit_id": "i8", "x": "f8", "y": "f8", "z": "f8"}
    optional = {
        "t": "f8",
        "volume_id": "i4",
        "layer_id": "i4",
        "module_id": "i4",
        "geometry_id": "u8",
        "loc0": "f8",
        "loc1": "f8",
        "var_loc0": "f8",
        "var_loc1": "f8",
    }


class Cells(Collection, type_name="Cells"):
    """TrackML pixel cells: the channels ``ch0``/``ch1`` of each hit and the deposited ``value``."""

    columns = {"hit_id": "i8", "ch0": "i4", "ch1": "i4", "value": "f8"}


class Particles(Collection, type_name="Particles"):
    """Truth particles: production vertex (mm, ns), momentum (GeV), charge (e)."""

    columns = {"particle_id": "i8", "vx": "f8", "vy": "f8", "vz": "f8", "px": "f8", "py": "f8", "pz": "f8", "q": "i4"}
    optional = {"vt": "f8", "nhits": "i4", "pdg": "i4", "vertex_id": "i8", "mass": "f8", "energy": "f8"}


class HitTruth(Collection, type_name="HitTruth"):
    """Hit-to-particle truth (particle 0 is noise), true position/momentum and TrackML weight."""

    columns = {"hit_id": "i8", "particle_id": "i8"}
    optional = {"tx": "f8", "ty": "f8", "tz": "f8", "tt": "f8", "tpx": "f8", "tpy": "f8", "tpz": "f8", "weight": "f8"}


class TruthVertices(Collection, type_name="TruthVertices"):
    """Generated interaction vertices: position (mm, ns), number of charged final-state particles
    and whether the vertex is the hard scatter."""

    columns = {"vertex_id": "i8", "x": "f8", "y": "f8", "z": "f8"}
    optional = {"t": "f8", "n_charged": "i4", "n_reconstructable": "i4", "is_hard_scatter": "bool"}


#: order of the bound/perigee track parameters and of ``Tracks.cov`` rows and columns (ACTS order)
TRACK_PARAMETERS = ("d0", "z0", "phi", "theta", "qop", "t")


class Tracks(Collection, type_name="Tracks"):
    """Reconstructed tracks: the hits assigned to each track and, once fitted, perigee parameters
    at the beam line (d0, z0 in mm; phi, theta in rad; q/p in e/GeV; t in ns) with their 6x6
    covariance in ``TRACK_PARAMETERS`` order. Finders may add their own columns as extras (a
    per-hit assignment probability parallel to ``hit_ids``, say)."""

    columns = {"hit_ids": "var*i8"}
    optional = {
        "d0": "f8",
        "z0": "f8",
        "phi": "f8",
        "theta": "f8",
        "qop": "f8",
        "t": "f8",
        "cov": "f8[6,6]",
        "chi2": "f8",
        "ndf": "i4",
    }

    @property
    def fitted(self) -> bool:
        return "z0" in self


class FittedTracks(Tracks, type_name="FittedTracks"):
    """Tracks with perigee parameters and covariance: what vertexing needs. The type makes it a
    data contract checked before a run (a vertex finder reading hit-only ``Tracks`` fails the
    sequence check); rows whose fit failed hold NaN and are skipped by the consumers."""

    columns = {"hit_ids": "var*i8", "d0": "f8", "z0": "f8", "phi": "f8", "theta": "f8", "qop": "f8", "cov": "f8[6,6]"}
    optional = {"t": "f8", "chi2": "f8", "ndf": "i4"}


class Vertices(Collection, type_name="Vertices"):
    """Reconstructed vertices: position (mm), time (ns); covariance and the tracks used (indices
    into the Tracks collection named by ``targets["track_index"]``, with their weights), where the
    producing algorithm provides them."""

    columns = {"x": "f8", "y": "f8", "z": "f8"}
    optional = {
        "t": "f8",
        "cov": "f8[4,4]",
        "ntracks": "i4",
        "track_index": "var*i8",
        "track_weight": "var*f8",
        "sigma_z": "f8",
    }
    parallel = (("track_index", "track_weight"),)
    relations = {"track_index": "Tracks"}
