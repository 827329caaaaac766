"""The console in a real terminal: tmux at 80x24, keys sent as an operator types them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import wait_until

from farro_core import job
from farro_core.root import Root
from farro_core.transitions import Actor

from .helpers import S, last_audit, make, status

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

FARRO_TUI = Path(sys.executable).parent / "farro-tui"


def _screen(session: str) -> str:
    out = subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=False
    )
    return out.stdout


def _poll(what: str, cond: Callable[[], bool], session: str, timeout: float = 20) -> None:
    wait_until(cond, what, timeout, diagnose=lambda: f"screen:\n{_screen(session)}")


def _last_move(root: Root, job_id: str) -> tuple[str, str, str]:
    line = last_audit(root, job_id)
    return (line["from"], line["to"], line["actor"])


def _send(session: str, *keys: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *keys], check=True)


def test_requeue_a_stale_job_in_tmux_at_80x24(root: Root) -> None:
    jid = make(root, S.STALE, "stuck in tmux")
    session = f"farro-test-{os.getpid()}-{time.monotonic_ns()}"
    cmd = f"{FARRO_TUI} --no-workers --root {root.path}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True
    )
    try:
        _poll("the queue", lambda: "stuck in tmux" in _screen(session), session)
        _send(session, "3")  # running: everything in active/, the stale job too
        _poll("the running tab", lambda: "3 run 1" in _screen(session), session)
        _send(session, "r")
        _poll("the confirmation", lambda: "Requeue 1 job?" in _screen(session), session)
        _send(session, "y")
        # the audit line is a commit's last step (after job.json and the move)
        _poll("the requeue on disk", lambda: last_audit(root, jid)["to"] == "queued", session)
        _poll("the queue tab count", lambda: "2 queued 1" in _screen(session), session)
        line = last_audit(root, jid)
        assert (line["from"], line["to"], line["actor"]) == ("stale", "queued", "operator")
        _send(session, "q")
        _poll(
            "the console to exit",
            lambda: (
                subprocess.run(
                    ["tmux", "has-session", "-t", session], capture_output=True, check=False
                ).returncode
                != 0
            ),
            session,
        )
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)


def test_notifications_never_cover_a_dialog_in_tmux_at_80x24(root: Root) -> None:
    """Failure notices stack up the right half of an 80x24 terminal: the requeue
    question stays whole, and a notice raised while it asks waits for the answer."""
    target = make(root, S.STALE, "stuck job")
    running = [make(root, S.IN_PROGRESS, f"long running job number {n}") for n in range(4)]
    session = f"farro-test-{os.getpid()}-{time.monotonic_ns()}"
    cmd = f"{FARRO_TUI} --no-workers --root {root.path}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True
    )

    def fail(jid: str) -> None:
        job.commit(job.load(root, jid), S.FAILED, Actor.AGENT, "attempt 1: agent exited 1")

    question = f"{target} stuck job (stale)"
    try:
        _poll("the queue", lambda: "stuck job" in _screen(session), session)
        for jid in running[:3]:
            fail(jid)
        _poll("three notices", lambda: _screen(session).count(" failed\n") >= 3, session)
        _send(session, "4")
        _poll("the stale tab", lambda: "4 stale 1" in _screen(session), session)
        _send(session, "r")
        _poll("the confirmation", lambda: "Requeue 1 job?" in _screen(session), session)
        _poll("the question whole", lambda: question in _screen(session), session)
        assert "Requeue (y)" in _screen(session), _screen(session)

        fail(running[3])  # while the dialog asks: its notice waits
        _poll("the tab count", lambda: "5 failed 4" in _screen(session), session)
        screen = _screen(session)
        assert question in screen and running[3] not in screen, screen
        _send(session, "n")
        _poll("the notice that waited", lambda: running[3] in _screen(session), session)
        assert "Requeue 1 job?" not in _screen(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)


def test_a_lost_terminal_releases_the_running_job(tmp_path: Path) -> None:
    """tmux kill-session hangs up the terminal (SIGHUP): the console's workers release."""
    root = Root.init(tmp_path / "root")
    (root.path / "farro.toml").write_text(
        "workers = 1\nshutdown_grace_s = 0.5\nheartbeat_s = 0.2\nwatchdog_interval_s = 0.2\n"
    )
    jid = make(Root.open(root.path), S.QUEUED, "sleeps", agent=["sleep", "60"])
    session = f"farro-hup-{os.getpid()}-{time.monotonic_ns()}"
    cmd = f"{FARRO_TUI} --root {root.path}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True
    )
    try:
        _poll("the job running", lambda: status(root, jid) == "in-progress", session)
        claim = job.load(root, jid).lifecycle.claim
        assert claim is not None
        pid = claim.pid
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    # its audit line, the release's last step (the creation's line also went "to queued")
    released = ("in-progress", "queued", "agent")
    _poll("the job released", lambda: _last_move(root, jid) == released, session, 30)
    _poll("the console gone", lambda: not Path(f"/proc/{pid}").exists(), session, timeout=30)


def test_readonly_console_at_80x24_runs_nothing_and_keeps_help_and_quit(root: Root) -> None:
    """farro-tui --readonly in a real 80x24 terminal, HOME a substring of the root's path."""
    jid = make(root, S.QUEUED, "waits in tmux", agent=["sleep", "60"])
    session = f"farro-ro-{os.getpid()}-{time.monotonic_ns()}"
    cmd = f"env HOME=/root {FARRO_TUI} --readonly --root {root.path}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True
    )
    try:
        _poll("the queue", lambda: "waits in tmux" in _screen(session), session)
        _poll("the first look at run/", lambda: "mgr none" in _screen(session), session)
        _poll(
            "the footer",
            lambda: "q Quit" in [*_screen(session).splitlines(), *[""] * 24][23],
            session,
        )
        lines = _screen(session).splitlines()
        header, footer = lines[0], lines[23]
        assert "READ-ONLY" in header and "no workers" in header
        shown = str(root.path) if len(str(root.path)) <= 24 else str(root.path)[-23:]
        assert shown in header and "~" not in header
        assert "? Help" in footer and "q Quit" in footer
        assert "Requeue" not in footer and "Pause" not in footer
        _send(session, "w")
        _poll("the workers pane", lambda: "runs no workers" in _screen(session), session)
        assert list(root.workers_dir.iterdir()) == []
        assert status(root, jid) == "queued"
        _send(session, "q")
        _poll(
            "the console to exit",
            lambda: (
                subprocess.run(
                    ["tmux", "has-session", "-t", session], capture_output=True, check=False
                ).returncode
                != 0
            ),
            session,
        )
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
