"""fs primitives: atomic writes, reads that never follow symlinks, moves that never
replace, the permission and one-file-system checks, fsync failure as a fatal error."""

from __future__ import annotations

import errno
import os
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from farro_core import fs
from farro_core.errors import AlreadyExists, DurabilityError, RootError


def entries(d: Path) -> set[str]:
    return set(os.listdir(d))


# ------------------------------------------------------------------ atomic writes


def test_write_file_creates_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    fs.write_file(target, b"one")
    assert target.read_bytes() == b"one"
    ino = os.stat(target).st_ino
    fs.write_file(target, b"two" * 100_000)
    assert target.read_bytes() == b"two" * 100_000
    assert os.stat(target).st_ino != ino  # replaced by rename, not rewritten in place
    assert entries(tmp_path) == {"f.json"}


def test_write_sets_exact_mode_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        fs.write_file(tmp_path / "ro", b"x", mode=0o444)
        fs.write_file(tmp_path / "rw", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "ro").st_mode) == 0o444
    assert stat.S_IMODE(os.stat(tmp_path / "rw").st_mode) == 0o600


def test_write_replaces_a_symlink_rather_than_writing_through_it(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").symlink_to(outside)
    fs.write_file(d / "f", b"new")
    assert outside.read_bytes() == b"precious"
    assert not (d / "f").is_symlink() and (d / "f").read_bytes() == b"new"


def test_write_into_symlinked_directory_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OSError) as info:
        fs.write_file(tmp_path / "link" / "f", b"x")
    assert info.value.errno in (errno.ELOOP, errno.ENOTDIR)
    assert entries(real) == set()


def test_failed_fsync_is_durability_error_and_leaves_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f"
    fs.write_file(target, b"old")
    calls = []

    def bad_fsync(fd: int) -> None:
        calls.append(fd)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", bad_fsync)
    with pytest.raises(DurabilityError, match="fsync failed"):
        fs.write_file(target, b"new")
    assert len(calls) == 1  # never retried
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert entries(tmp_path) == {"f"}  # the temp file was removed


def test_fsync_dir_failure_is_durability_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bad_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", bad_fsync)
    with pytest.raises(DurabilityError):
        fs.fsync_dir(tmp_path)


# ------------------------------------------------------------------ reads


def test_read_at_reads_regular_files(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 3_000_000)
    assert fs.read_file(tmp_path / "f") == b"x" * 3_000_000
    dfd = fs.open_dir(tmp_path)
    try:
        assert fs.read_at(dfd, "f") == b"x" * 3_000_000
    finally:
        os.close(dfd)


def test_read_at_refuses_symlink(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"secret")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(ValueError, match="symlink"):
        fs.read_file(tmp_path / "link")


