"""I/O faults: a failing fsync and a full disk.

A failing fsync (EIO, injected in-process by wrapping ``os.fsync``) is fatal for
its transaction: :class:`DurabilityError`, no further fsync (nothing retried),
and when it is the fsync of a file's data, taken before the rename that would
publish it, the job on disk is byte-for-byte what it was. When it is the fsync
of a directory after a rename, the rename is already visible (no user-space
code can take it back): the root is then in the state of the matching named
crash point, and ``fsck --repair`` makes it consistent.

A full disk uses a real 1 MiB tmpfs: create, claim and commit fail with ENOSPC,
the job is unchanged, and everything works again once space is freed.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import wait_until

from farro_core import fsck, job
from farro_core.envelope import parse_spec
from farro_core.errors import DurabilityError
from farro_core.identity import WorkerIdentity
from farro_core.locks import CLAIMS
from farro_core.root import QUEUES, Root
from farro_core.transitions import Actor, Status

from .helpers import make_job

ME = WorkerIdentity.current("faults")
REAL_FSYNC = os.fsync


class FsyncFault:
    """Wraps os.fsync: records the path of every call and fails call number ``fail_at``."""

    def __init__(self, fail_at: int | None) -> None:
        self.fail_at = fail_at
        self.paths: list[str] = []
        self.failed: str | None = None

    def __call__(self, fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        self.paths.append(path)
        if len(self.paths) - 1 == self.fail_at:
            self.failed = path
            raise OSError(errno.EIO, "Input/output error (injected)")
        REAL_FSYNC(fd)


@pytest.fixture(autouse=True)
def _release_claims() -> Iterator[None]:
    yield
    for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
        CLAIMS.release(key)


def _state(root: Root) -> dict[str, bytes]:
    """queue/id -> job.json bytes, for every job in the queues; plus tmp/ entries."""
    out = {}
    for q in QUEUES:
        for name in os.listdir(root.path / q):
            out[f"{q}/{name}"] = (root.path / q / name / "job.json").read_bytes()
    for name in os.listdir(root.tmp):
        out[f"tmp/{name}"] = b""
    return out


def _tmp_leftovers(root: Root) -> list[str]:
    return [str(p) for q in QUEUES for p in (root.path / q).glob("*/*.tmp.*")]


def _consistent_after_fsck(root: Root) -> None:
    fsck.fsck(root, repair=True)
    assert fsck.fsck(root, repair=False) == []
    for q in QUEUES:
        for name in os.listdir(root.path / q):
            env = job.load(root, name)
            assert env.path.parent.name == q


Scenario = Callable[[Root], Callable[[], object]]


def _create(root: Root) -> Callable[[], object]:
    return lambda: job.create(root, parse_spec({"prompt": "fsync fault"}))


def _claim(root: Root) -> Callable[[], object]:
    make_job(root)
    return lambda: job.claim(root, ME)


def _commit(root: Root) -> Callable[[], object]:
    make_job(root)
    env = job.claim(root, ME)
    assert env is not None
    return lambda: job.commit(env, Status.SUCCEEDED, Actor.AGENT, "done", worker=ME.name)


def _count_fsyncs(tmp_path: Path, scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> int:
    root = Root.init(tmp_path / "count")
    action = scenario(root)
    probe = FsyncFault(None)
    monkeypatch.setattr(os, "fsync", probe)
    action()
    monkeypatch.setattr(os, "fsync", REAL_FSYNC)
    return len(probe.paths)


@pytest.mark.parametrize("scenario", [_create, _claim, _commit], ids=["create", "claim", "commit"])
def test_each_failing_fsync_aborts_its_transaction(
    tmp_path: Path, scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    total = _count_fsyncs(tmp_path, scenario, monkeypatch)
    assert total >= 3
    data_faults = 0
    for k in range(total):
        root = Root.init(tmp_path / f"r{k}")
        action = scenario(root)
        before = _state(root)
        fault = FsyncFault(k)
        monkeypatch.setattr(os, "fsync", fault)
        try:
            with pytest.raises(DurabilityError, match="fsync failed"):
                action()
        finally:
            monkeypatch.setattr(os, "fsync", REAL_FSYNC)
        assert len(fault.paths) == k + 1, f"fsync #{k} failed, then {fault.paths[k + 1 :]}"
        assert fault.failed is not None
        assert _tmp_leftovers(root) == []
        if ".tmp." in os.path.basename(fault.failed):
            # the data never reached its name: the job is exactly as it was
            data_faults += 1
            assert _state(root) == before, f"fsync #{k} of {fault.failed} changed the root"
        # a directory fsync after a rename: visible, not known durable: fsck makes it whole
        _consistent_after_fsck(root)
    assert data_faults >= 1


def test_a_failed_commit_fsync_leaves_the_claim_usable_for_nothing_else(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the data fsync of a commit fails, the job is still in-progress at the old
    revision, so the worker's next commit (a new decision) works and nothing was recorded."""
    make_job(root)
    env = job.claim(root, ME)
    assert env is not None
    before = (env.path / "job.json").read_bytes()
    monkeypatch.setattr(os, "fsync", FsyncFault(0))
    with pytest.raises(DurabilityError):
        job.commit(env, Status.SUCCEEDED, Actor.AGENT, "done", worker=ME.name)
    monkeypatch.setattr(os, "fsync", REAL_FSYNC)
    assert (env.path / "job.json").read_bytes() == before
    assert job.load(root, env.id).status is Status.IN_PROGRESS
    done = job.commit(env, Status.FAILED, Actor.AGENT, "retry after an I/O error")
    assert done.status is Status.FAILED and done.lifecycle.revision == env.lifecycle.revision + 1


