"""Worker identity: host, boot id, pid and the process start time, so a reused pid is never
mistaken for the worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from farro_core import identity
from farro_core.identity import WorkerIdentity, pid_started_at, same_process


def test_current_identity() -> None:
    me = WorkerIdentity.current("w1")
    assert (me.name, me.pid, me.host) == ("w1", os.getpid(), identity.host())
    assert me.boot_id == identity.boot_id() and me.boot_id
    assert me.pid_started_at == pid_started_at(os.getpid())
    assert WorkerIdentity.current().name == f"{identity.host()}:{os.getpid()}"


def test_start_time_is_stable_and_distinguishes_processes() -> None:
    mine = pid_started_at(os.getpid())
    assert isinstance(mine, int) and mine == pid_started_at(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        theirs = pid_started_at(child.pid)
        assert theirs is not None and theirs >= mine
    finally:
        child.communicate(b"")
    assert pid_started_at(child.pid) is None  # reaped: gone


def test_start_time_with_a_hostile_command_name(tmp_path: Path) -> None:
    """The command name in /proc/PID/stat may hold spaces and parentheses."""
    sleep = shutil.which("sleep")
    assert sleep is not None
    weird = tmp_path / "a) b (c"
    shutil.copy(sleep, weird)
    child = subprocess.Popen([str(weird), "30"])
    try:
        started = pid_started_at(child.pid)
        assert isinstance(started, int) and started >= pid_started_at(os.getpid())  # type: ignore[operator]
        assert same_process(child.pid, started, identity.host(), identity.boot_id())
    finally:
        child.kill()
        child.wait()


def test_same_process() -> None:
    me = WorkerIdentity.current()
    assert same_process(me.pid, me.pid_started_at, me.host, me.boot_id)
    assert not same_process(me.pid, me.pid_started_at + 1, me.host, me.boot_id)  # type: ignore[operator]
    assert not same_process(me.pid, None, me.host, me.boot_id)
    assert not same_process(me.pid, me.pid_started_at, "another-host", me.boot_id)
    assert not same_process(me.pid, me.pid_started_at, me.host, "another-boot")
    assert not same_process(2**22 + 12345, me.pid_started_at, me.host, me.boot_id)
