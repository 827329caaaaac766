"""The job state machine, as data.

:data:`TABLE` is the one place a transition is defined. ``commit`` consults it
and raises :class:`IllegalTransition` for anything else; the CLI and the console
ask it what is possible (:func:`targets`) instead of hard-coding rules.
To add a transition, add a row here and a test in tests/core/test_transitions.py
(whose SPEC_TABLE writes docs/spec.md §4.1 out independently).
"""

from __future__ import annotations

from enum import StrEnum

from farro_core.errors import IllegalTransition


class Status(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in-progress"
    STALE = "stale"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"


class Actor(StrEnum):
    AGENT = "agent"
    WATCHDOG = "watchdog"
    OPERATOR = "operator"
    MANAGER = "manager"


S, A = Status, Actor

#: (from, to) -> the actors allowed to make that move.
TABLE: dict[tuple[Status, Status], frozenset[Actor]] = {
    (S.QUEUED, S.IN_PROGRESS): frozenset({A.AGENT}),
    (S.IN_PROGRESS, S.SUCCEEDED): frozenset({A.AGENT}),
    (S.IN_PROGRESS, S.FAILED): frozenset({A.AGENT}),
    (S.IN_PROGRESS, S.QUEUED): frozenset({A.AGENT}),
    (S.IN_PROGRESS, S.STALE): frozenset({A.WATCHDOG}),
    (S.STALE, S.QUEUED): frozenset({A.OPERATOR, A.MANAGER}),
    (S.STALE, S.KILLED): frozenset({A.OPERATOR}),
    (S.QUEUED, S.KILLED): frozenset({A.OPERATOR}),
    (S.IN_PROGRESS, S.KILLED): frozenset({A.AGENT}),
    (S.FAILED, S.QUEUED): frozenset({A.OPERATOR}),
}

#: The queue directory that holds a job of each status.
QUEUE_DIR: dict[Status, str] = {
    S.QUEUED: "incoming",
    S.IN_PROGRESS: "active",
    S.STALE: "active",
    S.SUCCEEDED: "done",
    S.FAILED: "done",
    S.KILLED: "done",
}

TERMINAL: frozenset[Status] = frozenset({S.SUCCEEDED, S.FAILED, S.KILLED})


def allowed(frm: Status, to: Status, actor: Actor) -> bool:
    return actor in TABLE.get((frm, to), frozenset())


def check(frm: Status, to: Status, actor: Actor) -> None:
    """Raise :class:`IllegalTransition` unless ``actor`` may move a job ``frm`` -> ``to``."""
    if not allowed(frm, to, actor):
        actors = TABLE.get((frm, to))
        why = (
            f"only {', '.join(sorted(actors))} may do that"
            if actors
            else "no such transition exists"
        )
        raise IllegalTransition(f"{actor} cannot move a job from {frm} to {to}: {why}")


def targets(frm: Status, actor: Actor) -> frozenset[Status]:
    """Every status ``actor`` may move a ``frm`` job to."""
    return frozenset(to for (f, to), actors in TABLE.items() if f == frm and actor in actors)


def operator_can_requeue(status: Status) -> bool:
    return allowed(status, S.QUEUED, A.OPERATOR)


def operator_can_kill(status: Status) -> bool:
    """Queued and stale jobs are killed directly; a running job through its worker."""
    return allowed(status, S.KILLED, A.OPERATOR) or status is S.IN_PROGRESS
