"""Column-oriented data collections with a registered, stable type name and a schema.

A collection is a set of named columns of equal length, one row per object. Flat columns are
numpy arrays; fixed-shape columns (a 6x6 covariance per track) are numpy arrays whose first axis
is the row; jagged columns (the hits of each track) are awkward arrays. A column's spec is a short
string: ``f8`` (flat), ``f8[6,6]`` (fixed shape per row), ``var*i8`` (jagged).

The engine defines only the mechanism; data types live with the code that owns them (the physics
types in ``recotrig.edm``). A type is declared by subclassing::

    class KDE(Collection, type_name="KDE"):
        columns = {"z": "f4", "kde_a": "f4"}                  # required
        optional = {"kde_b": "f4"}
        parallel = (("track_index", "track_weight"),)         # jagged columns that agree row by row
        relations = {"track_index": "Tracks"}                 # column -> type of the collection it indexes
        codes = {"kind": {"met": 0, "jet": 3}}                # integer column -> its values' names (shown
                                                              # by recotrig info)

Every subclass is registered under its ``type_name`` (default: the class name); a second class
with the same name fails at its definition, naming both. Stores record the type name and the
schema (:meth:`Collection.schema`) of what they hold, so a store written with a type that is not
imported (or not known at all) is still readable: :func:`from_schema` gives a generic collection
type with the stored columns.

Integrity, checked when a collection is made: a required column must be given (``None`` is not a
value), every column has the same number of rows and its spec's dtype and shape, parallel jagged
columns have equal list lengths in every row.

Values are converted to a column's dtype only when no value changes (:func:`lossless`): int32 to
int64, float32 to float64, a float holding an integer in range (``3.0``) to an integer, 0/1 to a
boolean, an integer to a float that holds it exactly, a float to a narrower float (rounded to the
declared precision, not overflowing). Anything else is a ``ColumnError`` naming the column, the
first row that would change and its value: NaN or inf or a fraction (``1.5``) into an integer, an
integer out of the type's range (2**32 + 8 into int32, a uint64 above 2**63 into int64), a
boolean into a number column.

An algorithm may add columns that its type does not
declare (``extra=`` or :meth:`with_columns`), e.g. per-hit posteriors on tracks; their spec is
taken from the values and travels with the collection into stores. Columns are read-only: the
values given are copied (or viewed, when already read-only), so neither the caller nor a consumer
can change a collection after it is made.

Relations: a column listed in ``relations`` holds row indices into another collection; which one
(its store key) is given per instance with ``targets={"track_index": "tracks_ckf"}`` and kept by
``select``, ``with_columns`` and stores.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import awkward as ak
import numpy as np

__all__ = [
    "Collection",
    "ColumnError",
    "EventInfo",
    "TypeRegistryError",
    "column_spec",
    "from_schema",
    "lists",
    "lossless",
    "registered_type",
    "registered_types",
]


class ColumnError(ValueError):
    """A collection was built from columns that do not fit its schema.

    Where one column is to blame, ``column`` names it and ``row`` the first bad row (when known);
    ``reason`` is the message without the collection and column (what a store error adds to the
    file and event it names).
    """

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.column = column
        self.row = row
        self.reason = message if reason is None else reason


class _Lossy(ValueError):
    """A conversion would change the value at flat position ``index``."""

    def __init__(self, index: int, reason: str):
        super().__init__(reason)
        self.index = index
        self.reason = reason


class TypeRegistryError(TypeError):
    """Two collection types claim one name."""


_SPEC = re.compile(r"^(?P<var>var\*)?(?P<dtype>[a-z]+\d*)(?:\[(?P<shape>[\d, ]+)\])?$")
_REGISTRY: dict[str, type[Collection]] = {}


class _Column:
    """A parsed column spec."""

    __slots__ = ("name", "spec", "dtype", "shape", "jagged")

    def __init__(self, name: str, spec: str):
        match = _SPEC.match(spec)
        if match is None:
            raise ValueError(f"bad column spec {spec!r} for column {name!r}")
        self.name = name
        self.spec = spec
        self.dtype = np.dtype(match["dtype"])
        self.jagged = match["var"] is not None
        shape = match["shape"]
        self.shape = tuple(int(s) for s in shape.split(",")) if shape else ()

    def error(self, owner: str, reason: str, row: int | None = None) -> ColumnError:
        where = f"column {self.name!r}" + ("" if row is None else f", row {row}")
        return ColumnError(f"{owner}: {where}: {reason}", column=self.name, row=row, reason=reason)

    def coerce(self, owner: str, value: Any) -> np.ndarray | ak.Array:
        counts = None
        try:
            if self.jagged:
                array = value if isinstance(value, ak.Array) else ak.Array(value)
                flat, offsets = _list_offsets(array) or self._rows(owner, array)
                counts = np.diff(offsets)  # for the row of a value that cannot be read
                return lists(_frozen(flat, self.dtype), offsets)
            array = np.asarray(value)
            if array.dtype.kind in "OUS" and self.dtype.kind in "iufb":
                raise TypeError(f"values of kind {array.dtype.kind!r}")
            array = _frozen(array, self.dtype)
        except ColumnError:
            raise
        except _Lossy as err:  # the row holding the value: list row (jagged), first axis (fixed shape)
            per_row = max(1, int(np.prod(np.shape(value)[1:], dtype=np.int64))) if counts is None else 0
            row = err.index // per_row if per_row else int(np.searchsorted(np.cumsum(counts), err.index, "right"))
            raise self.error(owner, err.reason, row) from None
        except (TypeError, ValueError) as err:
            raise self.error(owner, f"cannot be read as {self.dtype}: {err}") from None
        if array.ndim == 0 and not self.shape:
            array = array.reshape(1)
        if array.shape[1:] != self.shape:
            raise ColumnError(
                f"{owner}: column {self.name!r} has shape {array.shape}, "
                f"expected (n, {', '.join(map(str, self.shape))})"
                if self.shape
                else f"{owner}: column {self.name!r} must be one-dimensional, has shape {array.shape}"
            )
        return array

    def _rows(self, owner: str, array: ak.Array) -> tuple[np.ndarray, np.ndarray]:
        """(flat values, offsets) of a jagged column of any other layout (``_list_offsets``)."""
        if len(array) == 0:
            return np.zeros(0, self.dtype), np.zeros(1, np.int64)
        if array.ndim != 2:
            raise self.error(owner, "must be jagged (one list per row)")
        flat = np.asarray(ak.to_numpy(ak.flatten(array)))
        if flat.dtype.kind in "OUS" and self.dtype.kind in "iufb":
            raise TypeError(f"values of kind {flat.dtype.kind!r}")
        counts = np.asarray(ak.num(array, axis=1), np.int64)
        return flat, np.concatenate([[0], np.cumsum(counts)])


def _list_offsets(array: ak.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """(flat values, offsets from 0) of an awkward array that is one list of plain numbers per
    row (a list-offset array over a one-dimensional numpy array, no parameters such as a string's),
    read without an awkward operation; None for any other layout."""
    layout = array.layout
    if not isinstance(layout, ak.contents.ListOffsetArray) or layout.parameters:
        return None
    content = layout.content
    if not isinstance(content, ak.contents.NumpyArray) or content.parameters or content.data.ndim != 1:
        return None
    offsets = np.asarray(layout.offsets.data, np.int64)
    return np.asarray(content.data)[offsets[0] : offsets[-1]], offsets - offsets[0]


def lists(flat: np.ndarray, offsets: np.ndarray) -> ak.Array:
    """One list per row from the rows' values end to end (``flat``) and their ``offsets`` (rows +
    1, from 0): a jagged column, built without awkward's slower paths (``ak.unflatten``)."""
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), ak.contents.NumpyArray(flat)))


