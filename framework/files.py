"""The one way recotrig commits its outputs: write under a hidden temporary name beside the
target, then put it in place in one step. A failed or interrupted write leaves nothing under the
final name (and no temporary behind).

Files: ``atomic_path``, ``write_json`` and ``root_file`` write ``.NAME.PID-XXXXXXXX.tmp`` beside
the target and rename it into place.

Directories: ``staged_directory(DIR)`` is the one mechanism for a directory that appears whole or
not at all (the outputs of ``recotrig run``, a firmware directory). It

- takes an exclusive lock on DIR for the whole block (``fcntl.flock`` on ``.DIR.lock`` beside
  it, holding the holder's pid and command). A second recotrig process that wants DIR is refused
  at once with an ``OutputError`` naming the holder; the lock file is removed when the block
  ends (a killed holder's lock file is harmless: the kernel released its lock and the next user
  takes and removes it);
- refuses, before any work, a DIR that is not a directory, that is the current directory (or
  holds it), or that is not empty and fails the caller's ``check`` (for a run: DIR must hold a
  ``run.json`` recorded by recotrig; for firmware: a recotrig firmware manifest and ``--force``);
- yields a new, empty staging directory ``.DIR.PID-XXXXXXXX.tmp`` beside DIR to build into;
- when the block ends well, swaps it in with one ``renameat2(RENAME_EXCHANGE)`` (Linux; where
  the system or file system cannot exchange, DIR is renamed aside and the staging directory
  renamed in its place: two renames, between which DIR is briefly absent but never mixed), then
  removes the previous directory. With ``keep_others`` the entries of the previous directory that
  the block did not write are first carried into the new one (hard links, copies where links
  are refused), so nothing the user put there is lost (what another program creates there in
  the instant between that and the swap is moved over after it); an entry the block writes
  replaces the old one, except that a file never replaces a directory nor a directory a file
  (an ``OutputError`` naming it, and nothing changes). The new directory gets the old one's mode;
  a DIR that is a symbolic link is replaced where it points;
- when the block raises (a failure, Ctrl-C, SIGTERM), removes the staging directory: DIR is
  untouched. A process killed outright (SIGKILL) leaves its staging directory and lock file; the
  next one to use DIR removes the first and takes over the second.

Inside ``transaction(DIR)`` (what ``recotrig run`` wraps a run in) every output under DIR is
written into the staging directory and the whole output directory is swapped in when the run
ends well; an output a sequence writes outside DIR is renamed into place just before the swap
(each such file whole, but not in the same step as DIR). ``transaction()`` without a directory
only defers the renames to the end of the block.

Temporaries carry the process id of their writer: those of dead processes (staging directories,
the previous directory of an interrupted swap, ``temporary_directory`` hand-over folders in the
system temporary directory) are removed by the next writer of the same name. ``commits()`` and
``committed_since()`` say what this process has put in place, so an interrupted command can say
truthfully whether anything was committed.

ROOT outputs are also reproducible: the same content gives the same bytes (uproot's clock fixed,
UUIDs derived from the file name)."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import datetime
import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import types
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "OutputError",
    "Stage",
    "atomic_path",
    "carry_over",
    "commit",
    "commits",
    "committed_since",
    "discard",
    "is_run_output",
    "locked",
    "name_uuids",
    "reproducible_clock",
    "root_file",
    "staged_directory",
    "temporary_directory",
    "temporary_path",
    "transaction",
    "write_json",
]

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
RUN_RECORD = "run.json"  #: what marks a directory as the output of a recotrig run


class OutputError(OSError):
    """An output location recotrig will not or cannot replace: names it and says what to do."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_temporary(name: str, of: str | None = None) -> bool:
    """Whether ``name`` is a temporary (of ``of``) whose writing process has ended."""
    match = _TEMP.match(name)
    return bool(match) and (of is None or match["name"] == of) and not _alive(int(match["pid"]))


def _sweep(final: Path) -> None:
    """Remove the temporaries of ``final`` that dead processes left behind."""
    try:
        siblings = list(final.parent.iterdir())
    except OSError:
        return
    for item in siblings:
        if _dead_temporary(item.name, final.name):
            _remove(item)


