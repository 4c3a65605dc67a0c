"""The per-event store (whiteboard): one per event, each key written once."""

from __future__ import annotations

import difflib
from typing import Any

__all__ = ["EventStore", "MissingKeyError", "DuplicateKeyError", "similar"]


def similar(key: str, keys: list[str] | set[str]) -> list[str]:
    """Keys that look like ``key`` (for error messages)."""
    pool = sorted(keys)
    close = difflib.get_close_matches(key, pool, n=3, cutoff=0.5)
    close += [k for k in pool if (key in k or k in key) and k not in close and k != key]
    return close[:5]


class MissingKeyError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class DuplicateKeyError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class EventStore:
    """Holds one event's data, keyed by name. Records who wrote each key."""

    __slots__ = ("_data", "_producer")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._producer: dict[str, str] = {}

    def put(self, key: str, value: Any, *, producer: str) -> None:
        if key in self._data:
            raise DuplicateKeyError(
                f"{producer}: key {key!r} was already written by {self._producer[key]} in this event"
            )
        self._data[key] = value
        self._producer[key] = producer

    def get(self, key: str, *, consumer: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            hint = similar(key, set(self._data))
            raise MissingKeyError(
                f"{consumer}: no key {key!r} in the event store"
                + (f"; similar keys: {', '.join(map(repr, hint))}" if hint else f"; it holds {sorted(self._data)}")
            ) from None

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def keys(self) -> list[str]:
        return list(self._data)

    def producer(self, key: str) -> str:
        return self._producer[key]
