"""The watchdog on its own: crash after claim step 3, slow-but-healthy workers, tmp/ leftovers."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from support import wait_for, wait_until

from farro_core import crash, job, listing, watchdog
from farro_core.api import submit
from farro_core.identity import WorkerIdentity
from farro_core.manager import sweep_tmp
from farro_core.system import System
from farro_core.transitions import Actor, Status

from .helpers import PYTHON, child_env, make_root, status_is

CLAIM_IN_A_CHILD = (
    "import sys\nfrom farro_core.root import Root\nfrom farro_core import job\n"
    "from farro_core.identity import WorkerIdentity\n"
    "job.claim(Root.open(sys.argv[1]), WorkerIdentity.current('doomed'))\n"
)


def test_a_crash_after_claim_step_3_is_found_in_incoming_and_made_stale(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    queued = [submit(root, f"queued {i}") for i in range(5)]
    env = {**child_env(), "FARRO_CRASH_AT": "claim.committed"}
    out = subprocess.run([PYTHON, "-c", CLAIM_IN_A_CHILD, str(root.path)], env=env, timeout=60)
    assert out.returncode == crash.CRASH_EXIT
    victim = queued[0].id  # oldest first: the one the child claimed
    lc = job.load(root, victim).lifecycle
    assert lc.status is Status.IN_PROGRESS and (root.incoming / victim).is_dir()

    dog = watchdog.Watchdog(root)
    report = dog.sweep()

    assert report.stale == [(victim, "worker gone")]
    now = job.load(root, victim)
    assert now.status is Status.STALE and now.path == root.active / victim
    assert all(job.load(root, e.id).status is Status.QUEUED for e in queued[1:])


def test_unchanged_queued_jobs_are_read_once_not_every_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_root(tmp_path / "root")
    envs = [submit(root, f"queued {i}") for i in range(20)]
    then = time.time() - 10  # changed this recently, a directory is re-read every sweep
    for e in envs:
        os.utime(root.incoming / e.id, (then, then))
    peeks: list[Path] = []
    real = listing.peek_status
    monkeypatch.setattr(listing, "peek_status", lambda p: peeks.append(p) or real(p))
    dog = watchdog.Watchdog(root)
    dog.sweep()
    assert len(peeks) == 20
    peeks.clear()
    dog.sweep()
    assert peeks == []
    # a rewritten job.json (a requeue puts a job back: new file, new inode) is read again
    claimed = job.claim(root, WorkerIdentity.current("w"), ids=[envs[3].id])
    assert claimed is not None
    job.commit(claimed, Status.QUEUED, Actor.AGENT, "retry", claim=None)
    job.release_claim(claimed)
    dog.sweep()
    assert [p.name for p in peeks] == [envs[3].id]  # changed just now: read again
    peeks.clear()
    dog.sweep()
    assert [p.name for p in peeks] == [envs[3].id]  # and again, until it is old enough
    os.utime(root.incoming / envs[3].id, (then, then))
    peeks.clear()
    dog.sweep()
    dog.sweep()
    assert [p.name for p in peeks] == [envs[3].id]  # once more, then remembered


def test_a_slow_but_healthy_worker_is_never_marked_stale(
    tmp_path: Path, systems: list[System]
) -> None:
    root = make_root(tmp_path / "root", agent="sleep 3", stale=1.0)
    system = System(root, workers=1)
    systems.append(system)
    system.start()
    env = submit(root, "slow but alive")
    done = wait_for(lambda: status_is(root, env.id, Status.SUCCEEDED, Status.STALE), "the end")
    assert done.status is Status.SUCCEEDED, done.lifecycle.reason
    assert done.lifecycle.attempt == 1


def test_tmp_leftovers_older_than_an_hour_go_to_quarantine(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    old = root.tmp / "01OLDSTAGING0000000000000.1.ab"
    old.mkdir()
    fresh = root.tmp / "01NEWSTAGING0000000000000.1.cd"
    fresh.mkdir()
    then = time.time() - 2 * 3600
    os.utime(old, (then, then))

    moved = sweep_tmp(root)

    assert moved == [root.quarantine / old.name]
    assert "staging leftover" in (root.quarantine / f"{old.name}.reason.txt").read_text()
    assert fresh.exists() and not old.exists()


def test_the_manager_sweeps_tmp_when_it_takes_the_role(
    tmp_path: Path, systems: list[System]
) -> None:
    root = make_root(tmp_path / "root")
    old = root.tmp / "leftover.1.ab"
    old.write_text("half a job")
    then = time.time() - 2 * 3600
    os.utime(old, (then, then))
    system = System(root, workers=0)
    systems.append(system)
    system.start()
    wait_until(lambda: (root.quarantine / "leftover.1.ab").exists(), "quarantined")


def test_a_job_of_a_worker_that_touches_heartbeat_is_judged_by_that_file(
    tmp_path: Path,
) -> None:
    """Roots made before the claim lock carried the heartbeat: a worker of that version
    touches ``heartbeat`` and never its claim lock, and is alive while it does."""
    root = make_root(tmp_path / "root")
    env = job.claim(root, WorkerIdentity.current("old-version"), ids=[submit(root, "old").id])
    assert env is not None
    try:
        lock, legacy = env.path / ".claim-1.lock", env.path / "heartbeat"
        now = os.stat(lock).st_mtime + 600
        os.utime(lock, (now - 600, now - 600))  # claimed ten minutes ago, never touched since
        legacy.touch()
        os.utime(legacy, (now - 1, now - 1))  # the old worker's last beat
        dog = watchdog.Watchdog(root)
        assert dog.sweep(now=now).stale == []
        os.utime(legacy, (now - 100, now - 100))  # it went silent
        assert [j for j, _ in dog.sweep(now=now).stale] == [env.id]
    finally:
        job.release_claim(env)
