"""The one id-to-row lookup: where each wanted id sits in a column of distinct ids."""

from __future__ import annotations

import numpy as np

__all__ = ["DuplicateIdError", "group_starts", "index_of"]


class DuplicateIdError(ValueError):
    """The ids to look up in are not distinct."""


def index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each ``wanted`` value in ``ids`` (int64), -1 where it is absent.

    ``ids`` must hold distinct values: a repeated id raises ``DuplicateIdError`` naming a few,
    since "the row of id 7" would otherwise be ambiguous.
    """
    ids = np.asarray(ids)
    wanted = np.asarray(wanted)
    order = np.argsort(ids, kind="stable")
    ordered = ids[order]
    if len(ordered) > 1:
        same = ordered[1:] == ordered[:-1]
        if same.any():
            raise DuplicateIdError(f"duplicate ids, e.g. {np.unique(ordered[1:][same])[:5].tolist()}")
    rows = np.full(len(wanted), -1, dtype=np.int64)
    if len(ordered) == 0 or len(wanted) == 0:
        return rows
    pos = np.searchsorted(ordered, wanted)
    inside = pos < len(ordered)
    hit = np.zeros(len(wanted), dtype=bool)
    hit[inside] = ordered[pos[inside]] == wanted[inside]
    rows[hit] = order[pos[hit]]
    return rows


def group_starts(*keys: np.ndarray) -> np.ndarray:
    """Start positions of runs of equal key tuples in arrays already sorted by those keys."""
    n = len(keys[0])
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    change = np.zeros(n, dtype=bool)
    change[0] = True
    for key in keys:
        change[1:] |= key[1:] != key[:-1]
    return np.flatnonzero(change)
