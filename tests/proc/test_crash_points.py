"""Every named crash point: a real process dies there, then recovery puts the root right.

For each point in :data:`farro_core.crash.POINTS` (and, for commit points, each
kind of commit: agent succeeded, agent retry to queued, operator requeue of a
stale job), a child process runs the transaction with ``FARRO_CRASH_AT`` set and
must die with exit 77. The test first checks that it died *there* (the disk
shows exactly the state that point describes), then runs recovery as the
system would (``fsck --repair``, which also marks in-progress jobs whose claim
lock is free as stale) and checks: nothing lost, no torn file, every directory
matches its job's status, prompt.json byte-identical, every revision audited,
a second fsck finds nothing, and the job can still be driven to a terminal state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from farro_core import crash, job, operations
from farro_core.envelope import JobSpec, Lifecycle, load_lifecycle, load_prompt
from farro_core.fsck import TMP_MAX_AGE_S, fsck
from farro_core.identity import WorkerIdentity
from farro_core.ids import new_id
from farro_core.root import Root
from farro_core.transitions import TERMINAL, Actor, Status
from farro_core.watchdog import Watchdog

from .child import EXIT_OK
from .helpers import (
    assert_fully_audited,
    audited_revisions,
    backdate,
    child_env,
    run_child,
    scan,
)

VARIANTS = {
    "create": ("create",),
    "claim": ("claim",),
    "commit": ("succeed", "retry", "requeue"),
}
# Where each commit variant takes the job: (status, queue dir).
COMMIT_TARGET = {
    "succeed": (Status.SUCCEEDED, "done"),
    "retry": (Status.QUEUED, "incoming"),
    "requeue": (Status.QUEUED, "incoming"),
}


# Points that leave an in-progress job whose worker is gone. In a running system the
# manager's watchdog finds those first, so they are also recovered that way: a
# watchdog sweep, then fsck for whatever the sweep leaves to it.
ORPHANS = {
    ("claim.committed", "claim"),
    ("claim.moved", "claim"),
    ("commit.locked", "succeed"),
    ("commit.locked", "retry"),
}
# A few points are also recovered the way an operator would: `farro fsck --repair`.
BY_CLI = {
    ("create.published", "create"),
    ("claim.committed", "claim"),
    ("commit.written", "succeed"),
}
FARRO = Path(sys.executable).with_name("farro")
# Points whose scenario needs more than one job live in a test of their own.
DEDICATED = {
    "create.batch_synced": "tests/proc/test_batch_publish.py",
    "create.intent_written": "tests/proc/test_batch_publish.py",
    "create.batch_partial": "tests/proc/test_batch_publish.py",
    "inbox.created": "tests/system/test_inbox.py",
}


def _cases() -> list[Any]:
    out = []
    for point in crash.POINTS:
        if point in DEDICATED:
            continue
        # A new crash point with no scenario here shows up as a failing test.
        for variant in VARIANTS.get(point.split(".")[0], ("no-scenario",)):
            out.append(pytest.param(point, variant, "fsck", id=f"{point}-{variant}"))
            if (point, variant) in ORPHANS:
                out.append(
                    pytest.param(point, variant, "watchdog", id=f"{point}-{variant}-watchdog")
                )
            if (point, variant) in BY_CLI:
                out.append(pytest.param(point, variant, "cli", id=f"{point}-{variant}-cli"))
    return out


def _job_state(root: Root, jid: str) -> tuple[str, bytes]:
    path = root.locate(jid)
    return path.parent.name, (path / "job.json").read_bytes()


def _drive_to_terminal(root: Root, jid: str) -> None:
    """What an operator and a worker would do next with a recovered job."""
    worker = WorkerIdentity.current("after-recovery")
    for _ in range(4):
        env = job.load(root, jid)
        if env.status in TERMINAL:
            return
        if env.status is Status.STALE:
            operations.requeue(root, jid, by="test-operator")
        elif env.status is Status.QUEUED:
            claimed = job.claim(root, worker, ids=[jid])
            assert claimed is not None, f"{jid} is queued but cannot be claimed"
            done = job.commit(claimed, Status.SUCCEEDED, Actor.AGENT, "ok", worker=worker.name)
            job.release_claim(done)
        else:
            raise AssertionError(f"{jid} is {env.status} after recovery")
    raise AssertionError(f"{jid} never reached a terminal state")


@pytest.mark.parametrize(("point", "variant", "recovery"), _cases())
def test_crash_point(root: Root, point: str, variant: str, recovery: str) -> None:
    assert variant != "no-scenario", f"crash point {point} has no scenario in this test"
    jid = new_id()
    phase = point.split(".")[0]

    # ------------------------------------------------------------ set up
    if phase == "create":
        args: tuple[str, ...] = ("create-id", jid)
        prompt_bytes = None
    else:
        env = job.create(root, JobSpec(prompt=f"crash at {point}"))
        jid = env.id
        prompt_bytes = (root.incoming / jid / "prompt.json").read_bytes()
        if variant == "requeue":
            got = run_child(root, "claim", jid)
            assert got.returncode == EXIT_OK, got.stderr
            assert job.claim_is_free(root, root.active / jid, jid, 1)
            env = job.load(root, jid)
            job.commit(env, Status.STALE, Actor.WATCHDOG, "worker gone")
        args = (variant, jid)
    before = None if phase == "create" else _job_state(root, jid)

    # ------------------------------------------------------------ crash
    got = run_child(root, *args, crash_at=point)
    assert got.returncode == crash.CRASH_EXIT, (
        f"expected a crash at {point} (exit {crash.CRASH_EXIT}), got {got.returncode}\n"
        f"{got.stdout}\n{got.stderr}"
    )

    # ------------------------------------------------------------ it died *there*
    _assert_state_at(root, point, variant, jid, before)

    # ------------------------------------------------------------ recovery
    if recovery == "watchdog":
        report = Watchdog(root).sweep()
        assert report.stale == [(jid, "worker gone")]
        assert job.load(root, jid).status is Status.STALE
        assert Watchdog(root).sweep().stale == []
    if recovery == "cli":
        cli = subprocess.run(
            [str(FARRO), "fsck", "--repair", "--json", "--root", str(root.path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
        )
        assert cli.returncode == 0, cli.stderr
        repaired = json.loads(cli.stdout)
        assert repaired and all(f["repaired"] for f in repaired), repaired
    else:
        fsck(root, repair=True)
    jobs = scan(root)  # no torn file, every dir matches its status, no duplicates

    if point in ("create.staged", "create.prompt_written", "create.job_written"):
        # Never published: the job does not exist, and tmp/ holds only its staging dir.
        assert jid not in jobs
        staged = os.listdir(root.tmp)
        assert len(staged) == 1 and staged[0].startswith(f"{jid}.")
        assert audited_revisions(root, jid) == set()
        # fsck leaves a fresh staging dir alone (it could be a create in progress) ...
        assert fsck(root) == []
        # ... and moves an old one to quarantine, with a reason, deleting nothing.
        backdate(root.tmp / staged[0], TMP_MAX_AGE_S + 600)
        findings = fsck(root, repair=True)
        assert [(f.kind, f.repaired) for f in findings] == [("tmp", True)]
        assert os.listdir(root.tmp) == []
        assert (root.quarantine / staged[0]).is_dir()
        assert (root.quarantine / f"{staged[0]}.reason.txt").is_file()
        # The create was never done, so doing it again works.
        assert run_child(root, "create-id", jid).returncode == EXIT_OK
        jobs = scan(root)

    assert jid in jobs, f"job {jid} was lost"
    on_disk = jobs[jid]
    if prompt_bytes is not None:
        assert on_disk.prompt_bytes == prompt_bytes, "prompt.json changed"
    else:
        assert load_prompt(on_disk.prompt_bytes, "prompt.json").prompt == f"crash test job {jid}"
    assert os.stat(on_disk.path / "prompt.json").st_mode & 0o777 == 0o444
    _assert_recovered_status(point, variant, on_disk.lifecycle.status, on_disk.lifecycle.revision)
    if (point, variant) in (("claim.locked", "claim"), ("commit.locked", "requeue")):
        assert _job_state(root, jid) == before, "a crash before any write changed job.json"
    assert_fully_audited(root, jid, on_disk.lifecycle.revision)
    assert os.listdir(root.tmp) == []
    assert fsck(root) == [], "a second fsck still finds something to repair"

    # ------------------------------------------------------------ and it goes on
    _drive_to_terminal(root, jid)
    final = scan(root)[jid]
    assert final.queue == "done" and final.lifecycle.status in TERMINAL
    if prompt_bytes is not None:
        assert final.prompt_bytes == prompt_bytes
    assert_fully_audited(root, jid, final.lifecycle.revision)
    assert fsck(root) == []


def _assert_state_at(
    root: Root, point: str, variant: str, jid: str, before: tuple[str, bytes] | None
) -> None:
    """The disk right after the crash shows exactly what the point's name promises."""
    in_queues = [q for q in ("incoming", "active", "done") if os.path.lexists(root.path / q / jid)]
    tmp = os.listdir(root.tmp)
    revs = audited_revisions(root, jid)

    def lifecycle() -> Lifecycle:
        path = root.locate(jid)
        return load_lifecycle((path / "job.json").read_bytes(), "job.json")

    if point.startswith("create.") and point != "create.published":
        assert in_queues == [] and len(tmp) == 1
        staged = sorted(os.listdir(root.tmp / tmp[0]))
        want = {
            "create.staged": [],
            "create.prompt_written": ["prompt.json"],
            "create.job_written": ["job.json", "prompt.json"],
        }[point]
        assert staged == want, f"staging dir holds {staged}"
        return
    if point == "create.published":
        assert in_queues == ["incoming"] and tmp == []
        assert revs == set(), "audited although the crash came before the audit line"
        return

    lc = lifecycle()
    assert before is not None
    if point == "claim.locked":
        assert _job_state(root, jid) == before
        assert job.claim_is_free(root, root.incoming / jid, jid, 1)
        return
    if point in ("claim.committed", "claim.moved"):
        assert in_queues == (["incoming"] if point == "claim.committed" else ["active"])
        assert (lc.status, lc.attempt, lc.revision) == (Status.IN_PROGRESS, 1, 2)
        assert 2 not in revs
        # The worker is gone: its claim lock is free, and no other worker may claim it.
        assert job.claim_is_free(root, root.path / in_queues[0] / jid, jid, 1)
        assert job.claim(root, WorkerIdentity.current("bystander"), ids=[jid]) is None
        return

    # commit points: the child claimed (agent variants) or the job was stale (requeue)
    old_rev = 3 if variant == "requeue" else 2
    status, queue = COMMIT_TARGET[variant]
    if point == "commit.locked":
        assert in_queues == ["active"]
        if variant == "requeue":
            assert _job_state(root, jid) == before
        else:
            assert (lc.status, lc.revision) == (Status.IN_PROGRESS, 2)
        assert max(revs) == old_rev
        return
    assert (lc.status, lc.revision) == (status, old_rev + 1)
    assert old_rev + 1 not in revs
    if point == "commit.written":
        assert in_queues == ["active"], "moved although the crash came before the move"
    else:
        assert in_queues == [queue]


def _assert_recovered_status(point: str, variant: str, status: Status, revision: int) -> None:
    """What fsck --repair must have made of the job."""
    want: tuple[Status, int]
    if point.startswith("create.") or point == "claim.locked":
        want = (Status.QUEUED, 1)
    elif point in ("claim.committed", "claim.moved"):
        want = (Status.STALE, 3)  # in-progress with its worker gone
    elif point == "commit.locked":
        want = (Status.STALE, 3)  # agents: their worker died; requeue: untouched
    else:
        target, _ = COMMIT_TARGET[variant]
        want = (target, 4 if variant == "requeue" else 3)
    assert (status, revision) == want
