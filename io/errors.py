"""The one error type of the event stores.

Every problem found while opening, reading or writing a store is raised as ``StoreError``, whose
message names the file and, where they are known, the event, the tree, the column and the row.
The same facts are kept as attributes for code that wants to react to them.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["StoreError", "describe"]


def describe(
    *,
    path: str | os.PathLike[str] | None = None,
    event: int | None = None,
    tree: str | None = None,
    column: str | None = None,
    row: int | None = None,
) -> str:
    """``file X, event 7, tree 'hits', column 'x', row 12``: the parts that are known."""
    parts = []
    if path is not None:
        parts.append(f"file {os.fspath(path)}")
    if event is not None:
        parts.append(f"event {event}")
    if tree is not None:
        parts.append(f"tree {tree!r}")
    if column is not None:
        parts.append(f"column {column!r}")
    if row is not None:
        parts.append(f"row {row}")
    return ", ".join(parts)


class StoreError(ValueError):
    """An event store could not be opened, read or written.

    ``path``, ``event``, ``tree``, ``column`` and ``row`` (0-based data row) are set where known
    and are part of the message.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        event: int | None = None,
        tree: str | None = None,
        column: str | None = None,
        row: int | None = None,
    ):
        where = describe(path=path, event=event, tree=tree, column=column, row=row)
        super().__init__(f"{where}: {message}" if where else message)
        self.path = os.fspath(path) if path is not None else None
        self.event = event
        self.tree = tree
        self.column = column
        self.row = row

    def __reduce__(self) -> tuple[Any, ...]:  # keep the attributes across pickling (executors)
        return (_rebuild, (type(self), self.args[0], self.path, self.event, self.tree, self.column, self.row))


def _rebuild(cls: type[StoreError], text: str, path: Any, event: Any, tree: Any, column: Any, row: Any) -> StoreError:
    error = cls.__new__(cls)
    ValueError.__init__(error, text)
    error.path, error.event, error.tree, error.column, error.row = path, event, tree, column, row
    return error
