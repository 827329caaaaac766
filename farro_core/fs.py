"""File-system primitives that make every FARRO transaction crash-safe.

Every write is: temp file in the same directory, fsync, rename over the name,
fsync the directory. Every move of a job is one rename of its directory, then an
fsync of both parents. Nothing here follows a symlink: files are opened with
``O_NOFOLLOW`` relative to a directory descriptor. An fsync that fails raises
:class:`DurabilityError` and is never retried: the kernel may have dropped the
dirty pages, so a retry could report success for data that is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from farro_core.bounded import MAX_DEPTH, loads_json
from farro_core.errors import AlreadyExists, DurabilityError, RootError

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
O_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
O_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync(fd: int) -> None:
    """fsync, turning failure into a fatal, never-retried :class:`DurabilityError`."""
    try:
        os.fsync(fd)
    except OSError as exc:
        raise DurabilityError(f"fsync failed ({exc.strerror}); the change was abandoned") from exc


def open_dir(path: Path | str, dir_fd: int | None = None) -> int:
    """Open a directory without following a symlink in its last component."""
    return os.open(path, O_DIR, dir_fd=dir_fd)


def fsync_dir(path: Path | str) -> None:
    fd = open_dir(path)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def unique_suffix() -> str:
    return f"{os.getpid()}.{secrets.token_hex(6)}"


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_at(
    dir_fd: int, name: str, data: bytes, mode: int = 0o600, *, durable: bool = True
) -> None:
    """Atomically replace ``name`` in the directory ``dir_fd`` with ``data``.

    ``durable=False`` skips both fsyncs: still atomic for readers, but a crash may
    lose it. Only for derived files that are rewritten when missing (never job state).
    """
    tmp = f"{name}.tmp.{unique_suffix()}"
    fd = os.open(tmp, O_CREATE, 0o600, dir_fd=dir_fd)
    try:
        try:
            os.fchmod(fd, mode)  # exact, whatever the umask
            write_all(fd, data)
            if durable:
                fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    if durable:
        fsync(dir_fd)


def write_file(path: Path, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``data`` (see :func:`write_at`)."""
    dfd = open_dir(path.parent)
    try:
        write_at(dfd, path.name, data, mode, durable=durable)
    finally:
        os.close(dfd)


def write_json(path: Path, body: Any, *, indent: int | None = None, durable: bool = True) -> None:
    """Atomically replace ``path`` with ``body`` as one line of JSON (or indented), 0600."""
    write_file(path, (json.dumps(body, indent=indent) + "\n").encode(), durable=durable)


