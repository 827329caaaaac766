"""The stale owner: a worker whose claim was superseded can never commit (docs/spec.md §5.6).

Process A claims a job and keeps holding attempt 1's claim lock while the
watchdog marks the job stale, the operator requeues it and process B claims
attempt 2. A's late commit must be refused with Conflict and change nothing.
Also: a SIGSTOPped owner (hung, lock still held) and a SIGKILLed one (lock freed
by the kernel at once).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from support import wait_until

from farro_core import job, locks, operations
from farro_core.envelope import JobSpec
from farro_core.errors import Refused
from farro_core.fsck import fsck
from farro_core.identity import WorkerIdentity
from farro_core.ids import new_id
from farro_core.root import Root
from farro_core.settings import Settings
from farro_core.transitions import Actor, Status
from farro_core.watchdog import Watchdog

from .child import EXIT_CONFLICT, EXIT_OK
from .helpers import Child, audit_lines, children, process_state, scan


def _new_job(root: Root) -> str:
    return job.create(root, JobSpec(prompt="fencing")).id


def _watchdog_marks_stale(root: Root, job_id: str) -> None:
    """What the manager's watchdog does after a heartbeat timeout."""
    env = job.load(root, job_id)
    assert env.status is Status.IN_PROGRESS
    job.commit(env, Status.STALE, Actor.WATCHDOG, "no heartbeat for stale_after_s")


def _claim_free(root: Root, job_id: str, attempt: int) -> bool:
    return job.claim_is_free(root, root.locate(job_id), job_id, attempt)


def _snapshot(root: Root, job_id: str) -> tuple[str, bytes, bytes, int]:
    path = root.locate(job_id)
    return (
        str(path),
        (path / "job.json").read_bytes(),
        (path / "prompt.json").read_bytes(),
        len(audit_lines(root)),
    )


def test_superseded_owner_gets_conflict_and_changes_nothing(root: Root) -> None:
    jid = _new_job(root)
    with children() as kids:
        a = Child(root, "hold", jid, "A")
        kids.append(a)
        got = a.expect_json("claimed ")
        assert (got["attempt"], got["revision"]) == (1, 2)
        assert not _claim_free(root, jid, 1), "A holds attempt 1's claim lock"

        # A live owner is never taken for dead: fsck leaves the job alone.
        assert not [f for f in fsck(root, repair=True) if f.kind == "stale"]
        assert job.load(root, jid).status is Status.IN_PROGRESS

        _watchdog_marks_stale(root, jid)

        # Stale, not yet requeued: A's commit is already refused.
        before = _snapshot(root, jid)
        a.send("commit succeeded")
        assert a.expect_json("result ")["outcome"] == "conflict"
        assert _snapshot(root, jid) == before

        operations.requeue(root, jid, by="test-operator")
        assert not _claim_free(root, jid, 1), "A still holds attempt 1's lock"

        b = Child(root, "hold", jid, "B")
        kids.append(b)
        got = b.expect_json("claimed ")
        assert (got["attempt"], got["revision"]) == (2, 5), "B could not take attempt 2"
        assert not _claim_free(root, jid, 1) and not _claim_free(root, jid, 2)

        # A, still alive and holding attempt 1's lock, tries every commit it could make.
        before = _snapshot(root, jid)
        for status in ("succeeded", "failed", "queued", "killed"):
            a.send(f"commit {status}")
            res = a.expect_json("result ")
            assert res["outcome"] == "conflict", (status, res)
            assert _snapshot(root, jid) == before, f"A's {status} commit changed the job"
        a.send("quit")
        assert a.finish() == EXIT_CONFLICT

        b.send("commit succeeded")
        assert b.expect_json("result ")["outcome"] == "ok"
        b.send("quit")
        assert b.finish() == EXIT_OK

    final = scan(root)[jid]
    assert final.queue == "done"
    assert final.lifecycle.status is Status.SUCCEEDED
    assert (final.lifecycle.attempt, final.lifecycle.revision) == (2, 6)
    recs = [r for r in audit_lines(root) if r["job"] == jid]
    assert [(r["to"], r["worker"]) for r in recs if r["to"] == "succeeded"] == [("succeeded", "B")]
    assert [r["revision"] for r in recs] == [1, 2, 3, 4, 5, 6]


