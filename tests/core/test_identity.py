"""Worker identity: host, boot id, pid and the process start time, so a reused pid is never
mistaken for the worker."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import wait_until

from farro_core import api, identity, job
from farro_core.identity import WorkerIdentity, pid_started_at, same_process
from farro_core.root import Root
from farro_core.system import System
from farro_core.worker import _NAME as WORKER_NAME


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


HOSTILE = [
    "my host",
    "a$b",
    "$(reboot)",
    "hôte-ünïcode",
    "",
    " ",
    "-",
    "x" * 300,
    "a/b\\c",
    "é" * 64,
]


@pytest.mark.parametrize("name", [*HOSTILE, "vm", "build-01.example.com"])
def test_any_host_name_becomes_a_valid_worker_name(name: str) -> None:
    part = identity.name_part(name)
    assert WORKER_NAME.fullmatch(f"{part}-{os.getpid()}-s12-w255"), part
    assert WORKER_NAME.fullmatch(WorkerIdentity.current().name)
    if name in ("vm", "build-01.example.com"):
        assert part == name  # a plain name is kept as it is


def test_host_names_that_differ_only_in_unsafe_characters_stay_apart() -> None:
    parts = {identity.name_part(n) for n in ["a b", "a$b", "a-b", "a/b", "a\tb"]}
    assert len(parts) == 5


@pytest.fixture
def hostname(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    def use(name: str) -> None:
        monkeypatch.setenv(identity.HOSTNAME_VAR, name)
        identity.host.cache_clear()

    yield use
    monkeypatch.delenv(identity.HOSTNAME_VAR, raising=False)
    identity.host.cache_clear()


@pytest.mark.parametrize("name", HOSTILE)
def test_a_system_runs_jobs_whatever_the_host_name(
    tmp_path: Path, hostname: Callable[[str], None], name: str
) -> None:
    hostname(name)
    assert identity.host() == name
    Root.init(tmp_path / "root")
    root = Root.open(tmp_path / "root", heartbeat_s=0.2, rescan_s=0.1, shutdown_grace_s=0.5)
    system = System(root, workers=1)
    try:
        system.start()
        env = api.submit(root, "x", agent=["true"])
        wait_until(lambda: job.load(root, env.id).status == "succeeded", "the job to succeed", 30)
    finally:
        system.stop(grace_s=0)
    (status,) = root.workers_dir.glob("*.json")
    assert WORKER_NAME.fullmatch(status.stem)


def test_headless_with_a_hostile_host_name_runs_and_stops_cleanly(tmp_path: Path) -> None:
    """`farro-tui --workers-only` used to die with a traceback (a crash loop under systemd)."""
    root = Root.init(tmp_path / "root")
    env = api.submit(root, "x", agent=["true"])
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    environ[identity.HOSTNAME_VAR] = "web 01 $HOME `id`"
    proc = subprocess.Popen(
        [sys.executable, "-m", "farro_tui.main", "--workers-only", "--root", str(root.path)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:

        def succeeded() -> bool:
            if job.load(root, env.id).status == "succeeded":
                return True
            assert proc.poll() is None, proc.communicate()[0].decode()  # died instead
            return False

        wait_until(succeeded, "the job to succeed", 30)
        done = job.load(root, env.id)
        assert done.lifecycle.reason.endswith("agent exited 0, ungraded (no rubric)")
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def test_one_operator_name_whatever_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI, the console and job creation name the operator one way: the account's name.
    ($USER or $LOGNAME saying otherwise made the audit name one person two ways.)"""
    import pwd

    from farro_core import job
    from farro_core.identity import operator

    monkeypatch.setenv("USER", "somebody-else")
    monkeypatch.setenv("LOGNAME", "somebody-else")
    assert operator() == pwd.getpwuid(os.getuid()).pw_name
    assert job.default_creator().startswith(f"{operator()}@")
