"""A batch's stages: written without per-file fsyncs, then made durable at once (docs/spec.md §5.2).

The fsyncs are observed by wrapping ``os.fsync`` (recording which inode each one
made durable) and the syncfs by wrapping the libc function :mod:`farro_core.fs`
calls, so the real calls still happen; a failing syncfs is injected the same way
(an EIO from the disk cannot be produced on demand here).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import stat
from collections.abc import Callable

import pytest

from farro_core import batch, fs, job, publish
from farro_core.errors import DurabilityError
from farro_core.root import Root

from .helpers import audit_of, snapshot, spec

Inode = tuple[int, int]


def _count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[Inode]:
    """Wrap os.fsync: every call still happens, and the inode it synced is recorded."""
    real = os.fsync
    synced: list[Inode] = []

    def counting(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return synced


def _wrap_syncfs(monkeypatch: pytest.MonkeyPatch, fake: Callable[[int], int] | None) -> list[int]:
    """Route fs.syncfs through ``fake`` (None: the kernel's, counted)."""
    real = fs._load_syncfs()
    if real is None:
        pytest.skip("this kernel has no error-reporting syncfs (Linux < 5.8)")
    calls: list[int] = []

    def wrapped(fd: int) -> int:
        calls.append(fd)
        return int(real(fd)) if fake is None else fake(fd)

    monkeypatch.setattr(fs, "_load_syncfs", lambda: wrapped)
    return calls


def _inodes(root: Root, job_id: str) -> set[Inode]:
    d = root.incoming / job_id
    return {
        (st.st_dev, st.st_ino)
        for st in (os.stat(p) for p in (d, d / "prompt.json", d / "job.json"))
    }


def test_a_batch_is_made_durable_by_one_syncfs_and_a_few_fsyncs(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs = _wrap_syncfs(monkeypatch, None)
    synced = _count_fsyncs(monkeypatch)
    n = batch.SYNCFS_MIN_JOBS
    envs = job.create_many(root, [spec(f"job {i}", labels={"n": str(i)}) for i in range(n)])
    assert len(syncs) == 1
    # the intent and its directory, incoming/ and tmp/ once, tmp/ after the intent goes
    assert len(synced) == 5, f"{len(synced)} fsyncs for {n} jobs"
    assert sorted(os.listdir(root.incoming)) == sorted(e.id for e in envs)
    assert os.listdir(root.tmp) == []
    for i, env in enumerate(envs):
        d = root.incoming / env.id
        assert stat.S_IMODE(os.stat(d / "prompt.json").st_mode) == 0o444
        assert stat.S_IMODE(os.stat(d / "job.json").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        assert sorted(os.listdir(d)) == ["job.json", "prompt.json"]  # no temp file left
        assert json.loads((d / "prompt.json").read_bytes())["labels"] == {"n": str(i)}
        assert job.load(root, env.id).lifecycle == env.lifecycle
        assert [a["event"] for a in audit_of(root, env.id)] == ["created"]


@pytest.mark.parametrize("why", ["small batch", "no syncfs"])
def test_otherwise_every_staged_file_and_directory_is_fsynced(
    root: Root, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    """A small batch (syncfs would wait for everyone's dirty data), or a kernel before 5.8."""
    if why == "no syncfs":
        monkeypatch.setattr(fs, "_load_syncfs", lambda: None)
        n = batch.SYNCFS_MIN_JOBS
    else:
        syncs = _wrap_syncfs(monkeypatch, None)
        n = 12
    synced = _count_fsyncs(monkeypatch)
    envs = job.create_many(root, [spec(f"job {i}") for i in range(n)])
    if why == "small batch":
        assert syncs == []
    for env in envs:
        assert _inodes(root, env.id) <= set(synced), f"{env.id} was not fsynced in full"
    assert os.listdir(root.tmp) == []


def test_a_failing_syncfs_aborts_the_batch_and_publishes_nothing(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    def eio(fd: int) -> int:
        ctypes.set_errno(errno.EIO)
        return -1

    calls = _wrap_syncfs(monkeypatch, eio)
    before = snapshot(root)
    with pytest.raises(DurabilityError, match="syncfs failed"):
        job.create_many(root, [spec(f"job {i}") for i in range(batch.SYNCFS_MIN_JOBS)])
    assert len(calls) == 1
    assert snapshot(root) == before, "no stage, no intent, nothing published"
    assert publish.unfinished_batches(root) == []