def test_stopped_owner_resumes_after_takeover_and_is_refused(root: Root) -> None:
    jid = _new_job(root)
    with children() as kids:
        a = Child(root, "hold", jid, "A")
        kids.append(a)
        assert a.expect_json("claimed ")["attempt"] == 1

        os.kill(a.pid, signal.SIGSTOP)
        wait_until(lambda: process_state(a.pid) == "T", "A to stop")
        # A's next step is queued up now; it runs the moment A is continued.
        a.send("commit succeeded")

        # Hung, not dead: the kernel keeps its lock, so fsck must not call it gone.
        assert not _claim_free(root, jid, 1)
        assert not [f for f in fsck(root, repair=True) if f.kind == "stale"]
        assert job.load(root, jid).status is Status.IN_PROGRESS

        _watchdog_marks_stale(root, jid)  # its heartbeat stopped
        operations.requeue(root, jid, by="test-operator")

        b = Child(root, "hold", jid, "B")
        kids.append(b)
        assert b.expect_json("claimed ")["attempt"] == 2
        b.send("commit succeeded")
        assert b.expect_json("result ")["outcome"] == "ok"
        b.send("quit")
        assert b.finish() == EXIT_OK
        assert process_state(a.pid) == "T", "A ran while it should have been stopped"

        before = _snapshot(root, jid)
        os.kill(a.pid, signal.SIGCONT)
        res = a.expect_json("result ")
        assert res["outcome"] == "conflict", res
        a.send("quit")
        assert a.finish() == EXIT_CONFLICT
        assert _snapshot(root, jid) == before

    final = scan(root)[jid]
    assert final.queue == "done" and final.lifecycle.status is Status.SUCCEEDED
    assert final.lifecycle.attempt == 2
    assert [r["worker"] for r in audit_lines(root) if r["to"] == "succeeded"] == ["B"]


def test_killed_owner_frees_its_claim_at_once_and_fsck_marks_it_stale(root: Root) -> None:
    jid = _new_job(root)
    with children() as kids:
        a = Child(root, "hold", jid, "A")
        kids.append(a)
        assert a.expect_json("claimed ")["attempt"] == 1
        assert not _claim_free(root, jid, 1)
        os.kill(a.pid, signal.SIGKILL)
        assert a.proc.wait(timeout=60) == -signal.SIGKILL
        # No waiting, no heartbeat timeout: the kernel dropped the lock with the process.
        assert _claim_free(root, jid, 1)

    findings = fsck(root, repair=True)
    assert [(f.kind, f.repaired) for f in findings] == [("stale", True)]
    on_disk = scan(root)[jid]
    assert on_disk.queue == "active" and on_disk.lifecycle.status is Status.STALE
    assert on_disk.lifecycle.revision == 3
    assert fsck(root) == []

    # And the job goes on: requeue, claim attempt 2, finish.
    operations.requeue(root, jid, by="test-operator")
    env = job.claim(root, WorkerIdentity.current("recoverer"), ids=[jid])
    assert env is not None and env.lifecycle.attempt == 2
    env = job.commit(env, Status.SUCCEEDED, Actor.AGENT, "done", worker="recoverer")
    job.release_claim(env)
    assert scan(root)[jid].lifecycle.status is Status.SUCCEEDED
    assert [r["revision"] for r in audit_lines(root) if r["job"] == jid] == [1, 2, 3, 4, 5, 6]


def _clone_done_jobs(root: Root, n: int) -> None:
    """Fill done/ with ``n`` valid, audited, finished jobs, cheaply (copies of one)."""
    env = job.create(root, JobSpec(prompt="filler"))
    got = job.claim(root, WorkerIdentity.current("filler"), ids=[env.id])
    assert got is not None
    job.release_claim(job.commit(got, Status.SUCCEEDED, Actor.AGENT, "ok"))
    src = root.done / env.id
    files = {name: (src / name).read_bytes() for name in ("job.json", "prompt.json")}
    lines = [ln for ln in root.audit_file.read_bytes().splitlines(True) if env.id.encode() in ln]
    extra = []
    for _ in range(n):
        new = new_id().encode()
        d = root.done / new.decode()
        d.mkdir(mode=0o700)
        for name, data in files.items():
            (d / name).write_bytes(data.replace(env.id.encode(), new))
        (d / "prompt.json").chmod(0o444)
        extra += [ln.replace(env.id.encode(), new) for ln in lines]
    with open(root.audit_file, "ab") as fh:
        fh.write(b"".join(extra))


def _scanning(pid: int, where: Path) -> bool:
    """Whether process ``pid`` has a file open under ``where`` right now (via /proc)."""
    prefix = f"{where}/"
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                return True
        except OSError:
            continue
    return False


