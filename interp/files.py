"""Safe file primitives, knowing nothing of what the files hold: atomic writes, directory
locks, stale temporary files, standard JSON.

- ``atomic_write_bytes``: a temporary file in the same directory, flushed and fsynced, then
  renamed over the target: readers see the old file or the whole new one, never a mix.
- ``DirectoryLock``: an exclusive ``flock`` on ``DIR/.lock``. The kernel releases it when its
  holder exits in any way (SIGKILL included), so a lock is never stale; the holder's PID is
  written into the file so that a refused writer can name it.
- ``json_text``: standard JSON (RFC 8259), which has no NaN or Infinity: non-finite floats
  are written as ``null``, so jq, browsers and pandas read every file.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interp.errors import UserError

LOCK_FILE = ".lock"
_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{4,}\.tmp$")  # atomic_write_bytes'


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is not None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from None  # a full disk names none
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_copy(source: Path, target: Path) -> None:
    """Make ``target`` an atomic copy of the file ``source`` (a hard link where the file
    system has them, else a copied and fsynced file): readers of ``target`` see its old
    content or the whole copy."""
    target = Path(target)
    if target.exists() and os.path.samefile(source, target):
        return  # a link made before: renaming a link over its twin would do nothing
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                raise
            shutil.copyfile(source, tmp)
            fsync_path(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(target.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write_bytes`` of UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def umask() -> int:
    """The process's file-creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_path(path: Path) -> None:
    """Flush a file's (or a directory's entries') written data to disk; nothing if missing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_file_target(name: str) -> str | None:
    """The file name an ``atomic_write_bytes`` temporary file ``name`` was to replace, or None
    if ``name`` is not such a temporary file."""
    match = _TEMP_FILE.match(name)
    return match["name"] if match else None


def remove_stale_temp_files(directory: Path, owned: Callable[[str], bool]) -> list[Path]:
    """Remove the temporary files that writers killed mid-write left in ``directory`` (not
    recursive): those whose target name ``owned`` accepts. Call it only while holding the
    directory's lock, so that no live writer's file is taken. Returns the removed paths."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        target = temp_file_target(entry.name)
        if target is not None and owned(target) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


class DirectoryLock:
    """An exclusive OS lock on a directory (``flock`` on ``DIR/.lock``), held until
    ``release`` or the holder's exit. Use as a context manager or release it explicitly."""

    def __init__(self, directory: Path, fd: int):
        self.directory = Path(directory)
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: Path, what: str = "written") -> DirectoryLock:
        """Lock ``directory`` (which must exist) without waiting. UserError naming the holder's
        PID if another process (or another writer in this one) holds it; ``what`` says what
        the holder is doing ("written", "analysed")."""
        directory = Path(directory)
        path = directory / LOCK_FILE
        try:  # never through a link: the PID written below would land in the link's target
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            fd = None
        if fd is None or not _plain_file(fd):
            if fd is not None:
                os.close(fd)
            raise UserError(f"{path} is a link, not a lock file interp made (a run copied "
                            "with its links?); remove it (rm) and try again")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = _read_pid(fd)
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise UserError(f"{directory} is being {what} by another process"
                            f"{f' (PID {holder})' if holder else ''}; wait for it to finish "
                            "or stop it, then try again") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(directory, fd)

    def release(self) -> None:
        """Give the lock up (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def reserve_open_files(count: int) -> None:
    """Make room for ``count`` more open files (the locks of many runs written at once):
    raise the soft limit towards the hard one. UserError if even the hard limit is too low."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = count + 256  # what the process opens besides
    if needed <= soft or soft == resource.RLIM_INFINITY:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise UserError(f"writing {count} runs at once needs {needed} open files, and this "
                        f"process may open {hard} (ulimit -Hn); train fewer runs together")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _plain_file(fd: int) -> bool:
    """Whether ``fd`` is a regular file with one name (not a device, not a hard link)."""
    status = os.fstat(fd)
    return stat.S_ISREG(status.st_mode) and status.st_nlink == 1


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""


_PATH_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.,=+-]*$")
MAX_NAME_BYTES = 128


def check_path_name(name: str, what: str) -> str:
    """``name`` if it is safe as one component of a path: letters, digits and ``_.,=+-``,
    not starting with a dot or dash (no separators, no ``..``), at most ``MAX_NAME_BYTES``
    bytes; else UserError saying so (``what`` names where it came from)."""
    if not isinstance(name, str) or not _PATH_NAME.match(name) or ".." in name:
        raise UserError(f"{what} {name!r} cannot name a directory: use letters, digits and "
                        "_ . , = + - only (no '/', no '..', not starting with '.' or '-')")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise UserError(f"{what} {name[:40]!r}... is {len(name.encode())} bytes long; names of "
                        f"directories are limited to {MAX_NAME_BYTES} bytes")
    return name


def json_ready(value: Any) -> Any:
    """``value`` as plain JSON data: tensors and numpy values as lists/numbers, tuples as
    lists, paths as strings, and non-finite floats (NaN, +-Infinity) as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars
        return json_ready(value.tolist())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_text(value: Any, indent: int | None = None) -> str:
    """Standard JSON for ``value`` (``json_ready``: NaN and Infinity become null)."""
    return json.dumps(json_ready(value), indent=indent, allow_nan=False)


def check_output_dir(path: Path, fix: str = "choose another --out", writable: bool = True
                     ) -> None:
    """UserError (saying ``fix``) unless ``path`` is a directory or can be made one: it is
    not a file, no ancestor is a file, and (``writable``) the nearest existing one is
    writable. Creates nothing, so a command can check its outputs before doing any work."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file, not a directory ({fix})")
    existing = path
    while not existing.exists():  # an ancestor that is a file does not "exist" below it
        if os.path.lexists(existing) or existing.parent == existing:
            break  # a dangling symlink, or the root: let the OS report it when writing
        existing = existing.parent
        if existing.exists() and not existing.is_dir():
            raise UserError(f"{path}: {existing} is a file, not a directory ({fix})")
    if not writable or not existing.is_dir() or os.access(existing, os.W_OK | os.X_OK):
        return
    read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
    reason = "is on a read-only file system" if read_only else "is not writable"
    where = f"{path}: {existing}" if existing != path else str(path)
    raise UserError(f"{where} {reason} ({fix})")