def _fresh(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def temporary_path(final: str | os.PathLike[str]) -> Path:
    """A fresh hidden name to write to before ``commit`` puts it in place as ``final``: beside
    ``final``, or in the staging directory when ``final`` lies in the directory of the open
    ``transaction``. The folder it is in is created; a dead run's temporaries of the same target
    are removed first."""
    final = Path(final)
    staged = _TX.staged(final) if _TX is not None else None
    if staged is not None:
        staged.parent.mkdir(parents=True, exist_ok=True)
        return _fresh(staged)
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep(final)
    return _fresh(final)


def temporary_directory(name: str) -> Path:
    """A new private folder ``.NAME.PID-XXXXXXXX.tmp`` in the system temporary directory (for
    files handed to a library); the caller removes it, and those left by dead processes are
    removed when the next one is made."""
    final = Path(tempfile.gettempdir()) / name
    _sweep(final)
    path = _fresh(final)
    path.mkdir(mode=0o700)
    return path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _drop_folder(temp: Path) -> None:
    """Remove the temporary folder that held ``temp`` under its final name (ROOT files), once empty."""
    match = _TEMP.match(temp.parent.name)
    if match and match["name"] == temp.name:
        with contextlib.suppress(OSError):
            temp.parent.rmdir()


# -- what this process has put in place ------------------------------------------------------------
_COMMITS: collections.deque[Path] = collections.deque(maxlen=64)
_COUNT = 0


def commits() -> int:
    """How many outputs (files or directories) this process has put in place so far."""
    return _COUNT


def committed_since(count: int) -> list[Path]:
    """The outputs put in place since ``commits()`` returned ``count`` (at most the newest 64)."""
    new = _COUNT - count
    return list(_COMMITS)[-new:] if new > 0 else []


def _holds(path: Path, inode: int) -> bool:
    try:
        return os.lstat(path).st_ino == inode
    except OSError:
        return False


@contextlib.contextmanager
def _recorded(final: Path, made: Path) -> Iterator[None]:
    """Count ``final`` as put in place by the block that renames ``made`` onto it. When the
    block raises (an interrupt included) it stays counted only if ``final`` is ``made`` now."""
    global _COUNT
    inode = os.lstat(made).st_ino
    _COMMITS.append(final)
    _COUNT += 1
    try:
        yield
    except BaseException:
        if not _holds(final, inode):
            _COMMITS.pop()
            _COUNT -= 1
        raise


def commit(temp: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Put ``temp`` in place as ``final`` — now, or at the end of the open transaction. A
    directory replaces an existing directory in one swap (``_swap``). A temporary folder holding
    ``final``'s name (ROOT files) is removed once emptied."""
    temp, final = Path(temp), Path(final)
    if _TX is not None:
        _TX.pending.append((temp, final))
        return
    if temp.is_dir() and final.is_dir() and not final.is_symlink():  # a directory over a directory: one swap
        if _swap(temp, final):
            shutil.rmtree(temp, ignore_errors=True)  # the previous directory, now at the temporary's name
        return
    with _recorded(final, temp):
        os.replace(temp, final)
    _drop_folder(temp)


def discard(temp: str | os.PathLike[str]) -> None:
    """Remove a temporary (and its temporary folder); it is no longer waiting for a transaction."""
    temp = Path(temp)
    if _TX is not None:
        _TX.pending = [(t, f) for t, f in _TX.pending if t != temp]
    _remove(temp)
    _drop_folder(temp)


# -- directories -------------------------------------------------------------------------------------
@dataclass
class Stage:
    """A directory being built at ``path`` to replace ``target`` (as the caller named it) in one
    step. ``written``: the paths, relative to it, that replace the previous directory's entries
    (with ``keep_others``, every other entry is carried over)."""

    target: Path
    path: Path
    written: set[Path] = field(default_factory=set)

    def relative(self, final: str | os.PathLike[str]) -> Path | None:
        """``final`` relative to the target directory, or None if it lies outside."""
        try:
            rel = Path(os.path.abspath(final)).relative_to(os.path.abspath(self.target))
        except ValueError:
            return None
        return rel if rel.parts else None


@contextlib.contextmanager
def locked(target: str | os.PathLike[str], command: str | None = None) -> Iterator[None]:
    """Hold the exclusive lock of ``target`` for the block: ``fcntl.flock`` on ``.NAME.lock``
    beside it, which holds this process's id and ``command`` and is removed at the end. Another
    process holding it: ``OutputError`` naming that process, at once (no waiting)."""
    target = Path(os.path.abspath(target))
    path = target.with_name(f".{target.name}.lock")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise OutputError(
                err.errno, f"cannot lock {target}: {path}: {err.strerror} (recotrig writes beside an output directory)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096).decode(errors="replace").strip()
            os.close(fd)
            pid, _, what = holder.partition(" ")
            by = f"recotrig process {pid} ({what})" if pid.isdigit() else "another recotrig process"
            raise OutputError(
                errno.EBUSY, f"{target} is in use by {by}; wait for it to end or choose another output directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # its previous holder removed the file meanwhile: lock the one there now
    try:
        what = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {what[:300]}\n".encode(errors="surrogateescape"))
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def is_run_output(path: str | os.PathLike[str]) -> bool:
    """Whether directory ``path`` holds the ``run.json`` record of a recotrig run."""
    try:
        data = json.loads((Path(path) / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return False
    record = data.get("record") if isinstance(data, dict) else None
    return isinstance(record, dict) and "sequence" in record and "algorithms" in record


def _run_output(path: Path) -> None:
    if not is_run_output(path):
        raise OutputError(
            errno.EEXIST,
            f"{path} is not empty and is not the output of a recotrig run (no {RUN_RECORD} "
            "of one): recotrig replaces an output directory as a whole and leaves "
            "other directories alone; choose a new or empty directory",
        )


def _refuse(real: Path, shown: Path, check: Callable[[Path], None] | None) -> None:
    """Raise unless ``real`` may be replaced: absent, or a directory that is not the current one
    and is empty (a dead run's temporaries aside) or passes ``check``."""
    if not os.path.lexists(real):
        return
    if not real.is_dir():
        raise OutputError(errno.ENOTDIR, f"{shown} exists and is not a directory; choose another output directory")
    try:
        here, there = Path.cwd().resolve(), real.resolve()
    except OSError:  # no current directory (it was removed)
        here = there = None
    if here is not None and (here == there or there in here.parents):
        raise OutputError(
            errno.EBUSY,
            f"{shown} is the current directory or holds it, and recotrig replaces "
            "it as a whole: run from outside it, or choose another directory",
        )
    if check is not None and any(not _dead_temporary(name) for name in os.listdir(real)):
        check(shown)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False
    where the C library or the file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"cannot put {b} in place: {os.strerror(code)}")


def _swap(new: Path, target: Path) -> bool:
    """Put directory ``new`` in place as ``target`` in one step. Returns whether a previous
    ``target`` existed: it is then at ``new``'s path, for the caller to remove."""
    with _recorded(target, new):
        if not os.path.lexists(target):
            os.rename(new, target)
            return False
        if _exchange(new, target):
            return True
        # no exchange here: rename the old one aside, then the new one in (target briefly absent)
        aside = _fresh(target)
        os.rename(target, aside)
        try:
            os.rename(new, target)
        except BaseException:
            if not os.path.lexists(target):
                os.rename(aside, target)
            raise
    os.rename(aside, new)
    return True


def _link(src: str, dst: str) -> None:
    """A hard link of ``src`` at ``dst``; a copy where the file system refuses the link."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def carry_over(old: str | os.PathLike[str], new: str | os.PathLike[str], *, leave: Iterable[str] = ()) -> None:
    """Bring into directory ``new`` (about to replace ``old``) the entries of ``old`` it lacks,
    but those named in ``leave``: hard links where the file system allows, else copies."""
    _carry(Path(old), Path(new), set(), move=False, leave=frozenset(leave))


def _carry(
    old: Path, new: Path, written: set[Path], *, move: bool, rel: Path = Path(), leave: frozenset[str] = frozenset()
) -> None:
    """Bring the entries of ``old`` that ``new`` lacks into it: hard links (``move``: renames),
    except the top-level names in ``leave``. A written path replaces the old entry, but a file
    never replaces a directory nor a directory a file (``OutputError`` naming it); directories
    both hold are merged."""
    try:
        entries = list(os.scandir(old / rel))
    except FileNotFoundError:
        return
    for entry in entries:
        if _dead_temporary(entry.name) or (rel == Path() and entry.name in leave):
            continue
        here = rel / entry.name
        dest = new / here
        is_dir = entry.is_dir(follow_symlinks=False)
        if os.path.lexists(dest):
            dest_dir = dest.is_dir() and not dest.is_symlink()
            if is_dir and dest_dir and here not in written:
                _carry(old, new, written, move=move, rel=here)
            elif is_dir != dest_dir and not move:
                kind = {True: "a directory", False: "a file"}
                raise OutputError(
                    errno.EEXIST,
                    f"{old / here} is {kind[is_dir]} and the new output has "
                    f"{kind[dest_dir]} there; move it away or choose another "
                    "output directory",
                )
            continue
        if move:
            os.rename(entry.path, dest)
        elif is_dir:
            shutil.copytree(entry.path, dest, symlinks=True, copy_function=_link)
        else:
            _link(entry.path, str(dest))


@contextlib.contextmanager
def staged_directory(
    target: str | os.PathLike[str],
    *,
    check: Callable[[Path], None] | None = None,
    keep_others: bool = False,
    command: str | None = None,
) -> Iterator[Stage]:
    """Build a directory that replaces ``target`` whole, or not at all (see the module
    docstring): under ``target``'s lock, refuse what may not be replaced (``check`` is called
    with an existing, non-empty ``target`` and raises to refuse), yield a new empty ``Stage``
    beside it, and swap it in when the block ends well; remove it when the block raises."""
    shown = Path(target)
    real = Path(os.path.abspath(shown))
    real = real.resolve() if real.is_symlink() else real
    real.parent.mkdir(parents=True, exist_ok=True)
    with locked(real, command):
        _refuse(real, shown, check)
        _sweep(real)
        stage = Stage(shown, _fresh(real))
        stage.path.mkdir()
        try:
            yield stage
            mode = stat.S_IMODE(real.stat().st_mode) if real.is_dir() else None
            if mode is not None:
                if keep_others:
                    _carry(real, stage.path, stage.written, move=False)
                os.chmod(stage.path, mode | stat.S_IWUSR)  # the previous directory's mode (writable until done)
            if _swap(stage.path, real):  # committed: what follows tidies up and cannot undo it
                with contextlib.suppress(OSError):
                    if keep_others:  # what another program put there in the moment since the carry-over
                        _carry(stage.path, real, stage.written, move=True)
                    if mode is not None and not mode & stat.S_IWUSR:
                        os.chmod(real, mode)
                shutil.rmtree(stage.path, ignore_errors=True)
        except BaseException:
            shutil.rmtree(stage.path, ignore_errors=True)  # the new directory, or the old one after the swap
            raise


# -- the run's transaction ----------------------------------------------------------------------------
@dataclass
class _Transaction:
    stage: Stage | None
    pending: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary, final) renames to do

    def staged(self, final: Path) -> Path | None:
        rel = self.stage.relative(final) if self.stage is not None else None
        return None if rel is None else self.stage.path / rel


_TX: _Transaction | None = None


@contextlib.contextmanager
def transaction(
    directory: str | os.PathLike[str] | None = None, *, check: Callable[[Path], None] | None = _run_output
) -> Iterator[None]:
    """Outputs committed in the block appear together when it ends well, else none changes.

    With ``directory``, outputs under it are written into a ``staged_directory`` (locked;
    ``check`` refuses an existing directory, by default unless it holds a recotrig run record;
    the entries it holds that the block does not write are kept) that is swapped in at the end.
    A nested block joins the outer one."""
    global _TX
    if _TX is not None:
        yield
        return
    with contextlib.ExitStack() as stack:
        stage = None
        if directory is not None:
            stage = stack.enter_context(staged_directory(directory, check=check, keep_others=True))
        _TX = tx = _Transaction(stage)
        try:
            yield
        except BaseException:
            _TX = None
            for temp, _ in tx.pending:
                discard(temp)
            raise
        _TX = None
        try:
            for temp, final in tx.pending:  # into the staging directory: no one sees these renames
                staged = tx.staged(final)
                if staged is not None:
                    staged.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(temp, staged)
                    _drop_folder(temp)
                    stage.written.add(stage.relative(final))
            for temp, final in tx.pending:
                if tx.staged(final) is None:
                    commit(temp, final)
        except BaseException:
            for temp, _ in tx.pending:
                discard(temp)
            raise


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write ``final``'s content to; at the end of the block it
    replaces ``final`` (parent folders are created). On an exception it is removed instead."""
    final = Path(final)
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
    with atomic_path(path) as temp, open(temp, "w") as stream:
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
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.UTC).replace(tzinfo=None)
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
        def now(cls, tz: Any = None) -> datetime.datetime:
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
    folder = temporary_path(final)
    folder.mkdir()
    temp = folder / final.name
    with _committed(temp, final), reproducible_clock():
        file = uproot.recreate(temp, uuid_function=name_uuids(final.name), **options)
        try:
            yield file
        finally:
            file.close()