def test_fsck_never_marks_a_later_live_attempt_stale(root: Root) -> None:
    """fsck reads a job as in-progress (attempt 1), then probes attempt 1's claim lock.

    If meanwhile attempt 1 ended (retry) and attempt 2 was claimed by a live worker,
    attempt 1's lock is free, but the job is not orphaned: fsck must not mark it
    stale. The window is made wide and certain: fsck scans active/ before done/, so
    the job moves on while fsck (a real process) is seen reading done/.
    """
    jid = _new_job(root)
    _clone_done_jobs(root, 3000)
    with children() as kids:
        a = Child(root, "hold", jid, "A")
        b = Child(root, "hold", jid, "B", "wait")
        f = Child(root, "fsck")
        kids += [a, b, f]
        assert a.expect_json("claimed ")["attempt"] == 1
        b.expect("ready")
        f.expect("ready")
        f.send("go")
        wait_until(lambda: _scanning(f.pid, root.done), "fsck to reach done/", timeout=60)
        # fsck has read the job (in active/, attempt 1); now attempt 1 ends and B claims 2.
        a.send("commit queued")
        assert a.expect_json("result ")["outcome"] == "ok"
        a.send("quit")
        assert a.finish() == EXIT_OK
        b.send("go")
        assert b.expect_json("claimed ")["attempt"] == 2
        assert f.proc.poll() is None, "fsck finished before the job moved on: no overlap"
        assert f.finish() == EXIT_OK, f.stderr_text()
        findings = [ln for ln in f.lines if jid in ln]
        assert findings == [], f"fsck touched the live job: {findings}"
        on_disk = scan(root)[jid]
        assert (on_disk.lifecycle.status, on_disk.lifecycle.attempt) == (Status.IN_PROGRESS, 2)
        b.send("commit succeeded")
        assert b.expect_json("result ")["outcome"] == "ok", "B was fenced out of its own job"
        b.send("quit")
        assert b.finish() == EXIT_OK
    assert scan(root)[jid].lifecycle.status is Status.SUCCEEDED


def test_a_stopped_commit_lock_holder_blocks_only_its_own_job(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stopped (SIGSTOP, Ctrl-Z) inside a commit holds that job's commit lock.

    Claimers must pass that job by and take the next one, promptly and without an
    error; otherwise every worker stalls on the oldest job and the queue halts.
    Promptly: the claimer's one wait on the stuck lock is bounded by
    ``CLAIM_COMMIT_WAIT_S`` and ends by that bound, while the holder still holds it.
    """
    waits: list[tuple[str, float, str]] = []  # (lock, timeout, how the wait ended)
    real_lock = locks.lock

    def watched(dir_fd: int, name: str, timeout: float = 10.0) -> locks.Flock:
        try:
            held = real_lock(dir_fd, name, timeout)
        except Refused:
            waits.append((name, timeout, "refused"))
            raise
        waits.append((name, timeout, "taken"))
        return held

    first = _new_job(root)
    second = _new_job(root)
    assert job.candidates(root) == [first, second]
    with children() as kids:
        s = Child(root, "lock-commit", first)
        kids.append(s)
        s.expect("locked")
        os.kill(s.pid, signal.SIGSTOP)
        wait_until(lambda: process_state(s.pid) == "T", "the holder to stop")

        worker = WorkerIdentity.current("claimer")
        monkeypatch.setattr(locks, "lock", watched)
        env = job.claim(root, worker)
        monkeypatch.undo()
        assert env is not None and env.id == second, "the queue stalled behind a stuck lock"
        # the claim returned while the stopped holder still holds the first job's lock
        assert process_state(s.pid) == "T"
        assert waits == [
            (locks.COMMIT_LOCK, job.CLAIM_COMMIT_WAIT_S, "refused"),  # passed the first by
            (locks.COMMIT_LOCK, job.CLAIM_COMMIT_WAIT_S, "taken"),  # claimed the second
        ]
        job.release_claim(job.commit(env, Status.SUCCEEDED, Actor.AGENT, "ok"))
        assert job.load(root, first).status is Status.QUEUED  # passed by, untouched

        os.kill(s.pid, signal.SIGCONT)
        assert s.finish() == EXIT_OK  # closing its stdin releases the lock
    env = job.claim(root, worker)
    assert env is not None and env.id == first
    job.release_claim(job.commit(env, Status.SUCCEEDED, Actor.AGENT, "ok"))


def test_watchdog_stales_a_hung_owner_but_requeues_only_once_it_is_gone(root: Root) -> None:
    """docs/spec.md §5.6, liveness: a hung worker (SIGSTOP) keeps its claim lock but stops its
    heartbeat, so the watchdog makes its job stale; ``auto_requeue_stale`` requeues
    only once the worker is gone (kill -9 frees the lock), never from under it."""
    jid = _new_job(root)
    settings = Settings(auto_requeue_stale=True, stale_after_s=30)
    with children() as kids:
        a = Child(root, "hold", jid, "A")
        kids.append(a)
        assert a.expect_json("claimed ")["attempt"] == 1
        os.kill(a.pid, signal.SIGSTOP)
        wait_until(lambda: process_state(a.pid) == "T", "A to stop")

        dog = Watchdog(root, settings)
        assert dog.sweep().stale == []  # its heartbeat is fresh: a slow worker is left alone
        later = time.time() + 60  # the sweep a minute on: no heartbeat since the claim
        report = dog.sweep(now=later)
        assert [j for j, _ in report.stale] == [jid] and report.requeued == []
        assert job.load(root, jid).status is Status.STALE
        assert dog.sweep(now=later).requeued == [], "requeued from under a live (hung) worker"

        a.kill()  # SIGKILL: the kernel frees the claim lock
        assert dog.sweep(now=later).requeued == [jid]
    on_disk = scan(root)[jid]
    assert (on_disk.queue, on_disk.lifecycle.status) == ("incoming", Status.QUEUED)
