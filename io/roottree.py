"""Pieces shared by the ROOT readers: a tree source gives collections for entry ranges.

A ``TreeSource`` reads one TTree (through uproot) and turns entries ``start..stop-1`` of the
store into one ``Collection`` per event for each collection it provides. The recotrig layout,
ACTS's particle tree and ACTS's per-hit tree are three kinds of source.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import awkward as ak
import numpy as np

from recotrig.framework.collection import Collection, ColumnError
from recotrig.io.errors import StoreError

__all__ = ["TreeSource", "build", "check_entries", "flat_content", "offsets_of", "wrapped"]


@contextmanager
def wrapped(
    what: str, *, path: str | os.PathLike[str], tree: str | None = None, event: int | None = None
) -> Iterator[None]:
    """Turn any error from uproot/awkward inside the block into a StoreError naming the file."""
    try:
        yield
    except StoreError:
        raise
    except Exception as err:  # uproot raises many kinds (ValueError, OSError, KeyError, DeserializationError…)
        raise StoreError(f"{what}: {type(err).__name__}: {err}", path=path, tree=tree, event=event) from err


def flat_content(array: Any) -> np.ndarray:
    """The numbers of a per-entry branch as one flat numpy array (jagged ones flattened)."""
    if isinstance(array, ak.Array):
        if array.ndim > 1:
            array = ak.flatten(array, axis=None)
        return ak.to_numpy(array)
    return np.asarray(array)


def check_entries(
    array: Any,
    expected: np.ndarray,
    *,
    says: str,
    path: str | os.PathLike[str],
    tree: str,
    column: str,
    event_ids: np.ndarray,
) -> np.ndarray:
    """The values of a per-entry branch as one flat array, once every entry is seen to hold the
    ``expected[i]`` values that ``says`` (a counter branch) gives it.

    uproot reads each entry's values by the entry's own extent in the file, whatever a counter
    says; splitting all values by a counter that disagrees would move rows from one event to
    another with the total unchanged. A mismatch raises ``StoreError`` naming the file, tree,
    branch and the first event where they disagree, with both counts."""
    if isinstance(array, ak.Array) and array.ndim > 1:
        while array.ndim > 2:
            array = ak.flatten(array, axis=2)
        sizes = np.asarray(ak.num(array, axis=1), dtype=np.int64)
    else:
        sizes = np.ones(len(array), dtype=np.int64)
    if len(sizes) != len(expected):
        raise StoreError(
            f"branch has {len(sizes)} entries where {says} has {len(expected)}",
            path=path,
            tree=tree,
            column=column,
            event=int(event_ids[0]) if len(event_ids) else None,
        )
    bad = np.flatnonzero(sizes != expected)
    if len(bad):
        i = int(bad[0])
        raise StoreError(
            f"the branch holds {int(sizes[i])} values in this event where {says} says {int(expected[i])}",
            path=path,
            tree=tree,
            column=column,
            event=int(event_ids[i]),
        )
    return flat_content(array)


def offsets_of(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def build(
    cls: type[Collection],
    columns: dict[str, Any],
    *,
    path: str | os.PathLike[str],
    tree: str,
    event: int,
    extra: dict[str, str] | None = None,
    targets: dict[str, str] | None = None,
) -> Collection:
    try:
        return cls(
            {name: columns[name] for name in cls._specs if name in columns},
            extra={name: (spec, columns[name]) for name, spec in (extra or {}).items() if name in columns},
            targets=targets,
        )
    except ColumnError as err:  # a value its column cannot hold (a lossy cast), a missing column...
        raise StoreError(err.reason, path=path, tree=tree, event=event, column=err.column, row=err.row) from None
    except ValueError as err:
        raise StoreError(str(err), path=path, tree=tree, event=event) from None


class TreeSource(ABC):
    """One TTree giving one or more collections. ``tree_getter()`` returns the uproot tree."""

    #: kind of layout, shown by ``info()``
    layout: str = ""

    def __init__(self, *, path: str | os.PathLike[str], tree_name: str, tree_getter: Callable[[], Any]):
        self.path = path
        self.tree_name = tree_name
        self._tree = tree_getter

    @property
    def tree(self) -> Any:
        return self._tree()

    @property
    @abstractmethod
    def collections(self) -> dict[str, type[Collection]]:
        """Collection name -> type that this source provides."""

    @property
    @abstractmethod
    def event_ids(self) -> np.ndarray:
        """Event ids this tree holds, in its order."""

    @property
    def entry_aligned(self) -> bool:
        """True when tree entry i is event i (one entry per event)."""
        return True

    def bind(self, store_event_ids: np.ndarray) -> None:
        """Learn the store's event order (sources that are not entry-aligned map ids to rows)."""

    @abstractmethod
    def read(self, start: int, stop: int, names: list[str], event_ids: np.ndarray) -> dict[str, list[Collection]]:
        """Collections ``names`` for store entries start..stop-1 (whose ids are ``event_ids``)."""

    @abstractmethod
    def rows(self) -> dict[str, int | None]:
        """Total rows per collection over the whole tree (for ``info``)."""

    def columns(self, name: str) -> list[str]:
        return list(self.collections[name]._specs)

    def bytes_on_disk(self) -> int:
        with wrapped("cannot inspect the tree", path=self.path, tree=self.tree_name):
            return int(sum(branch.compressed_bytes for branch in self.tree.itervalues(recursive=True)))

    def arrays(self, branches: list[str], start: int, stop: int, *, event: int | None = None) -> dict[str, Any]:
        """Branches for tree entries start..stop-1 (uproot errors wrapped)."""
        tree = self.tree
        missing = [b for b in branches if b not in tree]
        if missing:
            raise StoreError(
                f"missing branch(es) {missing}; the tree has {sorted(tree.keys())}",
                path=self.path,
                tree=self.tree_name,
                column=missing[0],
            )
        with wrapped(f"cannot read entries {start}..{stop - 1}", path=self.path, tree=self.tree_name, event=event):
            return tree.arrays(branches, entry_start=start, entry_stop=stop, library="ak", how=dict)
