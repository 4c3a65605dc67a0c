"""The one way recotrig commits an output file: write under a hidden temporary name beside the
target, then rename it into place. A failed or interrupted write leaves nothing under the final
name (and no temporary file behind). ROOT outputs are also reproducible: the same content gives
the same bytes (uproot's clock fixed, UUIDs derived from the file name)."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "name_uuids", "reproducible_clock", "root_file", "temporary_path", "write_json"]


def temporary_path(final: str | os.PathLike[str]) -> Path:
    """A fresh hidden name beside ``final`` to write to before ``os.replace`` puts it in place."""
    final = Path(final)
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``final``'s content to; at the end of the block it
    replaces ``final`` (parent folders are created). On an exception it is removed instead."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_path(final)
    try:
        yield temp
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented JSON (keys in the order given), atomically."""
    with atomic_path(path) as temp:
        with open(temp, "w") as stream:
            json.dump(data, stream, indent=1, default=_plain)
            stream.write("\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _fixed_time() -> datetime.datetime:
    """The time stamped into written ROOT files: ``SOURCE_DATE_EPOCH`` if set, else 2000-01-01."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch is not None and epoch.isdigit():
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).replace(tzinfo=None)
    return datetime.datetime(2000, 1, 1)


@contextlib.contextmanager
def reproducible_clock() -> Iterator[None]:
    """Make uproot stamp a fixed time into ROOT headers while the block runs.

    uproot writes ``datetime.now()`` into file, directory and tree headers and has no option for
    reproducible output; with a fixed clock (and name-derived UUIDs) the same events give the same
    bytes. The clock is swapped in uproot's writing modules only, and restored afterwards.
    """
    import uproot.writing._cascade as cascade
    import uproot.writing._cascadentuple as cascadentuple
    import uproot.writing._cascadetree as cascadetree

    when = _fixed_time()

    class _Clock(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime.datetime:  # noqa: ARG003
            return when

    shim = types.ModuleType("datetime")
    shim.__dict__.update(vars(datetime))
    shim.datetime = _Clock
    modules = [m for m in (cascade, cascadentuple, cascadetree) if getattr(m, "datetime", None) is datetime]
    for module in modules:
        module.datetime = shim
    try:
        yield
    finally:
        for module in modules:
            module.datetime = datetime


def name_uuids(name: str) -> Any:
    """A UUID function for uproot: UUIDs derived from the file name and a counter, so equal
    content gives equal bytes."""
    count = iter(range(1, 1 << 62))
    return lambda: uuid.uuid5(uuid.NAMESPACE_URL, f"recotrig:{name}:{next(count)}")


@contextlib.contextmanager
def root_file(final: str | os.PathLike[str], **options: Any) -> Iterator[Any]:
    """An uproot file to fill with trees and objects, committed to ``final`` atomically and
    reproducibly when the block ends (removed when it raises). ROOT records a file's own name in
    it, so the file is written under its final name inside a hidden temporary folder."""
    import uproot

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    folder = temporary_path(final)
    folder.mkdir()
    temp = folder / final.name
    try:
        with reproducible_clock():
            file = uproot.recreate(temp, uuid_function=name_uuids(final.name), **options)
            try:
                yield file
            finally:
                file.close()
        os.replace(temp, final)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
