"""Reading ACTS's own ROOT layouts (files written by the ACTS Examples ROOT writers).

* ``particles`` tree of RootParticleWriter: one entry per event, ``event_id`` plus one vector per
  quantity (``particle_type``, ``vx`` … ``vt``, ``px`` … ``pz``, ``q``, ``m``, barcode parts
  ``vertex_primary``, ``vertex_secondary``, ``particle``, ``generation``, ``sub_particle`` or an
  older ``particle_id``, ``number_of_hits``…). Gives ``particles`` and ``vertices``.
* hits tree of RootSimHitWriter: **one entry per simulated hit**, ``event_id`` per hit,
  ``geometry_id``, ``tx`` … ``tt``, ``tpx`` … ``te``, ``volume_id``, ``layer_id``,
  ``sensitive_id`` and the barcode as ``barcode_vertex_primary`` … (ACTS ≤ 48), a ``barcode``
  vector (newer) or ``particle_id`` (older). Gives ``hits`` and ``truth``.

Conversions: ACTS writes times in mm (c·t); they become ns. Barcodes become one int64
``particle_id`` (see :func:`encode_barcode`). Hit ids are the hit's position in its event
(0, 1, …), shared by ``hits`` and ``truth``. ``Particles.vertex_id`` is the barcode's primary
vertex number; ``vertices`` holds one row per primary vertex, placed at the production point of
its generation-0 particles (``n_charged``: charged generation-0 particles of that vertex).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recotrig.edm import Collection, Hits, HitTruth, Particles, TruthVertices
from recotrig.io.errors import StoreError
from recotrig.io.roottree import TreeSource, build, check_entries, flat_content, offsets_of, wrapped

__all__ = [
    "BARCODE_BITS",
    "SPEED_OF_LIGHT",
    "ActsHitsTree",
    "ActsParticlesTree",
    "decode_barcode",
    "encode_barcode",
    "is_acts_hits",
    "is_acts_particles",
]

#: mm per ns: ACTS stores times as lengths (c = 1)
SPEED_OF_LIGHT = 299.792458
#: bits of each barcode part in the packed int64 particle id, most significant first
BARCODE_BITS = {"vertex_primary": 12, "vertex_secondary": 12, "particle": 16, "generation": 8, "sub_particle": 16}
_BARCODE_PARTS = list(BARCODE_BITS)
_PARTICLES_NEEDED = {"event_id", "particle_type", "vx", "vy", "vz", "px", "py", "pz", "q"}
_HITS_NEEDED = {"event_id", "geometry_id", "tx", "ty", "tz"}


def encode_barcode(
    vertex_primary: Any, vertex_secondary: Any, particle: Any, generation: Any, sub_particle: Any
) -> np.ndarray:
    """Pack barcode parts into int64 ids: 12|12|16|8|16 bits, the classic ACTS barcode value.

    Raises ValueError if a part does not fit its bits.
    """
    value = np.zeros(np.shape(vertex_primary), dtype=np.uint64)
    for name, part in zip(_BARCODE_PARTS, (vertex_primary, vertex_secondary, particle, generation, sub_particle)):
        bits = BARCODE_BITS[name]
        part = np.asarray(part).astype(np.int64)
        if part.size and (part.min() < 0 or part.max() >= 1 << bits):
            raise ValueError(f"barcode part {name} = {int(part.max())} does not fit in {bits} bits")
        value = (value << np.uint64(bits)) | part.astype(np.uint64)
    return value.view(np.int64)


def decode_barcode(particle_id: Any) -> dict[str, np.ndarray]:
    """Inverse of :func:`encode_barcode`."""
    value = np.asarray(particle_id, dtype=np.int64).view(np.uint64)
    out: dict[str, np.ndarray] = {}
    shift = 0
    for name in reversed(_BARCODE_PARTS):
        bits = BARCODE_BITS[name]
        out[name] = ((value >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        shift += bits
    return {name: out[name] for name in _BARCODE_PARTS}


def is_acts_particles(keys: set[str]) -> bool:
    return keys >= _PARTICLES_NEEDED


def is_acts_hits(keys: set[str]) -> bool:
    return keys >= _HITS_NEEDED and "particle_type" not in keys


class ActsParticlesTree(TreeSource):
    """RootParticleWriter's tree: one entry per event, vector branches."""

    layout = "acts-particles"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._keys = set(self.tree.keys())
        self._has_parts = set(_BARCODE_PARTS) <= self._keys
        with wrapped("cannot read the event ids", path=self.path, tree=self.tree_name):
            self._ids = np.asarray(self.tree["event_id"].array(library="np"), dtype=np.int64)

    @property
    def collections(self) -> dict[str, type[Collection]]:
        out: dict[str, type[Collection]] = {"particles": Particles}
        if self._has_parts:
            out["vertices"] = TruthVertices
        return out

    @property
    def event_ids(self) -> np.ndarray:
        return self._ids

    def columns(self, name: str) -> list[str]:
        if name == "vertices":
            return ["vertex_id", "x", "y", "z", "t", "n_charged"]
        optional = {"vt": "vt", "pdg": "particle_type", "mass": "m", "nhits": "number_of_hits"}
        cols = list(Particles.columns) + [c for c, b in optional.items() if b in self._keys]
        return cols + (["vertex_id"] if self._has_parts else [])

    def rows(self) -> dict[str, int | None]:
        with wrapped("cannot read the particle counts", path=self.path, tree=self.tree_name):
            out: dict[str, int | None] = {"particles": int(_num(self.tree["vx"]).sum())}
        if self._has_parts:
            out["vertices"] = None  # not known without reading every event
        return out

    def read(self, start: int, stop: int, names: list[str], event_ids: np.ndarray) -> dict[str, list[Collection]]:
        optional = ["vt", "m", "number_of_hits", "particle_id", *(_BARCODE_PARTS if self._has_parts else [])]
        branches = sorted(_PARTICLES_NEEDED - {"event_id"}) + [b for b in optional if b in self._keys]
        data = self.arrays(branches, start, stop, event=int(event_ids[0]))
        with wrapped(f"cannot convert entries {start}..{stop - 1}", path=self.path, tree=self.tree_name):
            import awkward as ak

            counts = np.asarray(ak.num(data["vx"], axis=1), dtype=np.int64)
            flat = {
                b: check_entries(
                    data[b],
                    counts,
                    says="the branch 'vx'",
                    path=self.path,
                    tree=self.tree_name,
                    column=b,
                    event_ids=event_ids,
                )
                for b in branches
            }
        rows = offsets_of(counts)
        columns: dict[str, np.ndarray] = {c: flat[c] for c in ("vx", "vy", "vz", "px", "py", "pz")}
        columns["q"] = flat["q"]  # float in ACTS: read as an integer only where it is a whole number
        columns["pdg"] = flat["particle_type"]
        if "vt" in flat:
            columns["vt"] = flat["vt"].astype(np.float64) / SPEED_OF_LIGHT
        if "m" in flat:
            columns["mass"] = flat["m"]
        if "number_of_hits" in flat:
            columns["nhits"] = flat["number_of_hits"]
        if self._has_parts:
            try:
                columns["particle_id"] = encode_barcode(*(flat[p] for p in _BARCODE_PARTS))
            except ValueError as err:
                raise StoreError(str(err), path=self.path, tree=self.tree_name, event=int(event_ids[0])) from None
            columns["vertex_id"] = flat["vertex_primary"].astype(np.int64)
        elif "particle_id" in flat:
            columns["particle_id"] = flat["particle_id"].astype(np.uint64).view(np.int64)
        else:
            columns["particle_id"] = np.arange(rows[-1], dtype=np.int64) - np.repeat(rows[:-1], counts) + 1
        out: dict[str, list[Collection]] = {"particles": [], "vertices": []}
        for i, event in enumerate(event_ids):
            part = {c: v[rows[i] : rows[i + 1]] for c, v in columns.items()}
            if "particles" in names:
                out["particles"].append(build(Particles, part, path=self.path, tree=self.tree_name, event=int(event)))
            if "vertices" in names:
                gen = flat["generation"][rows[i] : rows[i + 1]]
                sec = flat["vertex_secondary"][rows[i] : rows[i + 1]]
                out["vertices"].append(self._vertices(part, (gen == 0) & (sec == 0), int(event)))
        return out

    def _vertices(self, part: dict[str, np.ndarray], primary: np.ndarray, event: int) -> Collection:
        vertex = part["vertex_id"][primary]
        ids, first = np.unique(vertex, return_index=True)
        charged = np.bincount(np.searchsorted(ids, vertex[part["q"][primary] != 0]), minlength=len(ids))
        values = {
            "vertex_id": ids,
            "x": part["vx"][primary][first],
            "y": part["vy"][primary][first],
            "z": part["vz"][primary][first],
            "n_charged": charged.astype(np.int32),
        }
        if "vt" in part:
            values["t"] = part["vt"][primary][first]
        return build(TruthVertices, values, path=self.path, tree=self.tree_name, event=event)


