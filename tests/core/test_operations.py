"""Operator actions: requeue (stale or failed only, with a fresh attempt budget) and kill
(queued or stale directly; a running job through its worker and control/kill)."""

from __future__ import annotations

import threading

import pytest
from support import wait_for

from farro_core import job, operations
from farro_core.errors import IllegalTransition, Refused
from farro_core.root import Root
from farro_core.transitions import Actor, Status

from .helpers import audit_of, claimed, queues_holding, snapshot, spec, worker

S, A = Status, Actor


def make_stale(root: Root) -> str:
    env = job.create(root, spec())
    c = claimed(root)
    job.commit(c, S.STALE, A.WATCHDOG, "no heartbeat")
    job.release_claim(c)
    return env.id


def make_failed_exhausted(root: Root, max_attempts: int = 2) -> str:
    env = job.create(root, spec(max_attempts=max_attempts))
    for n in range(1, max_attempts + 1):
        c = claimed(root)
        assert c.lifecycle.attempt == n
        to = S.QUEUED if n < max_attempts else S.FAILED
        job.commit(c, to, A.AGENT, f"exit 1 (attempt {n})")
        job.release_claim(c)
    return env.id


# ---------------------------------------------------------------- requeue


def test_requeue_stale(root: Root) -> None:
    jid = make_stale(root)
    env = operations.requeue(root, jid, by="ann")
    lc = env.lifecycle
    assert (lc.status, lc.revision, lc.attempt, lc.attempt_base) == (S.QUEUED, 4, 1, 1)
    assert lc.claim is None and lc.not_before is None and lc.reason == "requeued by ann"
    assert queues_holding(root, jid) == ["incoming"]
    line = audit_of(root, jid)[-1]
    assert (line["from"], line["to"], line["actor"], line["revision"]) == (
        "stale",
        "queued",
        "operator",
        4,
    )
    again = claimed(root)
    assert again.id == jid and again.lifecycle.attempt == 2


def test_requeue_failed_resets_the_attempt_budget(root: Root) -> None:
    jid = make_failed_exhausted(root, max_attempts=2)
    before = job.load(root, jid)
    assert before.lifecycle.attempts_left(2) == 0
    env = operations.requeue(root, jid)
    assert env.lifecycle.attempt_base == 2 and env.lifecycle.attempts_left(2) == 2
    assert job.load(root, jid).lifecycle.attempts_left(2) == 2
    c = claimed(root)
    assert c.lifecycle.attempt == 3 and c.lifecycle.attempts_left(2) == 1


def test_requeue_is_never_refused_for_the_attempt_count(root: Root) -> None:
    jid = make_failed_exhausted(root, max_attempts=1)
    for _ in range(3):
        operations.requeue(root, jid)
        c = claimed(root)
        job.commit(c, S.FAILED, A.AGENT, "again")
        job.release_claim(c)
    assert job.load(root, jid).lifecycle.attempt == 4


@pytest.mark.parametrize("status", [S.QUEUED, S.IN_PROGRESS, S.SUCCEEDED, S.KILLED])
def test_requeue_refused_for_other_statuses(root: Root, status: Status) -> None:
    env = job.create(root, spec())
    if status is S.KILLED:
        job.commit(env, S.KILLED, A.OPERATOR, "x")
    elif status is not S.QUEUED:
        c = claimed(root)
        if status is S.SUCCEEDED:
            job.commit(c, S.SUCCEEDED, A.AGENT, "x")
    before = snapshot(root)
    words = operations.phrase(status)
    with pytest.raises(IllegalTransition, match=f"{words}; only stale or failed"):
        operations.requeue(root, env.id)
    assert snapshot(root) == before


def test_requeue_unknown_job(root: Root) -> None:
    with pytest.raises(Refused):
        operations.requeue(root, "abcdefgh0000")


# ---------------------------------------------------------------- kill


def test_kill_queued_directly(root: Root) -> None:
    env = job.create(root, spec())
    killed = operations.kill(root, env.id, by="ann")
    assert killed.status is S.KILLED and killed.lifecycle.reason == "killed by ann"
    assert queues_holding(root, env.id) == ["done"]
    line = audit_of(root, env.id)[-1]
    assert (line["from"], line["to"], line["actor"]) == ("queued", "killed", "operator")
    assert job.claim(root, worker()) is None


def test_kill_stale_directly(root: Root) -> None:
    jid = make_stale(root)
    killed = operations.kill(root, jid)
    assert killed.status is S.KILLED and queues_holding(root, jid) == ["done"]


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED, S.KILLED])
def test_kill_refused_for_finished_jobs(root: Root, status: Status) -> None:
    env = job.create(root, spec())
    if status is S.KILLED:
        job.commit(env, S.KILLED, A.OPERATOR, "x")
    else:
        job.commit(claimed(root), status, A.AGENT, "x")
    before = snapshot(root)
    with pytest.raises(IllegalTransition, match="only queued, running or stale jobs can be killed"):
        operations.kill(root, env.id)
    assert snapshot(root) == before


