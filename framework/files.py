"""The one way recotrig commits an output file: write under a hidden temporary name beside the
target, then rename it into place. A failed or interrupted write leaves nothing under the final
name (and no temporary file behind).

Inside ``transaction()`` (what ``recotrig run`` wraps a run in) the renames wait for the end of
the block: every output of the run appears together, or — when anything fails, a full disk
included — none changes and the temporaries are removed. Temporaries left by a run that was
killed (their name holds its process id) are removed by the next run writing beside them.

ROOT outputs are also reproducible: the same content gives the same bytes (uproot's clock fixed,
UUIDs derived from the file name)."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import secrets
import shutil
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "commit", "discard", "name_uuids", "reproducible_clock", "root_file", "temporary_path",
           "transaction", "write_json"]

_PENDING: list[tuple[Path, Path]] | None = None  # (temporary, final) renames waiting for the transaction
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(final: Path) -> None:
    """Remove the temporaries of ``final`` that dead processes left behind."""
    try:
        siblings = list(final.parent.iterdir())
    except OSError:
        return
    for item in siblings:
        match = _TEMP.match(item.name)
        if match and match["name"] == final.name and not _alive(int(match["pid"])):
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    item.unlink()


def temporary_path(final: str | os.PathLike[str]) -> Path:
    """A fresh hidden name beside ``final`` to write to before ``commit`` puts it in place (a dead
    run's temporaries of the same target are removed first)."""
    final = Path(final)
    _sweep(final)
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def commit(temp: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Put ``temp`` in place as ``final`` — now, or at the end of the open transaction. A
    temporary folder holding ``final``'s name (ROOT files) is removed once emptied."""
    temp, final = Path(temp), Path(final)
    if _PENDING is not None:
        _PENDING.append((temp, final))
        return
    os.replace(temp, final)
    if temp.parent != final.parent and _TEMP.match(temp.parent.name):
        with contextlib.suppress(OSError):
            temp.parent.rmdir()


def discard(temp: str | os.PathLike[str]) -> None:
    """Remove a temporary (and its temporary folder); it is no longer waiting for a transaction."""
    temp = Path(temp)
    global _PENDING
    if _PENDING is not None:
        _PENDING = [(t, f) for t, f in _PENDING if t != temp]
    _remove(temp)
    if _TEMP.match(temp.parent.name):
        with contextlib.suppress(OSError):
            temp.parent.rmdir()


@contextlib.contextmanager
def transaction() -> Iterator[None]:
    """Outputs committed in the block appear together when it ends well, else none changes."""
    global _PENDING
    if _PENDING is not None:  # nested: the outer block decides
        yield
        return
    _PENDING = []
    try:
        yield
    except BaseException:
        pending, _PENDING = _PENDING, None
        for temp, _ in pending:
            discard(temp)
        raise
    pending, _PENDING = _PENDING, None
    for temp, final in pending:
        commit(temp, final)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``final``'s content to; at the end of the block it
    replaces ``final`` (parent folders are created). On an exception it is removed instead."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_path(final)
    with _committed(temp, final):
        yield temp


@contextlib.contextmanager
def _committed(temp: Path, final: Path) -> Iterator[None]:
    """Commit ``temp`` as ``final`` when the block ends well; else discard it (an OSError is
    raised again naming ``final``)."""
    try:
        yield
    except OSError as err:
        discard(temp)
        raise OSError(err.errno, f"cannot write {final}: {err.strerror or err}") from None
    except BaseException:
        discard(temp)
        raise
    commit(temp, final)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented, strict JSON (NaN and infinities as null; keys in the order
    given), atomically."""
    text = json.dumps(_strict(data), indent=1, allow_nan=False)
    with atomic_path(path) as temp:
        with open(temp, "w") as stream:
            stream.write(text + "\n")


def _strict(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if hasattr(value, "tolist"):
        return _strict(value.tolist())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
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
    with _committed(temp, final), reproducible_clock():
        file = uproot.recreate(temp, uuid_function=name_uuids(final.name), **options)
        try:
            yield file
        finally:
            file.close()
