"""Helpers for the worker tests: submit, build workers, read jobs, logs and pids back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, TypeVar

from farro_core import api, job
from farro_core.envelope import Envelope
from farro_core.root import Root
from farro_core.settings import Settings
from farro_core.worker import Worker

PYTHON = sys.executable
FAST: dict[str, Any] = {
    "heartbeat_s": 0.2,
    "kill_grace_s": 0.5,
    "retry_backoff_s": 0.2,
    "rescan_s": 0.1,
    "shutdown_grace_s": 0.5,
}
WORKERS: list[Worker] = []  # stopped after each test by the conftest
T = TypeVar("T")


def submit(root: Root, prompt: str = "do the thing", **fields: Any) -> Envelope:
    return api.submit(root, prompt, **fields)


def make_worker(root: Root, name: str = "w1", **overrides: Any) -> Worker:
    settings = root.settings.model_copy(update=overrides) if overrides else root.settings
    w = Worker(root, name, settings=Settings.model_validate(settings.model_dump()))
    WORKERS.append(w)
    return w


def sh(script: str) -> list[str]:
    """An agent as an argv list: a small shell script (placeholders in argv items only)."""
    return ["/bin/sh", "-c", script]


def load(root: Root, job_id: str) -> Envelope:
    return job.load(root, job_id)


def status_is(root: Root, job_id: str, *statuses: str) -> Envelope | None:
    env = load(root, job_id)
    return env if env.status in statuses else None


def log_text(env: Envelope, attempt: int = 1) -> str:
    path = env.path / "logs" / f"attempt-{attempt}.log"
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def current_log(root: Root, job_id: str, attempt: int = 1) -> str:
    return log_text(load(root, job_id), attempt)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    (path / "README.md").write_text("readme\n")
    (path / "src").mkdir()
    (path / "src" / "a.py").write_text("A = 1\n")
    (path / "docs").mkdir()
    (path / "docs" / "guide.md").write_text("guide\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def make_plain(path: Path) -> Path:
    path.mkdir()
    (path / "README.md").write_text("readme\n")
    (path / "src").mkdir()
    (path / "src" / "a.py").write_text("A = 1\n")
    (path / "docs").mkdir()
    (path / "docs" / "guide.md").write_text("guide\n")
    return path


def pooled_worktrees(root: Root) -> list[Path]:
    """The pooled worktrees under the root (``ROOT/worktrees/<repo key>/slot-N``)."""
    return sorted(p for p in (root.path / "worktrees").glob("*/slot-*") if p.is_dir())
