"""What an operator does to a job: requeue and kill, shared by the CLI and the console.

Both go through :func:`farro_core.job.commit`, so the transition table decides
what is legal, and a job that moved on meanwhile is refused, never overwritten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from farro_core.envelope import Envelope
from farro_core.errors import Conflict, FarroError, IllegalTransition, Refused
from farro_core.job import commit, kill_requested, load, request_kill
from farro_core.root import Root, archived
from farro_core.transitions import QUEUE_DIR, Actor, Status, allowed

_PHRASE = {
    Status.SUCCEEDED.value: "has already succeeded",
    Status.FAILED.value: "has already failed",
    Status.KILLED.value: "was already killed",
    Status.IN_PROGRESS.value: "is running",
    "gone": "has left the queues (quarantined?)",
}
_VALUES = frozenset(s.value for s in Status)


def phrase(status: Status | str) -> str:
    """A job's status as words for a refusal: 'has already succeeded', 'is queued'.

    The one wording for the CLI and the console; besides the statuses it knows
    ``gone`` (the job left the queues) and says ``is X`` of anything else.
    """
    return _PHRASE.get(str(status), f"is {status}")


@dataclass(frozen=True)
class Selection:
    """What :func:`select` picked, and how many jobs it could not read to decide."""

    ids: list[str]
    unreadable: int


def select(
    root: Root, statuses: Collection[str], labels: Mapping[str, str] | None = None
) -> Selection:
    """Ids of the jobs in ``statuses`` that carry every label of ``labels``, oldest first.

    Reads only the queue directories those statuses live in (a requeue of failed
    jobs never reads incoming/), with the listing's cheap reads. A job whose files
    cannot be read is counted, not picked: the caller says so, as ``farro ls`` does.
    """
    from farro_core.listing import oldest_first, scan

    queues = list(dict.fromkeys(QUEUE_DIR[Status(s)] for s in statuses))
    want = dict(labels or {})
    rows, unreadable = [], 0
    for row in scan(root, queues, statuses):
        if row.status == "corrupt":
            unreadable += 1
        elif row.status in statuses and all(row.labels.get(k) == v for k, v in want.items()):
            rows.append(row)
    return Selection([row.id for row in sorted(rows, key=oldest_first)], unreadable)


def requeue(root: Root, job_id: str, *, by: str = "operator") -> Envelope:
    """Put a stale or failed job back in the queue with a fresh attempt budget."""
    env = load(root, job_id)
    if not allowed(env.status, Status.QUEUED, Actor.OPERATOR):
        raise IllegalTransition(
            f"job {job_id} {phrase(env.status)}; only stale or failed jobs can be requeued"
        )
    if archived(env.path):
        raise Refused(
            f"job {job_id} is archived (farro gc --archive) and never runs again: "
            f"`farro retry {job_id} --note ...` makes a follow-up of it"
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


@dataclass(frozen=True)
class Killed:
    """What became of one job a kill was asked for.

    ``outcome`` is ``killed`` (done: by us, by its worker, or by someone else
    meanwhile), ``requested`` (running, its worker was asked and not waited for)
    or ``refused`` (``error`` says why: an illegal move, a job that finished
    otherwise, a worker that did not answer in time).
    """

    job_id: str
    outcome: Literal["killed", "requested", "refused"]
    env: Envelope | None = None
    error: FarroError | None = None


def kill_many(
    root: Root,
    job_ids: Sequence[str],
    *,
    by: str = "operator",
    wait_s: float = 30.0,
    on_requested: Callable[[list[str]], None] | None = None,
) -> list[Killed]:
    """Kill jobs: queued or stale ones directly, running ones through their workers.

    The one kill path of the CLI and the console. Every running job's worker is
    asked first (``control/kill``), then all of them are waited for together,
    up to ``wait_s`` in all: a job killed meanwhile by anyone counts as killed,
    never as refused. ``on_requested`` hears the running jobs before the wait.
    Results come in the order of ``job_ids``.
    """
    ids = list(dict.fromkeys(job_ids))
    out: dict[str, Killed] = {}
    asked: dict[str, Envelope] = {}  # running job -> its envelope when asked
    for job_id in ids:
        try:
            env = _kill_or_ask(root, job_id, by)
        except FarroError as exc:
            out[job_id] = Killed(job_id, "refused", error=exc)
            continue
        if env.status is Status.KILLED:
            out[job_id] = Killed(job_id, "killed", env)
        else:
            asked[job_id] = env
    if asked and wait_s > 0:
        if on_requested is not None:
            on_requested(list(asked))
        out.update(_wait_killed(root, asked, wait_s))
    for job_id, env in asked.items():
        out.setdefault(job_id, Killed(job_id, "requested", env))
    return [out[i] for i in ids]


def _kill_or_ask(root: Root, job_id: str, by: str) -> Envelope:
    """Commit killed (queued or stale), or ask the worker (running): the envelope after."""
    for _ in range(3):
        env = load(root, job_id)
        if allowed(env.status, Status.KILLED, Actor.OPERATOR):
            try:
                return commit(env, Status.KILLED, Actor.OPERATOR, f"killed by {by}")
            except Conflict:
                continue  # claimed (or requeued) meanwhile: decide again on what it is now
        if env.status is not Status.IN_PROGRESS:
            raise IllegalTransition(
                f"job {job_id} {phrase(env.status)}; "
                "only queued, running or stale jobs can be killed"
            )
        if kill_requested(env.path, env.lifecycle.attempt) is None:
            request_kill(env, by)
        return env
    raise Refused(f"job {job_id} keeps changing; try again")


def _wait_killed(root: Root, asked: dict[str, Envelope], wait_s: float) -> dict[str, Killed]:
    """Wait for the workers of every asked job at once, until ``wait_s`` has passed."""
    out: dict[str, Killed] = {}
    left = dict(asked)
    deadline = time.monotonic() + wait_s
    while left:
        for job_id, was in list(left.items()):
            try:
                now = load(root, job_id)
            except FarroError as exc:  # quarantined or unreadable meanwhile
                out[job_id] = Killed(job_id, "refused", error=exc)
                del left[job_id]
                continue
            if now.lifecycle.attempt == was.lifecycle.attempt and now.status is Status.IN_PROGRESS:
                continue
            del left[job_id]
            if now.status is Status.KILLED:
                out[job_id] = Killed(job_id, "killed", now)
            else:
                why = f"job {job_id} became {now.status} before its worker killed it"
                out[job_id] = Killed(job_id, "refused", now, Refused(why))
        if left and time.monotonic() >= deadline:
            for job_id in left:
                why = (
                    f"kill requested, but job {job_id} is still in-progress after {wait_s:g}s; "
                    "the request stands. Is its worker alive (`farro stats`)? If the job "
                    "turns stale, kill it again"
                )
                out[job_id] = Killed(job_id, "refused", left[job_id], Refused(why))
            break
        if left:
            time.sleep(0.05)
    return out


def kill(root: Root, job_id: str, *, by: str = "operator", wait_s: float = 30.0) -> Envelope:
    """Kill one job (see :func:`kill_many`); a refusal raises its error."""
    (result,) = kill_many(root, [job_id], by=by, wait_s=wait_s)
    if result.error is not None:
        raise result.error
    assert result.env is not None
    return result.env
