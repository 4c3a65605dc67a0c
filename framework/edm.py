"""The event data model: column-oriented containers, one row per object.

Every container is a fixed set of named columns of equal length. Flat columns are numpy arrays;
fixed-shape columns (a covariance matrix per track) are numpy arrays whose first axis is the row;
jagged columns (the hits of each track) are awkward arrays. Units follow ``framework.units``:
mm, GeV, ns, e.

A container checks its columns when it is made: a missing required column, a column of another
length or a value that cannot take the column's type raises ``ColumnError`` naming the container
and the column. Containers are plain data: they pickle, compare with ``equals`` and convert to a
dict of arrays with ``to_arrays`` (which is what the writers store).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import awkward as ak
import numpy as np

__all__ = [
    "ColumnError",
    "Collection",
    "EventInfo",
    "Hits",
    "Particles",
    "HitTruth",
    "TruthVertices",
    "Tracks",
    "Vertices",
    "L1Objects",
    "TriggerDecision",
    "TRACK_PARAMETERS",
]


class ColumnError(ValueError):
    """A container was built from columns that do not fit its schema."""


_SPEC = re.compile(r"^(?P<var>var\*)?(?P<dtype>[a-z]+\d*)(?:\[(?P<shape>[\d, ]+)\])?$")


class _Column:
    """Parsed column spec: ``f8`` (flat), ``f8[6,6]`` (fixed shape per row), ``var*i8`` (jagged)."""

    __slots__ = ("name", "dtype", "shape", "jagged")

    def __init__(self, name: str, spec: str):
        match = _SPEC.match(spec)
        if match is None:
            raise ValueError(f"bad column spec {spec!r} for column {name!r}")
        self.name = name
        self.dtype = np.dtype(match["dtype"])
        self.jagged = match["var"] is not None
        shape = match["shape"]
        self.shape = tuple(int(s) for s in shape.split(",")) if shape else ()

    def coerce(self, owner: str, value: Any) -> np.ndarray | ak.Array:
        try:
            if self.jagged:
                array = value if isinstance(value, ak.Array) else ak.Array(value)
                if len(array) == 0:
                    return ak.unflatten(np.zeros(0, self.dtype), np.zeros(0, np.int64))
                if array.ndim != 2:
                    raise ColumnError(f"{owner}: column {self.name!r} must be jagged (one list per row)")
                flat = np.asarray(ak.to_numpy(ak.flatten(array)), dtype=self.dtype)
                return ak.unflatten(flat, np.asarray(ak.num(array, axis=1), np.int64))
            array = np.asarray(value)
            if array.dtype.kind in "OUS" and self.dtype.kind in "iufb":
                raise TypeError(f"values of kind {array.dtype.kind!r}")
            array = np.ascontiguousarray(array, dtype=self.dtype)
        except ColumnError:
            raise
        except (TypeError, ValueError) as err:
            raise ColumnError(f"{owner}: column {self.name!r} cannot be read as {self.dtype}: {err}") from None
        if array.ndim == 0 and not self.shape:
            array = array.reshape(1)
        if array.shape[1:] != self.shape:
            raise ColumnError(
                f"{owner}: column {self.name!r} has shape {array.shape}, expected (n, {', '.join(map(str, self.shape))})"
                if self.shape
                else f"{owner}: column {self.name!r} must be one-dimensional, has shape {array.shape}"
            )
        return array


class Collection:
    """Base of all containers: named columns of equal length.

    Subclasses list their columns in ``columns`` (required) and ``optional`` as name -> spec.
    Columns are read as attributes (``hits.x``) or items (``hits["x"]``).
    """

    columns: ClassVar[dict[str, str]] = {}
    optional: ClassVar[dict[str, str]] = {}
    _specs: ClassVar[dict[str, _Column]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overlap = set(cls.columns) & set(cls.optional)
        if overlap:
            raise TypeError(f"{cls.__name__}: columns both required and optional: {sorted(overlap)}")
        cls._specs = {n: _Column(n, s) for n, s in {**cls.columns, **cls.optional}.items()}

    def __init__(self, data: Mapping[str, Any] | None = None, /, **columns: Any):
        given = dict(data or {}, **columns)
        name = type(self).__name__
        missing = [c for c in self.columns if c not in given]
        if missing:
            raise ColumnError(f"{name}: missing required column(s) {missing}")
        unknown = [c for c in given if c not in self._specs]
        if unknown:
            raise ColumnError(f"{name}: unknown column(s) {unknown}; known: {sorted(self._specs)}")
        self._data: dict[str, np.ndarray | ak.Array] = {}
        length = None
        for column, value in given.items():
            if value is None:
                continue
            array = self._specs[column].coerce(name, value)
            if length is None:
                length = len(array)
            elif len(array) != length:
                raise ColumnError(f"{name}: column {column!r} has {len(array)} rows, others have {length}")
            self._data[column] = array
        self._length = length or 0

    # -- access ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._length

    def __contains__(self, column: str) -> bool:
        return column in self._data

    def __getitem__(self, column: str) -> np.ndarray | ak.Array:
        try:
            return self._data[column]
        except KeyError:
            raise KeyError(f"{type(self).__name__} has no column {column!r}; it has {list(self._data)}") from None

    def __getattr__(self, column: str) -> np.ndarray | ak.Array:
        if column.startswith("_"):
            raise AttributeError(column)
        try:
            return self._data[column]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no column {column!r}; it has {list(self._data)}") from None

    def __getstate__(self) -> dict:
        return {"_data": self._data, "_length": self._length}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def names(self) -> list[str]:
        """The columns this instance holds (required ones first)."""
        return list(self._data)

    def get(self, column: str, default: Any = None) -> Any:
        return self._data.get(column, default)

    def to_arrays(self) -> dict[str, np.ndarray | ak.Array]:
        return dict(self._data)

    # -- building --------------------------------------------------------------------------------
    def select(self, rows: np.ndarray | Sequence[int] | slice) -> "Collection":
        """A new container of the same type with the rows picked by a mask, indices or a slice."""
        if not isinstance(rows, slice):
            rows = np.asarray(rows)
            if rows.dtype == bool and len(rows) != len(self):
                raise ColumnError(f"{type(self).__name__}: mask of length {len(rows)} for {len(self)} rows")
        out = object.__new__(type(self))
        out._data = {k: v[rows] for k, v in self._data.items()}
        first = next(iter(out._data.values()), None)
        out._length = 0 if first is None else len(first)
        return out

    def with_columns(self, **columns: Any) -> "Collection":
        """A copy with columns added or replaced."""
        return type(self)({**self._data, **columns})

    @classmethod
    def empty(cls) -> "Collection":
        cols = {}
        for name in cls.columns:
            spec = cls._specs[name]
            cols[name] = [] if spec.jagged else np.zeros((0, *spec.shape), spec.dtype)
        return cls(cols)

    @classmethod
    def concat(cls, parts: Sequence["Collection"]) -> "Collection":
        if not parts:
            return cls.empty()
        names = parts[0].names
        for part in parts:
            if part.names != names:
                raise ColumnError(f"{cls.__name__}.concat: parts have different columns {names} / {part.names}")
        out = {}
        for name in names:
            if cls._specs[name].jagged:
                out[name] = ak.concatenate([p[name] for p in parts])
            else:
                out[name] = np.concatenate([p[name] for p in parts])
        return cls(out)

    def equals(self, other: object) -> bool:
        """Same type, same set of columns, identical values (NaN equal to NaN)."""
        if type(other) is not type(self) or set(other.names) != set(self.names) or len(other) != len(self):
            return False
        for name, mine in self._data.items():
            theirs = other[name]
            if isinstance(mine, ak.Array):
                if not ak.all(ak.num(mine, axis=1) == ak.num(theirs, axis=1)):
                    return False
                mine, theirs = ak.to_numpy(ak.flatten(mine)), ak.to_numpy(ak.flatten(theirs))
            if not np.array_equal(mine, theirs, equal_nan=mine.dtype.kind == "f"):
                return False
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} rows: {', '.join(self._data)})"


class EventInfo(Collection):
    """One row: which event this is. ``entry`` is the position in the store, ``event_id`` its id."""

    columns = {"entry": "i8", "event_id": "i8"}


class Hits(Collection):
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


class Particles(Collection):
    """Truth particles: production vertex (mm, ns), momentum (GeV), charge (e)."""

    columns = {"particle_id": "i8", "vx": "f8", "vy": "f8", "vz": "f8", "px": "f8", "py": "f8", "pz": "f8", "q": "i4"}
    optional = {"vt": "f8", "nhits": "i4", "pdg": "i4", "vertex_id": "i8", "mass": "f8", "energy": "f8"}


class HitTruth(Collection):
    """Hit-to-particle truth (particle 0 is noise), true position/momentum and TrackML weight."""

    columns = {"hit_id": "i8", "particle_id": "i8"}
    optional = {"tx": "f8", "ty": "f8", "tz": "f8", "tt": "f8", "tpx": "f8", "tpy": "f8", "tpz": "f8", "weight": "f8"}


class TruthVertices(Collection):
    """Generated interaction vertices: position (mm, ns), number of charged final-state particles
    and whether the vertex is the hard scatter."""

    columns = {"vertex_id": "i8", "x": "f8", "y": "f8", "z": "f8"}
    optional = {"t": "f8", "n_charged": "i4", "n_reconstructable": "i4", "is_hard_scatter": "bool"}


#: order of the bound/perigee track parameters and of ``Tracks.cov`` rows and columns (ACTS order)
TRACK_PARAMETERS = ("d0", "z0", "phi", "theta", "qop", "t")


class Tracks(Collection):
    """Reconstructed tracks: the hits assigned to each track and, once fitted, perigee parameters
    at the beam line (d0, z0 in mm; phi, theta in rad; q/p in e/GeV; t in ns) with their 6x6
    covariance in ``TRACK_PARAMETERS`` order."""

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


class Vertices(Collection):
    """Reconstructed vertices: position (mm), time (ns); covariance and the tracks used, where the
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


class L1Objects(Collection):
    """Level-1 trigger objects (electrons, muons, jets, missing ET): kind, pT (GeV), eta, phi."""

    KINDS = {"met": 0, "electron": 1, "muon": 2, "jet": 3}
    columns = {"kind": "i4", "pt": "f8", "eta": "f8", "phi": "f8"}


class TriggerDecision(Collection):
    """One row per trigger: its score and whether the event passed."""

    columns = {"score": "f8", "passed": "bool"}
    optional = {"threshold": "f8"}