def lossless(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` converted to ``dtype`` where that changes no value (see the module docstring);
    else a ``ValueError`` naming the first value it would change (its flat position as ``index``)."""
    source, dtype = values.dtype, np.dtype(dtype)
    if source.kind == dtype.kind and source.itemsize <= dtype.itemsize:
        return values.astype(dtype)  # the same kind, as wide or wider (or another byte order)
    if source.kind not in "biuf" or dtype.kind not in "biuf":
        raise TypeError(f"values of dtype {source}")
    flat = values.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):  # what a cast breaks is found below
        out = flat.astype(dtype)
        if source.kind == "b":
            bad, why = np.ones(len(flat), bool), "a boolean is not a number"
        elif dtype.kind == "b":
            bad, why = (flat != 0) & (flat != 1), "a boolean is 0 or 1"
        elif dtype.kind in "iu" and source.kind == "f":
            high = 2.0 ** (8 * dtype.itemsize - (dtype.kind == "i"))  # exclusive, exact as a float
            integral = np.isfinite(flat) & (np.trunc(flat) == flat)
            bad = ~integral | (flat < (-high if dtype.kind == "i" else 0.0)) | (flat >= high)
            why = "not an integer" if bad.any() and not integral[np.argmax(bad)] else f"out of range for {dtype}"
        elif dtype.kind in "iu":  # from another integer type
            mine, theirs = np.iinfo(source), np.iinfo(dtype)
            low, high = np.asarray(max(mine.min, theirs.min), source), np.asarray(min(mine.max, theirs.max), source)
            bad = (flat < low) | (flat > high)
            why = f"out of range for {dtype} ({theirs.min}..{theirs.max})"
        elif source.kind in "iu":  # an integer into a float: it must come back unchanged
            high = 2.0 ** (8 * source.itemsize - (source.kind == "i"))
            fits = (out >= (-high if source.kind == "i" else 0.0)) & (out < high)
            bad, why = ~fits | (np.where(fits, out, 0).astype(source) != flat), f"{dtype} cannot hold it exactly"
        else:  # a narrower float: rounded to the declared precision, but not overflowing
            bad, why = np.isfinite(flat) & ~np.isfinite(out), f"too large for {dtype}"
    if bad.any():
        index = int(np.argmax(bad))
        raise _Lossy(index, f"value {flat[index].item()!r} cannot be read as {dtype}: {why}")
    return out.reshape(values.shape)


def _frozen(array: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """A read-only array of ``dtype`` that shares no writeable memory with the caller's; a
    conversion that would change a value raises (:func:`lossless`)."""
    if dtype is not None and array.dtype != dtype:
        out = np.ascontiguousarray(lossless(array, dtype))  # a conversion copies
    elif array.flags.writeable or not array.flags.c_contiguous:
        out = np.array(array, order="C", copy=True)
    else:
        return array.view()
    out.flags.writeable = False
    return out


def column_spec(value: Any) -> str:
    """The spec of an undeclared column, from its values: dtype, fixed shape or jagged."""
    if isinstance(value, ak.Array) or (isinstance(value, list) and value and isinstance(value[0], (list, tuple))):
        array = value if isinstance(value, ak.Array) else ak.Array(value)
        if array.ndim != 2:
            raise ColumnError(f"an undeclared jagged column must have one list per row, got {array.type}")
        flat = ak.to_numpy(ak.flatten(array))
        return f"var*{flat.dtype.str.lstrip('<>=|')}"
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ColumnError(f"an undeclared column must hold numbers, got dtype {array.dtype}")
    base = array.dtype.str.lstrip("<>=|")
    return base if array.ndim <= 1 else f"{base}[{','.join(map(str, array.shape[1:]))}]"


def registered_type(name: str) -> type[Collection] | None:
    """The collection type registered under ``name``, or None."""
    return _REGISTRY.get(name)


def registered_types() -> dict[str, type[Collection]]:
    return dict(_REGISTRY)


class Collection:
    """Base of all data collections; see the module docstring."""

    type_name: ClassVar[str] = "Collection"
    columns: ClassVar[dict[str, str]] = {}
    optional: ClassVar[dict[str, str]] = {}
    parallel: ClassVar[tuple[tuple[str, ...], ...]] = ()
    relations: ClassVar[dict[str, str]] = {}
    codes: ClassVar[dict[str, dict[str, int]]] = {}
    _specs: ClassVar[dict[str, _Column]] = {}
    _generic: ClassVar[bool] = False

    def __init_subclass__(cls, type_name: str | None = None, register: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overlap = set(cls.columns) & set(cls.optional)
        if overlap:
            raise TypeError(f"{cls.__name__}: columns both required and optional: {sorted(overlap)}")
        cls._specs = {n: _Column(n, s) for n, s in {**cls.columns, **cls.optional}.items()}
        for group in cls.parallel:
            bad = [c for c in group if c not in cls._specs or not cls._specs[c].jagged]
            if bad:
                raise TypeError(f"{cls.__name__}: parallel columns must be declared jagged columns: {bad}")
        bad = [c for c in cls.relations if c not in cls._specs]
        if bad:
            raise TypeError(f"{cls.__name__}: relations on undeclared columns {bad}")
        cls.type_name = type_name or cls.__name__
        if not register:
            return
        known = _REGISTRY.get(cls.type_name)
        if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeRegistryError(
                f"collection type name {cls.type_name!r} is taken by {known.__module__}.{known.__qualname__}; "
                f"{cls.__module__}.{cls.__qualname__} must choose another (class X(Collection, type_name=...))"
            )
        _REGISTRY[cls.type_name] = cls  # a re-import of the same class replaces it

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        /,
        *,
        extra: Mapping[str, Any] | None = None,
        targets: Mapping[str, str] | None = None,
        **columns: Any,
    ):
        given = dict(data or {}, **columns)
        name = type(self).__name__
        missing = [c for c in self.columns if given.get(c) is None]
        if missing:
            raise ColumnError(f"{name}: missing required column(s) {missing}")
        unknown = [c for c in given if c not in self._specs]
        if unknown:
            raise ColumnError(
                f"{name}: unknown column(s) {unknown}; known: {sorted(self._specs)} "
                "(pass undeclared columns with extra={...})"
            )
        specs = dict(self._specs)
        for column, value in (extra or {}).items():
            if column in specs:
                raise ColumnError(f"{name}: extra column {column!r} is a declared column; pass it by name")
            spec = value[0] if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) else None
            if spec is not None:
                value = value[1]
            specs[column] = _Column(column, spec or column_spec(value))
            given[column] = value
        self._extra = {c: specs[c] for c in (extra or {})}
        self._data: dict[str, np.ndarray | ak.Array] = {}
        length = None
        for column, value in given.items():
            if value is None:
                continue
            array = specs[column].coerce(name, value)
            if length is None:
                length = len(array)
            elif len(array) != length:
                raise ColumnError(f"{name}: column {column!r} has {len(array)} rows, others have {length}")
            self._data[column] = array
        self._length = length or 0
        self._check_parallel()
        self._targets = self._check_targets(targets or {})

    def _check_parallel(self) -> None:
        for group in self.parallel:
            present = [c for c in group if c in self._data]
            if len(present) < 2:
                continue
            first = np.asarray(ak.num(self._data[present[0]], axis=1))
            for column in present[1:]:
                other = np.asarray(ak.num(self._data[column], axis=1))
                bad = np.flatnonzero(first != other)
                if len(bad):
                    raise ColumnError(
                        f"{type(self).__name__}: columns {present[0]!r} and {column!r} must have lists of equal "
                        f"length in every row; row {int(bad[0])} has {int(first[bad[0]])} and {int(other[bad[0]])}"
                    )

    def _check_targets(self, targets: Mapping[str, str]) -> dict[str, str]:
        bad = [c for c in targets if c not in self.relations]
        if bad:
            raise ColumnError(f"{type(self).__name__}: targets for columns that are not relations: {bad}")
        return {c: str(k) for c, k in targets.items()}

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
        return {"_data": self._data, "_length": self._length, "_extra": self._extra, "_targets": self._targets}

    def __setstate__(self, state: dict) -> None:
        state.setdefault("_extra", {})
        state.setdefault("_targets", {})
        for value in state["_data"].values():
            if isinstance(value, np.ndarray) and value.flags.writeable:
                value.flags.writeable = False
        self.__dict__.update(state)

    @property
    def names(self) -> list[str]:
        """The columns this instance holds."""
        return list(self._data)

    @property
    def specs(self) -> dict[str, str]:
        """Column -> spec of the columns this instance holds (declared and extra)."""
        return {c: (self._extra[c] if c in self._extra else self._specs[c]).spec for c in self._data}

    def spec_of(self, column: str) -> _Column:
        return self._extra[column] if column in self._extra else self._specs[column]

    @property
    def extra_columns(self) -> list[str]:
        return [c for c in self._data if c in self._extra]

    @property
    def targets(self) -> dict[str, str]:
        """Relation column -> store key of the collection its indices point into."""
        return dict(self._targets)

    def target(self, column: str) -> str | None:
        return self._targets.get(column)

    def get(self, column: str, default: Any = None) -> Any:
        return self._data.get(column, default)

    def to_arrays(self) -> dict[str, np.ndarray | ak.Array]:
        return dict(self._data)

    @classmethod
    def schema(cls) -> dict[str, Any]:
        """The declared schema, as stores record it."""
        return {
            "type": cls.type_name,
            "columns": dict(cls.columns),
            "optional": dict(cls.optional),
            "parallel": [list(g) for g in cls.parallel],
            "relations": dict(cls.relations),
        }

    # -- building --------------------------------------------------------------------------------
    def _copy(self, data: dict[str, Any], length: int) -> Collection:
        out = object.__new__(type(self))
        out._data = data
        out._length = length
        out._extra = dict(self._extra)
        out._targets = dict(self._targets)
        return out

    def select(self, rows: np.ndarray | Sequence[int] | slice) -> Collection:
        """A new collection of the same type (targets kept) with the rows picked by a mask,
        indices or a slice."""
        if not isinstance(rows, slice):
            rows = np.asarray(rows)
            if rows.size == 0 and rows.dtype != bool:
                rows = rows.astype(np.int64)  # [] is a float array to numpy
            if rows.dtype == bool and len(rows) != len(self):
                raise ColumnError(f"{type(self).__name__}: mask of length {len(rows)} for {len(self)} rows")
        data = {}
        for k, v in self._data.items():
            picked = v[rows]
            if isinstance(picked, np.ndarray) and picked.flags.writeable:
                picked.flags.writeable = False
            data[k] = picked
        first = next(iter(data.values()), None)
        return self._copy(data, 0 if first is None else len(first))

    def with_columns(self, *, targets: Mapping[str, str] | None = None, **columns: Any) -> Collection:
        """A copy with columns added or replaced; undeclared names become extra columns."""
        declared = {c: v for c, v in {**self._data, **columns}.items() if c in self._specs}
        extra: dict[str, Any] = {c: (self._extra[c].spec, v) for c, v in self._data.items() if c in self._extra}
        for c, v in columns.items():
            if c not in self._specs:
                extra[c] = v
        return type(self)(declared, extra=extra, targets={**self._targets, **(targets or {})})

    @classmethod
    def empty(cls) -> Collection:
        cols = {}
        for name in cls.columns:
            spec = cls._specs[name]
            cols[name] = [] if spec.jagged else np.zeros((0, *spec.shape), spec.dtype)
        return cls(cols)

    @classmethod
    def concat(cls, parts: Sequence[Collection]) -> Collection:
        """The rows of ``parts`` one after the other; they must hold the same columns (in any
        order) and the same targets."""
        if not parts:
            return cls.empty()
        first = parts[0]
        for part in parts[1:]:
            if set(part.names) != set(first.names):
                raise ColumnError(
                    f"{cls.__name__}.concat: parts have different columns {sorted(first.names)} / {sorted(part.names)}"
                )
            if part.targets != first.targets:
                raise ColumnError(f"{cls.__name__}.concat: parts point into different collections")
        out: dict[str, Any] = {}
        for name in first.names:
            values = [p[name] for p in parts]
            out[name] = ak.concatenate(values) if first.spec_of(name).jagged else np.concatenate(values)
        declared = {c: v for c, v in out.items() if c in cls._specs}
        extra = {c: (first.spec_of(c).spec, v) for c, v in out.items() if c not in cls._specs}
        return cls(declared, extra=extra, targets=first.targets)

    def equals(self, other: object) -> bool:
        """Same type, same set of columns and targets, identical values (NaN equal to NaN)."""
        if type(other) is not type(self) or set(other.names) != set(self.names) or len(other) != len(self):
            return False
        if other.targets != self.targets:
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


def from_schema(schema: Mapping[str, Any]) -> type[Collection]:
    """The registered type a recorded schema names, or else a generic (unregistered) type with
    the recorded columns, so that any store stays readable."""
    name = str(schema.get("type", "Collection"))
    known = registered_type(name)
    if known is not None:
        return known
    attrs = {
        "columns": dict(schema.get("columns", {})),
        "optional": dict(schema.get("optional", {})),
        "parallel": tuple(tuple(g) for g in schema.get("parallel", ())),
        "relations": dict(schema.get("relations", {})),
        "_generic": True,
        "__doc__": f"A collection of type {name!r}, read from a store's schema (its class is not loaded).",
    }
    return type(name, (Collection,), attrs, type_name=name, register=False)


class EventInfo(Collection, type_name="EventInfo"):
    """One row: which event this is. ``entry`` is the position in the input, ``event_id`` its id
    and ``run_number`` its run (absent: run 0); ``identity.EventKey.of`` reads the pair."""

    columns = {"entry": "i8", "event_id": "i8"}
    optional = {"run_number": "i8"}
