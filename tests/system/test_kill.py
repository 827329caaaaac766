"""Killing several running jobs at once, with real workers running real agents.

One kill path (``operations.kill_many``) serves the CLI and the console: every
running job's worker is asked first, then all are awaited together, and a job
that is killed while another is awaited counts as killed, never as refused.
"""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

from support import wait_for, wait_until

from farro_core import operations
from farro_core.api import submit
from farro_core.root import Root
from farro_core.system import System
from farro_core.transitions import Status

from .helpers import PYTHON, child_env, make_root, status_is, transitions

#: dies only at SIGKILL, kill_grace_s after its SIGTERM
IGNORES_TERM = "trap '' TERM; sleep 600"


def _root(tmp_path: Path) -> Root:
    """Fast liveness, and a kill grace long enough that the slow job is awaited last."""
    root = make_root(tmp_path / "root")
    toml = root.path / "farro.toml"
    toml.write_text(toml.read_text().replace("kill_grace_s = 0.5", "kill_grace_s = 3"))
    return Root.open(root.path)


def _running_pair(root: Root, system: System) -> tuple[str, str]:
    """Two running jobs: the first (in id order) slow to die, the second quick."""
    slow = submit(root, "ignores SIGTERM", id="aaaa-slow", agent=IGNORES_TERM).id
    fast = submit(root, "dies at SIGTERM", id="zzzz-fast", agent=["sleep", "600"]).id
    system.start()
    for jid in (slow, fast):
        wait_for(partial(status_is, root, jid, Status.IN_PROGRESS), f"{jid} running")
    return slow, fast


def _killed_by_their_workers(root: Root, *ids: str) -> None:
    for jid in ids:
        assert status_is(root, jid, Status.KILLED) is not None
        # the audit line follows the commit (docs/spec.md): wait for the line itself
        last = wait_until(
            lambda jid=jid: [t for t in transitions(root, jid) if t["to"] == "killed"],
            f"{jid}'s kill in the audit",
            diagnose=lambda jid=jid: transitions(root, jid),
        )
        assert [(t["from"], t["actor"]) for t in last] == [("in-progress", "agent")]


def test_kill_many_waits_for_every_worker_at_once(tmp_path: Path, systems: list[System]) -> None:
    root = _root(tmp_path)
    system = System(root, workers=2)
    systems.append(system)
    slow, fast = _running_pair(root, system)
    queued = submit(root, "never runs: no free worker").id
    heard: list[list[str]] = []

    results = operations.kill_many(
        root, [slow, fast, queued, slow], by="ann", wait_s=60, on_requested=heard.append
    )

    assert [(r.job_id, r.outcome) for r in results] == [
        (slow, "killed"),
        (fast, "killed"),
        (queued, "killed"),
    ]
    assert all(r.error is None for r in results)
    assert heard == [[slow, fast]]
    _killed_by_their_workers(root, slow, fast)
    again = operations.kill_many(root, [fast], wait_s=1)
    assert again[0].outcome == "refused" and "was already killed" in str(again[0].error)


def test_farro_kill_of_several_running_jobs(tmp_path: Path, systems: list[System]) -> None:
    root = _root(tmp_path)
    system = System(root, workers=2)
    systems.append(system)
    slow, fast = _running_pair(root, system)
    argv = [PYTHON, "-m", "farro_core.cli", "kill", "--root", str(root.path), "--wait", "60"]
    proc = subprocess.run(
        [*argv, slow, fast],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.splitlines() == [f"{slow} killed", f"{fast} killed"]
    _killed_by_their_workers(root, slow, fast)
