"""flock locks: exclusive across threads and processes, freed by the kernel when the
holder dies however it dies, probed without being stolen; the in-process claim registry."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_until

from farro_core import fs, locks
from farro_core.errors import Refused
from farro_core.locks import ClaimRegistry, claim_lock_name

HOLDER = r"""
import os, sys
from farro_core import fs, locks
dfd = fs.open_dir(sys.argv[1])
held = locks.try_lock(dfd, sys.argv[2])
print("held" if held else "busy", flush=True)
sys.stdin.read()  # hold until told (or killed)
"""


@pytest.fixture
def dfd(tmp_path: Path) -> Iterator[int]:
    fd = fs.open_dir(tmp_path)
    yield fd
    os.close(fd)


def start_holder(path: Path, name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "held", line
    return proc


def test_try_lock_is_exclusive_and_release_frees(dfd: int) -> None:
    a = locks.try_lock(dfd, "x.lock")
    assert a is not None
    assert locks.try_lock(dfd, "x.lock") is None  # a second descriptor, same process
    assert not locks.is_free(dfd, "x.lock")
    a.release()
    a.release()  # idempotent
    assert locks.is_free(dfd, "x.lock")
    b = locks.try_lock(dfd, "x.lock")
    assert b is not None
    b.release()


def test_different_names_do_not_conflict(dfd: int) -> None:
    a = locks.try_lock(dfd, claim_lock_name(1))
    b = locks.try_lock(dfd, claim_lock_name(2))
    assert a is not None and b is not None
    a.release()
    b.release()


def test_missing_lock_file_is_free(dfd: int, tmp_path: Path) -> None:
    assert locks.is_free(dfd, "never.lock")
    assert not (tmp_path / "never.lock").exists()  # probing does not create it


def test_probe_does_not_steal_or_keep_a_free_lock(dfd: int) -> None:
    a = locks.try_lock(dfd, "x.lock")
    assert a is not None
    a.release()
    assert locks.is_free(dfd, "x.lock")
    b = locks.try_lock(dfd, "x.lock")  # the probe dropped what it won
    assert b is not None
    b.release()


def test_exclusive_across_threads(dfd: int) -> None:
    winners: list[locks.Flock] = []
    barrier = threading.Barrier(8)
    mutex = threading.Lock()

    def contend() -> None:
        barrier.wait()
        got = locks.try_lock(dfd, "x.lock")
        if got is not None:
            with mutex:
                winners.append(got)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    winners[0].release()


def test_lock_waits_for_a_short_holder(dfd: int) -> None:
    held = locks.try_lock(dfd, "c.lock")
    assert held is not None
    timer = threading.Timer(0.1, held.release)
    timer.start()
    got = locks.lock(dfd, "c.lock", timeout=10)
    assert held.released
    got.release()
    timer.join()


def test_lock_times_out_with_clear_error(dfd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """It waits, trying again and again, and refuses only once its timeout has passed."""
    held = locks.try_lock(dfd, "c.lock")
    assert held is not None
    tries: list[bool] = []  # each try's outcome: taken or not
    real_try = locks.try_lock

    def counted(dir_fd: int, name: str) -> locks.Flock | None:
        got = real_try(dir_fd, name)
        tries.append(got is not None)
        return got

    monkeypatch.setattr(locks, "try_lock", counted)
    with pytest.raises(Refused, match=r"c\.lock is held by another process for over 1s"):
        locks.lock(dfd, "c.lock", timeout=1)
    # tried again after its first try failed (only a stall of the whole second would leave
    # time for one), and none of the tries took the lock
    assert len(tries) >= 2 and not any(tries), tries
    held.release()


def test_exclusive_across_processes(tmp_path: Path, dfd: int) -> None:
    proc = start_holder(tmp_path, "x.lock")
    try:
        assert locks.try_lock(dfd, "x.lock") is None
        assert not locks.is_free(dfd, "x.lock")
        # a second process is refused too
        other = subprocess.run(
            [sys.executable, "-c", HOLDER, str(tmp_path), "x.lock"],
            input="",
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert other.stdout.strip() == "busy"
    finally:
        proc.communicate("", timeout=30)  # holder exits normally
    assert locks.is_free(dfd, "x.lock")


def test_sigkilled_holder_frees_the_lock(tmp_path: Path, dfd: int) -> None:
    with start_holder(tmp_path, claim_lock_name(1)) as proc:  # closes its pipes after the kill
        assert not locks.is_free(dfd, claim_lock_name(1))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    wait_until(lambda: locks.is_free(dfd, claim_lock_name(1)), "the claim lock to be free")
    got = locks.try_lock(dfd, claim_lock_name(1))
    assert got is not None
    got.release()


def test_lock_travels_with_a_moved_directory(tmp_path: Path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "active").mkdir()
    job = tmp_path / "incoming" / "job1"
    job.mkdir()
    dfd = fs.open_dir(job)
    held = locks.try_lock(dfd, "x.lock")
    assert held is not None
    fs.move(job, tmp_path / "active" / "job1")
    moved = fs.open_dir(tmp_path / "active" / "job1")
    try:
        assert not locks.is_free(moved, "x.lock")
        held.release()
        assert locks.is_free(moved, "x.lock")
        assert not (tmp_path / "incoming" / "job1").exists()  # no ghost directory
    finally:
        os.close(moved)
        os.close(dfd)


def test_lock_file_refuses_symlink(tmp_path: Path, dfd: int) -> None:
    (tmp_path / "elsewhere").write_bytes(b"")
    (tmp_path / "x.lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        locks.try_lock(dfd, "x.lock")


def test_claim_registry(dfd: int) -> None:
    reg = ClaimRegistry()
    key = ("/r", "job", 1)
    assert not reg.holds(key) and reg.keys() == []
    held = locks.try_lock(dfd, claim_lock_name(1))
    assert held is not None
    reg.add(key, held)
    assert reg.holds(key) and reg.keys() == [key]
    assert not reg.holds(("/r", "job", 2)) and not reg.holds(("/other", "job", 1))
    assert not locks.is_free(dfd, claim_lock_name(1))
    reg.release(key)
    assert held.released and not reg.holds(key) and reg.keys() == []
    assert locks.is_free(dfd, claim_lock_name(1))
    reg.release(key)  # releasing an unknown key is harmless


def test_claim_registry_is_thread_safe(dfd: int) -> None:
    reg = ClaimRegistry()

    def work(n: int) -> None:
        for i in range(50):
            held = locks.try_lock(dfd, f"t{n}-{i}.lock")
            assert held is not None
            reg.add(("/r", f"j{n}", i), held)
        for i in range(50):
            reg.release(("/r", f"j{n}", i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reg.keys() == []