def open_read(dir_fd: int | None, name: str | Path) -> int:
    """Open a regular file for reading: the one way FARRO opens a file under a root.

    No symlink is followed (``O_NOFOLLOW``), the open never blocks (``O_NONBLOCK``:
    a planted FIFO would otherwise hang the reader until a writer came), and
    anything but a regular file is refused after ``fstat``. Raises
    ``FileNotFoundError`` when absent and ``ValueError`` with a reason otherwise.
    """
    try:
        fd = os.open(name, O_READ, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ValueError(f"{name} is a symlink") from exc
        if exc.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
            raise ValueError(f"{name} is not a regular file") from exc
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{name} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_at(dir_fd: int | None, name: str | Path, limit: int = 16 << 20) -> bytes:
    """Read a regular file opened by :func:`open_read`, refusing one larger than ``limit``.

    Raises ``FileNotFoundError`` when absent and ``ValueError`` with a reason when
    the entry is a symlink, not a regular file, or larger than ``limit`` (also when
    it grows past ``limit`` while being read).
    """
    fd = open_read(dir_fd, name)
    try:
        if os.fstat(fd).st_size > limit:
            raise ValueError(f"{name} is larger than {limit} bytes")
        chunks = []
        total = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{name} is larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_file(path: Path, limit: int = 16 << 20) -> bytes:
    return read_at(None, path, limit)


def read_json_at(
    dir_fd: int | None, name: str | Path, limit: int = 16 << 20, max_depth: int = MAX_DEPTH
) -> Any:
    """Parse a JSON file read as :func:`read_at` does, within :mod:`farro_core.bounded`'s
    bounds; ``ValueError`` with a reason when it is not JSON or beyond them."""
    raw = read_at(dir_fd, name, limit)
    try:
        return loads_json(raw, max_depth=max_depth)
    except UnicodeDecodeError:
        raise ValueError(f"{name} is not UTF-8 text") from None


def read_json(path: Path, limit: int = 16 << 20, max_depth: int = MAX_DEPTH) -> Any:
    return read_json_at(None, path, limit, max_depth)


_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def _load_renameat2() -> object | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _load_renameat2()


def create_at(dir_fd: int, name: str, data: bytes, mode: int = 0o600) -> None:
    """Create ``name`` (it must not exist) in ``dir_fd`` holding ``data``, not fsynced.

    No temp file and rename: only for a directory nobody else reads until the
    caller has made it durable and published it (a batch's staging directories).
    """
    fd = os.open(name, O_CREATE, 0o600, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)  # exact, whatever the umask
        write_all(fd, data)
    finally:
        os.close(fd)


@functools.cache
def _load_syncfs() -> Any:
    """libc's ``syncfs``, where the kernel reports writeback errors through it (Linux 5.8+)."""
    if not sys.platform.startswith("linux"):
        return None
    major, _, rest = os.uname().release.partition(".")
    minor = rest.split(".")[0].split("-")[0]
    if not (major.isdigit() and minor.isdigit()) or (int(major), int(minor)) < (5, 8):
        return None  # before 5.8, syncfs returned 0 even when writeback had failed
    try:
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def syncfs(fd: int) -> bool:
    """Make everything written on ``fd``'s file system durable, in one call.

    Data and metadata of every file and directory there, as if each had been
    fsynced: one journal commit instead of one per fsync. A writeback error on
    that file system since ``fd`` was opened raises :class:`DurabilityError`
    (open ``fd`` before writing what must be durable). False where the kernel
    lacks an error-reporting syncfs: the caller fsyncs each file instead.
    """
    fn = _load_syncfs()
    if fn is None:
        return False
    if fn(fd) != 0:
        err = ctypes.get_errno()
        raise DurabilityError(f"syncfs failed ({os.strerror(err)}); the change was abandoned")
    return True


def rename_noreplace_at(
    src_dir_fd: int, src: str, dst_dir_fd: int, dst: str, *, exists: str | None = None
) -> None:
    """:func:`rename_noreplace` between names relative to two directory descriptors
    (``_AT_FDCWD`` for the working directory); ``exists`` is the error's text."""
    exists = exists or f"{dst} exists already"
    if _renameat2 is not None:
        rc = _renameat2(
            src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), _RENAME_NOREPLACE
        )  # type: ignore[operator]
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise AlreadyExists(exists)
        if err not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(err, os.strerror(err), src)
    try:
        os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        raise AlreadyExists(exists)
    try:
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise AlreadyExists(exists) from exc
        raise


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``, failing with :class:`AlreadyExists` if ``dst`` exists.

    Uses ``renameat2(RENAME_NOREPLACE)`` so even an empty directory at ``dst`` is
    never replaced; where the kernel lacks it, a non-empty job directory at
    ``dst`` still makes the plain rename fail.
    """
    rename_noreplace_at(
        _AT_FDCWD,
        str(src),
        _AT_FDCWD,
        str(dst),
        exists=f"{dst.name} exists already in {dst.parent.name}/",
    )


def move(src: Path, dst: Path) -> None:
    """Move a job directory (never over an existing one), then fsync both parents."""
    rename_noreplace(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)


def move_to_free(src: Path, dests: Iterable[Path], sidecar: str) -> Path | None:
    """Move ``src`` to the first of ``dests`` that neither exists nor has its ``sidecar``
    file (``dest`` + ``sidecar``) beside it, passing over one a race takes; None when
    every one is taken. Nothing is replaced, nor given a note that was another's."""
    for dest in dests:
        if os.path.lexists(dest) or os.path.lexists(f"{dest}{sidecar}"):
            continue
        try:
            move(src, dest)
        except AlreadyExists:
            continue
        return dest
    return None


def make_private_dir(path: Path) -> None:
    """mkdir with mode 0700 whatever the umask; an existing directory is kept."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if path.is_symlink():  # to a directory too: "not a directory" would read as false
            raise RootError(f"{path} is a symlink; FARRO follows no symlinks") from None
        if not path.is_dir():
            raise RootError(f"{path} exists and is not a directory") from None
        return
    os.chmod(path, 0o700)


def check_private(path: Path) -> None:
    """Refuse a directory that group or others can write: they could run code as us."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise RootError(f"{path} is a symlink; FARRO follows no symlinks under a root")
    if st.st_mode & 0o022:
        raise RootError(
            f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"anyone who can write it can run code as you: chmod 700 {path}"
        )
    if st.st_uid != os.geteuid():
        raise RootError(f"{path} is owned by uid {st.st_uid}, not by you (uid {os.geteuid()})")


def check_same_fs(paths: Iterable[Path]) -> None:
    """Every queue directory must be on one file system, or renames are not atomic."""
    devices: dict[int, Path] = {}
    for p in paths:
        dev = os.stat(p).st_dev
        devices.setdefault(dev, p)
    if len(devices) > 1:
        names = ", ".join(str(p) for p in devices.values())
        raise RootError(
            f"queue directories span file systems ({names}); renames would not be atomic"
        )
