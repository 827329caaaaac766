"""What an operator does to a job: requeue and kill, shared by the CLI and the console.

Both go through :func:`farro_core.job.commit`, so the transition table decides
what is legal, and a job that moved on meanwhile is refused, never overwritten.
"""

from __future__ import annotations

import time

from farro_core.envelope import Envelope
from farro_core.errors import IllegalTransition, Refused
from farro_core.job import commit, kill_requested, load, request_kill
from farro_core.root import Root
from farro_core.transitions import Actor, Status, allowed

_PHRASE = {
    Status.SUCCEEDED: "has already succeeded",
    Status.FAILED: "has already failed",
    Status.KILLED: "was already killed",
    Status.IN_PROGRESS: "is running",
}


def phrase(status: Status) -> str:
    """A job's status as words for a refusal: 'has already succeeded', 'is queued'."""
    return _PHRASE.get(status, f"is {status}")


def requeue(root: Root, job_id: str, *, by: str = "operator") -> Envelope:
    """Put a stale or failed job back in the queue with a fresh attempt budget."""
    env = load(root, job_id)
    if not allowed(env.status, Status.QUEUED, Actor.OPERATOR):
        raise IllegalTransition(
            f"job {job_id} {phrase(env.status)}; only stale or failed jobs can be requeued"
        )
    return commit(
        env,
        Status.QUEUED,
        Actor.OPERATOR,
        f"requeued by {by}",
        worker=None,
        claim=None,
        not_before=None,
        attempt_base=env.lifecycle.attempt,
    )


def kill(root: Root, job_id: str, *, by: str = "operator", wait_s: float = 30.0) -> Envelope:
    """Kill a job: a queued or stale one directly, a running one through its worker.

    A running job's worker owns it, so the operator writes ``control/kill`` and
    waits (up to ``wait_s``) for that worker to stop the agent and commit killed.
    """
    env = load(root, job_id)
    if allowed(env.status, Status.KILLED, Actor.OPERATOR):
        return commit(env, Status.KILLED, Actor.OPERATOR, f"killed by {by}")
    if env.status is not Status.IN_PROGRESS:
        raise IllegalTransition(
            f"job {job_id} {phrase(env.status)}; only queued, running or stale jobs can be killed"
        )
    if kill_requested(env.path, env.lifecycle.attempt) is None:
        request_kill(env, by)
    if wait_s <= 0:
        return env
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = load(root, job_id)
        if now.lifecycle.attempt != env.lifecycle.attempt or now.status is not Status.IN_PROGRESS:
            if now.status is Status.KILLED:
                return now
            raise Refused(f"job {job_id} became {now.status} before its worker killed it")
    raise Refused(
        f"kill requested, but job {job_id} is still in-progress after {wait_s:g}s "
        "(is its worker alive? the watchdog will mark it stale if not)"
    )
