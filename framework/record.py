"""The record of a run: everything needed to say what produced an output and to run it again.

``run_record`` gives a JSON-able dict: every algorithm (class, name, options, store keys), the
error policy and entry range, the versions of Python, recotrig, numpy, awkward, uproot and of what
the algorithms declare they run on (``requires``), and every
file an algorithm reads (options with ``role="input"`` or ``"model"``) with its size and sha256.
It holds nothing that changes from run to run (no time, no host, no number of workers), so equal
runs give equal records; ``recotrig run --config run.json`` re-runs a record.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["DISTRIBUTIONS", "algorithm_entry", "file_entry", "run_record", "versions"]

#: distributions every run uses; algorithms add theirs with ``requires`` (``("pyacts",)``). What
#: only moves events around (an executor's Dask) is not named: it does not change a result.
DISTRIBUTIONS = ("recotrig", "numpy", "awkward", "uproot")

_HASHES: dict[tuple[str, int, int], str] = {}


def versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Python's version and those of ``DISTRIBUTIONS`` and ``extra`` (the installed ones)."""
    out = {"python": platform.python_version()}
    for name in dict.fromkeys([*DISTRIBUTIONS, *sorted(set(extra))]):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _sha256(path: Path) -> str:
    stat = path.stat()
    key = (os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def file_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path", "bytes", "sha256"}`` of a file; a directory (a CSV store) hashes its files'
    relative names and contents in sorted order. A missing path gives ``"missing": true``."""
    p = Path(path)
    if p.is_file():
        return {"path": os.fspath(path), "bytes": p.stat().st_size, "sha256": _sha256(p)}
    if p.is_dir():
        digest = hashlib.sha256()
        size = 0
        for item in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
            digest.update(os.fspath(item.relative_to(p)).encode() + b"\0" + _sha256(item).encode())
            size += item.stat().st_size
        return {"path": os.fspath(path), "bytes": size, "sha256": digest.hexdigest(), "directory": True}
    return {"path": os.fspath(path), "missing": True}


def algorithm_entry(alg: Any) -> dict[str, Any]:
    cls = type(alg)
    return {"name": alg.name, "class": f"{cls.__module__}.{cls.__qualname__}", **alg.settings()}


def run_record(
    algorithms: Iterable[Any],
    *,
    error_policy: str,
    entries: tuple[int, int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    # an algorithm that changes no output (``recorded = False``: what ``recotrig.run(keep=...)``
    # adds to keep collections in memory) is no part of the run's configuration
    algorithms = [a for a in algorithms if getattr(a, "recorded", True)]
    files: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    for alg in algorithms:
        for role, paths in alg.files().items():
            for path in paths:
                if (role, path) not in seen:
                    seen.add((role, path))
                    files.setdefault(role, []).append(file_entry(path))
    return {
        **(extra or {}),
        "entries": list(entries),
        "error_policy": error_policy,
        "algorithms": [algorithm_entry(a) for a in algorithms],
        "files": files,
        "versions": versions(d for a in algorithms for d in getattr(a, "requires", ())),
    }