def test_kill_running_without_waiting_writes_the_request(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)
    back = operations.kill(root, env.id, by="ann", wait_s=0)
    assert back.status is S.IN_PROGRESS
    assert job.kill_requested(c.path, 1) == "ann"
    assert job.load(root, env.id).lifecycle == c.lifecycle  # job.json untouched
    first = (c.path / "control" / "kill").read_bytes()
    operations.kill(root, env.id, by="bob", wait_s=0)  # already requested: kept
    assert (c.path / "control" / "kill").read_bytes() == first


def test_kill_running_waits_for_its_worker(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)
    seen: list[str] = []

    def worker_loop() -> None:  # the worker owning the attempt honours control/kill
        by = wait_for(lambda: job.kill_requested(c.path, c.lifecycle.attempt), "control/kill", 20)
        seen.append(by)
        job.commit(c, S.KILLED, A.AGENT, f"killed at the request of {by}")
        job.release_claim(c)

    t = threading.Thread(target=worker_loop)
    t.start()
    try:
        killed = operations.kill(root, env.id, by="ann", wait_s=20)
    finally:
        t.join()
    assert seen == ["ann"]
    assert killed.status is S.KILLED and queues_holding(root, env.id) == ["done"]
    line = audit_of(root, env.id)[-1]
    assert (line["from"], line["to"], line["actor"]) == ("in-progress", "killed", "agent")


def test_kill_running_refused_if_the_worker_finishes_it_otherwise(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)

    def finish() -> None:
        wait_for(lambda: job.kill_requested(c.path, 1), "control/kill", 20)
        job.commit(c, S.SUCCEEDED, A.AGENT, "finished first")

    t = threading.Thread(target=finish)
    t.start()
    try:
        with pytest.raises(Refused, match="became succeeded before its worker killed it"):
            operations.kill(root, env.id, wait_s=20)
    finally:
        t.join()


def test_kill_running_times_out_when_no_worker_answers(root: Root) -> None:
    env = job.create(root, spec())
    claimed(root)
    with pytest.raises(Refused, match=r"still in-progress after 0\.2s"):
        operations.kill(root, env.id, wait_s=0.2)
    assert job.load(root, env.id).status is S.IN_PROGRESS


def test_late_kill_request_never_kills_the_next_attempt(root: Root) -> None:
    env = job.create(root, spec())
    c1 = claimed(root)
    operations.kill(root, env.id, wait_s=0)  # names attempt 1
    job.commit(job.load(root, env.id), S.STALE, A.WATCHDOG, "hung")
    job.release_claim(c1)
    operations.requeue(root, env.id)
    c2 = claimed(root)
    assert c2.lifecycle.attempt == 2
    assert job.kill_requested(c2.path, 2) is None
    operations.kill(root, env.id, by="bob", wait_s=0)  # a new request for attempt 2
    assert job.kill_requested(c2.path, 2) == "bob"


def test_a_refusal_never_contradicts_itself(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal names the status the core refused on, not one read again afterwards:
    a job requeued by someone else in between once gave "job X is queued; only stale
    or failed jobs can be requeued"."""
    from typer.testing import CliRunner

    from farro_core.cli import app

    env = job.create(root, spec())  # queued on disk from now on
    refused_on = "job {} has already succeeded; only stale or failed jobs can be requeued"

    def requeue(r: Root, job_id: str, *, by: str = "operator") -> None:
        raise IllegalTransition(refused_on.format(job_id))  # what the core saw then

    monkeypatch.setattr(operations, "requeue", requeue)
    ran = CliRunner().invoke(app, ["requeue", "--root", str(root.path), env.id])
    assert ran.exit_code == 1
    assert refused_on.format(env.id) in ran.output
    assert "is queued" not in ran.output
    assert operations.phrase("gone") == "has left the queues (quarantined?)"
    assert operations.phrase(S.IN_PROGRESS) == "is running"


def test_the_cli_refuses_in_the_consoles_words(root: Root) -> None:
    """One phrase for a status in refusals: `farro requeue` of a running job says what the
    console says ('is running'), and a job gone from the queues is named so."""
    from typer.testing import CliRunner

    from farro_core.cli import app

    job.create(root, spec())
    env = claimed(root)
    try:
        ran = CliRunner().invoke(app, ["requeue", "--root", str(root.path), env.id])
    finally:
        job.release_claim(env)
    assert ran.exit_code == 1
    assert f"job {env.id} is running; only stale or failed jobs can be requeued" in ran.output
    assert operations.phrase("gone") == "has left the queues (quarantined?)"