# ---------------------------------------------------------------- a full disk


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> Path:
    """Fill the file system holding ``path`` until ENOSPC; return the filler file."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (1 << 16, 4096, 1):  # big chunks, then the last partial page
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


def test_full_disk_refuses_cleanly_and_recovers(small_fs: Path) -> None:
    root = Root.init(small_fs / "root")
    queued = make_job(root, "queued before the disk filled")
    running = make_job(root, "claimed before the disk filled")
    running_env = job.claim(root, ME, ids=[running.id])
    assert running_env is not None
    before = _state(root)
    filler = _fill(small_fs)

    with pytest.raises(OSError) as info:
        job.create(root, parse_spec({"prompt": "no room"}))
    assert info.value.errno == errno.ENOSPC
    assert _state(root) == before  # nothing half-made in tmp/ or incoming/

    with pytest.raises(OSError) as info:
        job.claim(root, ME, ids=[queued.id])
    assert info.value.errno == errno.ENOSPC
    assert _state(root) == before  # still queued, job.json untouched
    assert not job.holds_claim(root, queued.id, 1)

    with pytest.raises(OSError) as info:
        job.commit(running_env, Status.SUCCEEDED, Actor.AGENT, "done", worker=ME.name)
    assert info.value.errno == errno.ENOSPC
    assert _state(root) == before  # still in-progress at the same revision
    assert _tmp_leftovers(root) == []

    os.unlink(filler)  # space returns
    created = job.create(root, parse_spec({"prompt": "room again"}))
    got = job.claim(root, ME, ids=[queued.id])
    assert got is not None
    job.commit(got, Status.SUCCEEDED, Actor.AGENT, "done")
    job.commit(running_env, Status.SUCCEEDED, Actor.AGENT, "done")
    assert job.load(root, created.id).status is Status.QUEUED
    assert job.load(root, queued.id).status is Status.SUCCEEDED
    assert job.load(root, running.id).status is Status.SUCCEEDED
    _consistent_after_fsck(root)


def test_full_disk_cli_submit_says_so_in_one_line(small_fs: Path) -> None:
    farro = Path(sys.executable).parent / "farro"
    if not farro.exists():
        pytest.skip("the farro CLI is not installed")
    root = Root.init(small_fs / "root")
    filler = _fill(small_fs)
    proc = subprocess.run(
        [str(farro), "submit", "--root", str(root.path), "--prompt", "no room"],
        capture_output=True,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode != 0
    assert "Traceback" not in err
    assert "space" in err.lower(), err
    assert len(err.strip().splitlines()) == 1, err
    assert os.listdir(root.incoming) == [] and os.listdir(root.tmp) == []
    os.unlink(filler)
    proc = subprocess.run(
        [str(farro), "submit", "--root", str(root.path), "--prompt", "room again"],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(os.listdir(root.incoming)) == 1
    shutil.rmtree(root.path)


def test_workers_survive_a_full_disk_and_finish_when_space_returns(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from farro_core.system import System

    root = Root.init(small_fs / "root")
    (root.path / "farro.toml").write_text(
        'agent = ["true"]\nrescan_s = 0.2\nwatchdog_interval_s = 0.2\n'
    )
    root = Root.open(root.path)
    waiting = make_job(root, "waits for space")
    filler = _fill(small_fs)
    system = System(root, workers=1)
    caplog.set_level(logging.WARNING)
    system.start()
    try:

        def met_full_disk() -> bool:
            return any("No space left" in r.getMessage() + str(r.exc_info) for r in caplog.records)

        wait_until(met_full_disk, "the worker to meet the full disk", 20)
        assert job.load(root, waiting.id).status is Status.QUEUED  # refused, unchanged
        os.unlink(filler)
        wait_until(
            lambda: job.load(root, waiting.id).status is Status.SUCCEEDED,
            "recovery after space returned (the job's success)",
            30,
        )
        assert system.running
    finally:
        system.stop(grace_s=5)
    _consistent_after_fsck(root)


def test_log_write_failure_never_blocks_the_agent(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while the attempt log is written: the agent's output is still drained, so an
    agent that prints more than a pipe holds finishes instead of blocking until its timeout."""
    from farro_core.worker import Worker

    real_write = os.write
    written = {"n": 0}

    def full_disk_after_4k(fd: int, data: bytes) -> int:  # only the attempt log's disk is full
        if os.readlink(f"/proc/self/fd/{fd}").endswith("attempt-1.log"):
            if written["n"] + len(data) > 4096:
                raise OSError(errno.ENOSPC, "No space left on device (injected)")
            written["n"] += len(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk_after_4k)
    agent = [sys.executable, "-c", "import sys; sys.stdout.write('x' * 1_000_000); print('end')"]
    # blocked on a full pipe, it could only end by this timeout (a failure bound)
    env = make_job(root, "noisy", agent=agent, timeout_s=60, max_attempts=1)
    done = Worker(root, "noisy").run_once()
    assert done is not None and done.id == env.id
    result = done.lifecycle.result
    # it ran to its own end: not blocked on its output until the timeout killed it
    assert result is not None and not result.timed_out and result.exit_code == 0, result
    monkeypatch.undo()
    log = (done.path / "logs" / "attempt-1.log").read_bytes()
    assert 0 < len(log) <= 4096  # what fitted was kept
