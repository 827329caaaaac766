"""``farro keep``: the operator's mark that ``farro gc`` leaves a job as it is.

A mark, not a transition: job.json's ``kept`` (when, by whom) is written under the
job's commit lock with revision+1 and a ``kept`` (``unkept``) audit line, and
survives every later commit (a requeue, a landing). Every job is checked before
any is marked, so an unknown, running or archived id among several changes none.

A running job is refused: its worker's commit names the revision it read, and a
mark written meanwhile would fence that commit off. An archived job is refused
too: its record is read-only there, and gc never looks at it again anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from farro_core import job
from farro_core.envelope import Envelope
from farro_core.errors import FarroError, Refused, Running
from farro_core.root import Root, archived
from farro_core.transitions import Status


@dataclass(frozen=True)
class Marked:
    """One job after :func:`mark`: ``changed`` False when it already was as asked."""

    job_id: str
    changed: bool
    env: Envelope | None = None
    error: FarroError | None = None  # refused while marking (it started running meanwhile)


def check(root: Root, ids: Sequence[str]) -> tuple[list[Envelope], list[FarroError]]:
    """The jobs to mark, and the refusal of every id that cannot be (all of them)."""
    envs: list[Envelope] = []
    refusals: list[FarroError] = []
    for job_id in dict.fromkeys(ids):
        try:
            env = job.load(root, job_id)
        except FarroError as exc:
            refusals.append(exc)
            continue
        if archived(env.path):
            refusals.append(
                Refused(
                    f"job {job_id} is archived (farro gc --archive): its record is read-only, "
                    "and gc never takes an archived job's branch or refs"
                )
            )
        elif env.status is Status.IN_PROGRESS:
            refusals.append(Running(f"job {job_id} is running: mark it once it has finished"))
        else:
            envs.append(env)
    return envs, refusals


def mark(envs: Sequence[Envelope], *, by: str, kept: bool = True) -> list[Marked]:
    """Mark (``kept``) or unmark each checked job, in order. A job that started running
    since it was checked is refused alone (:attr:`Marked.error`): it moved on."""
    out = []
    for env in envs:
        try:
            new = job.mark_kept(env, by, kept=kept)
        except FarroError as exc:
            out.append(Marked(env.id, False, error=exc))
            continue
        out.append(Marked(env.id, new is not None, new or env))
    return out
