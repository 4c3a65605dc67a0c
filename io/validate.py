"""The one validation layer for event data read from a store: garbage in gives a clear error, not
numbers out.

``validate_event`` checks one event's standard collections (hits, particles, truth, truth
vertices, cells) as they come out of a store:

- every float column is finite, and every column named in ``DOMAINS`` (the one table of value
  domains) is within its domain: positions, momenta and times within physical bounds (|value| <=
  1e6 mm, 1e6 GeV, 1e6 ns: a detector is not a kilometre wide, a readout not a millisecond long),
  the charge one of -1, 0, +1, TrackML weights and ids, detector codes and counts not negative;
- ids are distinct: ``hit_id`` in hits and in truth, ``particle_id`` in particles, ``vertex_id``;
- truth and hits describe the same hits (every hit has a truth row and no truth row names an
  unknown hit), and every truth particle other than noise (0) is in the particle table.

A problem raises ``StoreError`` naming the file, the event, the collection (as ``tree``), the
column and the first bad row; under ``--error-policy skip`` the event is skipped and counted.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

from recotrig.framework.collection import Collection
from recotrig.io.errors import StoreError

__all__ = ["DOMAINS", "validate_event"]

#: column -> the values it may hold: (lowest, highest), both accepted, or the set of values accepted.
#: Float columns are also finite; a column not listed is only checked to be finite. Integer columns
#: already hold integers in their type's range: a store value that is not is refused when the
#: collection is built (``framework.collection.lossless``).
DOMAINS: dict[str, tuple[float, float] | frozenset[int]] = {
    **dict.fromkeys(("x", "y", "z", "vx", "vy", "vz", "tx", "ty", "tz", "loc0", "loc1"), (-1000000.0, 1000000.0)),  # mm
    **dict.fromkeys(("px", "py", "pz", "tpx", "tpy", "tpz", "energy", "mass"), (-1000000.0, 1000000.0)),  # GeV
    **dict.fromkeys(("t", "vt", "tt"), (-1000000.0, 1000000.0)),  # ns
    # e: the charges of the particles the simulation and TrackML hold, the tracking's hypothesis
    "q": frozenset({-1, 0, 1}),
    # TrackML hit weights: a negative weight makes the score meaningless
    "weight": (0.0, math.inf),
    # ids, detector codes and counts; particle_id (an ACTS barcode may set the sign bit) and pdg
    # (antiparticles) are signed by definition
    **dict.fromkeys(
        (
            "hit_id",
            "vertex_id",
            "volume_id",
            "layer_id",
            "module_id",
            "ch0",
            "ch1",
            "nhits",
            "n_charged",
            "n_reconstructable",
        ),
        (0, math.inf),
    ),
}
_IDS = {"hits": "hit_id", "truth": "hit_id", "particles": "particle_id", "vertices": "vertex_id"}


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _outside(column: str, values: np.ndarray) -> tuple[np.ndarray, str] | None:
    """Rows of a flat column outside its domain, and the domain in words (None: no domain)."""
    domain = DOMAINS.get(column)
    if domain is None or values.ndim != 1:
        return None
    if isinstance(domain, frozenset):
        allowed = sorted(domain)
        return ~np.isin(values, allowed), f"is not an allowed value ({column} in {{{', '.join(map(str, allowed))}}})"
    low, high = domain
    if low == -high:
        return np.abs(values) > high, f"is beyond the physical bound |{column}| <= {high:g}"
    if high == math.inf:
        return values < low, f"is out of range ({column} >= {low:g})"
    return (values < low) | (values > high), f"is out of range ({low:g} <= {column} <= {high:g})"


def _check_numbers(name: str, collection: Collection, path: str | os.PathLike[str] | None, event: int) -> None:
    for column in collection.names:
        values = collection[column]
        if not isinstance(values, np.ndarray) or values.dtype.kind not in "iuf":
            continue
        if values.dtype.kind == "f":
            flat = values.reshape(len(values), -1) if values.ndim > 1 else values[:, None]
            bad = ~np.isfinite(flat).all(axis=1)
            if bad.any():
                row = _first(bad)
                value = float(flat[row][~np.isfinite(flat[row])][0])
                raise StoreError(
                    f"non-finite value {value!r}", path=path, event=event, tree=name, column=column, row=row
                )
        outside = _outside(column, values)
        if outside is not None and outside[0].any():
            row = _first(outside[0])
            raise StoreError(
                f"value {values[row].item()!r} {outside[1]}", path=path, event=event, tree=name, column=column, row=row
            )


def _check_distinct(name: str, collection: Collection, path: str | os.PathLike[str] | None, event: int) -> None:
    column = _IDS.get(name)
    if column is None or column not in collection:
        return
    ids = np.asarray(collection[column])
    order = np.argsort(ids, kind="stable")
    same = ids[order][1:] == ids[order][:-1]
    if same.any():
        row = int(order[1:][same][0])
        raise StoreError(
            f"{column} {int(ids[row])} appears more than once",
            path=path,
            event=event,
            tree=name,
            column=column,
            row=row,
        )


def validate_event(
    event: Mapping[str, Collection | None], *, path: str | os.PathLike[str] | None, event_id: int
) -> None:
    """Check one event's collections (store names: hits, particles, truth, vertices, cells)."""
    for name, collection in event.items():
        if collection is None:
            continue
        _check_numbers(name, collection, path, event_id)
        _check_distinct(name, collection, path, event_id)
    hits, truth, particles = event.get("hits"), event.get("truth"), event.get("particles")
    if hits is not None and truth is not None:
        known = np.isin(np.asarray(truth["hit_id"]), np.asarray(hits["hit_id"]))
        if not known.all():
            row = _first(~known)
            raise StoreError(
                f"truth row names hit_id {int(truth['hit_id'][row])}, which is not in the hits",
                path=path,
                event=event_id,
                tree="truth",
                column="hit_id",
                row=row,
            )
        if len(truth) != len(hits):
            covered = np.isin(np.asarray(hits["hit_id"]), np.asarray(truth["hit_id"]))
            row = _first(~covered)
            raise StoreError(
                f"the truth table has {len(truth)} rows for {len(hits)} hits: hit_id "
                f"{int(hits['hit_id'][row])} has no truth row",
                path=path,
                event=event_id,
                tree="hits",
                column="hit_id",
                row=row,
            )
    if truth is not None and particles is not None:
        pid = np.asarray(truth["particle_id"])
        real = pid != 0
        known = np.isin(pid, np.asarray(particles["particle_id"])) | ~real
        if not known.all():
            row = _first(~known)
            raise StoreError(
                f"truth row names particle_id {int(pid[row])}, which is not in the particle table",
                path=path,
                event=event_id,
                tree="truth",
                column="particle_id",
                row=row,
            )