def _num(branch: Any) -> np.ndarray:
    """Entries' list lengths of a vector branch (reads the branch)."""
    import awkward as ak

    return np.asarray(ak.num(branch.array(library="ak"), axis=1))


class ActsHitsTree(TreeSource):
    """RootSimHitWriter's tree: one entry per hit, hits of an event contiguous."""

    layout = "acts-hits"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._keys = set(self.tree.keys())
        with wrapped("cannot read the event ids", path=self.path, tree=self.tree_name):
            per_hit = np.asarray(self.tree["event_id"].array(library="np"), dtype=np.int64)
        starts = np.flatnonzero(np.diff(per_hit, prepend=per_hit[:1] - 1)) if len(per_hit) else np.zeros(0, np.int64)
        self._run_ids = per_hit[starts]
        unique, seen = np.unique(self._run_ids, return_counts=True)
        if np.any(seen > 1):
            raise StoreError(
                f"the hits of event {int(unique[seen > 1][0])} are not contiguous in the tree",
                path=self.path,
                tree=self.tree_name,
            )
        self._run_starts = starts
        self._run_stops = np.append(starts[1:], len(per_hit)).astype(np.int64)
        self._ranges: dict[int, tuple[int, int]] = {}

    @property
    def collections(self) -> dict[str, type[Collection]]:
        return {"hits": Hits, "truth": HitTruth}

    @property
    def event_ids(self) -> np.ndarray:
        return self._run_ids

    @property
    def entry_aligned(self) -> bool:
        return False

    def bind(self, store_event_ids: np.ndarray) -> None:
        self._ranges = {int(e): (int(a), int(b)) for e, a, b in zip(self._run_ids, self._run_starts, self._run_stops)}

    def columns(self, name: str) -> list[str]:
        if name == "hits":
            extra = {"t": "tt", "volume_id": "volume_id", "layer_id": "layer_id", "module_id": "sensitive_id"}
            return ["hit_id", "x", "y", "z", *[c for c, b in extra.items() if b in self._keys], "geometry_id"]
        extra = ["tt", "tpx", "tpy", "tpz"]
        return ["hit_id", "particle_id", "tx", "ty", "tz", *[c for c in extra if c in self._keys]]

    def rows(self) -> dict[str, int]:
        n = int(self.tree.num_entries)
        return {"hits": n, "truth": n}

    def _barcode_branches(self) -> list[str]:
        parts = [f"barcode_{p}" for p in _BARCODE_PARTS]
        if set(parts) <= self._keys:
            return parts
        for name in ("barcode", "particle_id"):
            if name in self._keys:
                return [name]
        return []

    def read(self, start: int, stop: int, names: list[str], event_ids: np.ndarray) -> dict[str, list[Collection]]:
        ranges = [self._ranges.get(int(e), (0, 0)) for e in event_ids]
        filled = [r for r in ranges if r[1] > r[0]]
        lo = min((r[0] for r in filled), default=0)
        hi = max((r[1] for r in filled), default=0)
        optional = ["tt", "volume_id", "layer_id", "sensitive_id", "tpx", "tpy", "tpz"]
        branches = [
            "geometry_id",
            "tx",
            "ty",
            "tz",
            *[b for b in optional if b in self._keys],
            *self._barcode_branches(),
        ]
        flat: dict[str, np.ndarray] = {}
        if hi > lo:
            data = self.arrays(branches, lo, hi, event=int(event_ids[0]))
            with wrapped(f"cannot convert hit entries {lo}..{hi - 1}", path=self.path, tree=self.tree_name):
                flat = {b: flat_content(data[b]) for b in branches}
                if "barcode" in flat:
                    flat["barcode"] = flat["barcode"].reshape(-1, len(_BARCODE_PARTS))
        out: dict[str, list[Collection]] = {"hits": [], "truth": []}
        for event, (a, b) in zip(event_ids, ranges):
            event = int(event)
            rows = slice(a - lo, b - lo) if b > a else slice(0, 0)
            col = {k: v[rows] for k, v in flat.items()} if flat else {k: np.zeros(0) for k in branches}
            n = b - a
            hit_id = np.arange(n, dtype=np.int64)
            if "hits" in names:
                hits = {
                    "hit_id": hit_id,
                    "x": col["tx"],
                    "y": col["ty"],
                    "z": col["tz"],
                    "geometry_id": col["geometry_id"],
                }
                if "tt" in col:
                    hits["t"] = col["tt"].astype(np.float64) / SPEED_OF_LIGHT
                for mine, theirs in (
                    ("volume_id", "volume_id"),
                    ("layer_id", "layer_id"),
                    ("module_id", "sensitive_id"),
                ):
                    if theirs in col:
                        hits[mine] = col[theirs]
                out["hits"].append(build(Hits, hits, path=self.path, tree=self.tree_name, event=event))
            if "truth" in names:
                truth = {"hit_id": hit_id, "particle_id": self._particle_ids(col, n, event)}
                truth.update({k: col[k] for k in ("tx", "ty", "tz", "tpx", "tpy", "tpz") if k in col})
                if "tt" in col:
                    truth["tt"] = col["tt"].astype(np.float64) / SPEED_OF_LIGHT
                out["truth"].append(build(HitTruth, truth, path=self.path, tree=self.tree_name, event=event))
        return out

    def _particle_ids(self, col: dict[str, np.ndarray], n: int, event: int) -> np.ndarray:
        try:
            if "barcode_vertex_primary" in col:
                return encode_barcode(*(col[f"barcode_{p}"] for p in _BARCODE_PARTS))
            if "barcode" in col:
                return encode_barcode(*(col["barcode"][:, i] for i in range(len(_BARCODE_PARTS))))
        except ValueError as err:
            raise StoreError(str(err), path=self.path, tree=self.tree_name, event=event) from None
        if "particle_id" in col:
            return col["particle_id"].astype(np.uint64).view(np.int64)
        raise StoreError(
            "no barcode branches (barcode_*, barcode or particle_id)", path=self.path, tree=self.tree_name, event=event
        )