def test_read_at_refuses_directory_and_fifo(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        fs.read_file(tmp_path / "dir")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(ValueError, match="not a regular file"):
        fs.read_file(tmp_path / "fifo")  # and it does not block waiting for a writer


def test_read_at_refuses_socket(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(ValueError, match="not a regular file"):  # ENXIO on open
            fs.read_file(path)


def test_read_at_refuses_oversize(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 101)
    assert fs.read_file(tmp_path / "f", limit=101) == b"x" * 101
    with pytest.raises(ValueError, match="larger than 100"):
        fs.read_file(tmp_path / "f", limit=100)


def test_read_missing_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fs.read_file(tmp_path / "nope")


def test_open_dir_refuses_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError) as info:
        fs.open_dir(tmp_path / "link")
    assert info.value.errno in (errno.ELOOP, errno.ENOTDIR)


# ------------------------------------------------------------------ renames and moves


def test_rename_noreplace_moves(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_bytes(b"1")
    fs.rename_noreplace(tmp_path / "a", tmp_path / "b")
    assert entries(tmp_path) == {"b"} and (tmp_path / "b" / "f").read_bytes() == b"1"


@pytest.mark.parametrize("kind", ["empty_dir", "full_dir", "file", "dangling_symlink"])
def test_rename_noreplace_never_replaces(tmp_path: Path, kind: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "job.json").write_bytes(b"mine")
    dst = tmp_path / "dst"
    if kind == "empty_dir":
        dst.mkdir()
    elif kind == "full_dir":
        dst.mkdir()
        (dst / "job.json").write_bytes(b"theirs")
    elif kind == "file":
        dst.write_bytes(b"theirs")
    else:
        dst.symlink_to(tmp_path / "nowhere")
    with pytest.raises(AlreadyExists, match="dst exists already"):
        fs.rename_noreplace(src, dst)
    assert (src / "job.json").read_bytes() == b"mine"
    if kind == "empty_dir":
        assert os.listdir(dst) == []
    elif kind == "full_dir":
        assert (dst / "job.json").read_bytes() == b"theirs"
    elif kind == "file":
        assert dst.read_bytes() == b"theirs"
    else:
        assert dst.is_symlink()


def test_rename_noreplace_fallback_without_renameat2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fs, "_renameat2", None)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    with pytest.raises(AlreadyExists):
        fs.rename_noreplace(src, dst)
    os.rmdir(dst)
    fs.rename_noreplace(src, dst)
    assert entries(tmp_path) == {"dst"}


def test_rename_noreplace_missing_source(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fs.rename_noreplace(tmp_path / "gone", tmp_path / "dst")


def test_move_between_parents(tmp_path: Path) -> None:
    for d in ("p1", "p2"):
        (tmp_path / d).mkdir()
    (tmp_path / "p1" / "job").mkdir()
    fs.move(tmp_path / "p1" / "job", tmp_path / "p2" / "job")
    assert entries(tmp_path / "p1") == set() and entries(tmp_path / "p2") == {"job"}


def test_move_fsyncs_both_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in ("p1", "p2"):
        (tmp_path / d).mkdir()
    (tmp_path / "p1" / "job").mkdir()
    synced: list[str] = []
    real = fs.fsync_dir
    monkeypatch.setattr(fs, "fsync_dir", lambda p: (synced.append(Path(p).name), real(p)))
    fs.move(tmp_path / "p1" / "job", tmp_path / "p2" / "job")
    assert sorted(synced) == ["p1", "p2"]


# ------------------------------------------------------------------ permission checks


def test_make_private_dir_is_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        fs.make_private_dir(tmp_path / "d")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
    fs.make_private_dir(tmp_path / "d")  # existing: kept


def test_make_private_dir_refuses_file_and_symlink(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with pytest.raises(RootError, match="not a directory"):
        fs.make_private_dir(tmp_path / "f")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(RootError, match="is a symlink"):
        fs.make_private_dir(tmp_path / "link")


@pytest.mark.parametrize("mode", [0o700, 0o750, 0o755, 0o500])
def test_check_private_accepts(tmp_path: Path, mode: int) -> None:
    d = tmp_path / "d"
    d.mkdir()
    os.chmod(d, mode)
    fs.check_private(d)


@pytest.mark.parametrize("mode", [0o770, 0o702, 0o777, 0o1777, 0o720])
def test_check_private_refuses_group_or_other_writable(tmp_path: Path, mode: int) -> None:
    d = tmp_path / "d"
    d.mkdir()
    os.chmod(d, mode)
    with pytest.raises(RootError, match=f"writable by group or others.*{mode:04o}.*chmod"):
        fs.check_private(d)


def test_check_private_refuses_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(RootError, match="symlink"):
        fs.check_private(tmp_path / "link")


# ------------------------------------------------------------------ one file system


def test_check_same_fs_accepts_one_fs(tmp_path: Path) -> None:
    dirs = [tmp_path / n for n in ("a", "b", "c")]
    for d in dirs:
        d.mkdir()
    fs.check_same_fs(dirs)


def test_check_same_fs_refuses_two_file_systems(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second file system (/dev/shm) to compare with")
    with (
        tempfile.TemporaryDirectory(dir=shm) as other,
        pytest.raises(RootError, match=r"span file systems.*not be atomic"),
    ):
        fs.check_same_fs([tmp_path, Path(other)])


def test_check_private_refuses_another_owner(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    os.chown(d, 65534, 65534)
    with pytest.raises(RootError, match="owned by uid 65534, not by you"):
        fs.check_private(d)


def test_move_to_free_passes_over_taken_names_and_orphan_notes(tmp_path: Path) -> None:
    """A name that exists, or whose note outlived its entry, is never given to another."""
    (tmp_path / "a").write_text("held")
    (tmp_path / "b.note").write_text("b's note")
    src = tmp_path / "src"
    src.write_text("moved")
    names = [tmp_path / n for n in ("a", "b", "c", "d")]
    assert fs.move_to_free(src, names, ".note") == tmp_path / "c"
    assert (tmp_path / "c").read_text() == "moved"
    assert (tmp_path / "a").read_text() == "held"
    other = tmp_path / "other"
    other.write_text("x")
    assert fs.move_to_free(other, names[:3], ".note") is None
    assert other.read_text() == "x"
