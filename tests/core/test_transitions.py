"""The transition table, exhaustively: every (from, to, actor) triple is either in the
table (and allowed) or refused with IllegalTransition."""

from __future__ import annotations

import itertools

import pytest

from farro_core import transitions as t
from farro_core.errors import IllegalTransition, Refused
from farro_core.transitions import QUEUE_DIR, TABLE, Actor, Status

S, A = Status, Actor

# The table of docs/spec.md §4.1, written out independently of the code.
SPEC_TABLE = {
    ("queued", "in-progress"): {"agent"},
    ("in-progress", "succeeded"): {"agent"},
    ("in-progress", "failed"): {"agent"},
    ("in-progress", "queued"): {"agent"},
    ("in-progress", "stale"): {"watchdog"},
    ("stale", "queued"): {"operator", "manager"},
    ("stale", "killed"): {"operator"},
    ("queued", "killed"): {"operator"},
    ("in-progress", "killed"): {"agent"},
    ("failed", "queued"): {"operator"},
}

TRIPLES = list(itertools.product(Status, Status, Actor))


def test_every_status_and_actor_is_known() -> None:
    assert {s.value for s in Status} == {
        "queued",
        "in-progress",
        "stale",
        "succeeded",
        "failed",
        "killed",
    }
    assert {a.value for a in Actor} == {"agent", "watchdog", "operator", "manager"}


def test_table_is_exactly_the_spec() -> None:
    got = {(f.value, to.value): {a.value for a in actors} for (f, to), actors in TABLE.items()}
    assert got == SPEC_TABLE


@pytest.mark.parametrize(("frm", "to", "actor"), TRIPLES, ids=lambda v: str(v))
def test_every_triple_allowed_iff_in_table(frm: Status, to: Status, actor: Actor) -> None:
    expected = actor.value in SPEC_TABLE.get((frm.value, to.value), set())
    assert t.allowed(frm, to, actor) is expected
    if expected:
        t.check(frm, to, actor)  # does not raise
    else:
        with pytest.raises(IllegalTransition) as info:
            t.check(frm, to, actor)
        msg = str(info.value)
        assert frm.value in msg and to.value in msg and actor.value in msg
        assert isinstance(info.value, Refused) and info.value.exit_code == 1


def test_refusal_names_who_may_when_the_move_exists() -> None:
    with pytest.raises(IllegalTransition, match="only watchdog may"):
        t.check(S.IN_PROGRESS, S.STALE, A.OPERATOR)
    with pytest.raises(IllegalTransition, match="no such transition"):
        t.check(S.SUCCEEDED, S.QUEUED, A.OPERATOR)


def test_count_of_allowed_triples() -> None:
    allowed = [x for x in TRIPLES if t.allowed(*x)]
    assert len(allowed) == sum(len(v) for v in SPEC_TABLE.values()) == 11


@pytest.mark.parametrize(("frm", "actor"), list(itertools.product(Status, Actor)))
def test_targets_consistent_with_table(frm: Status, actor: Actor) -> None:
    expected = {to for to in Status if actor.value in SPEC_TABLE.get((frm.value, to.value), ())}
    assert t.targets(frm, actor) == expected
    for to in t.targets(frm, actor):
        assert t.allowed(frm, to, actor)


def test_terminal_states_have_no_automatic_exit() -> None:
    for frm in (S.SUCCEEDED, S.KILLED):
        for actor in Actor:
            assert t.targets(frm, actor) == frozenset()
    # failed can only be retried by an operator
    assert t.targets(S.FAILED, A.OPERATOR) == {S.QUEUED}
    assert all(t.targets(S.FAILED, a) == frozenset() for a in Actor if a is not A.OPERATOR)
    assert {S.SUCCEEDED, S.FAILED, S.KILLED} == t.TERMINAL


def test_no_self_transitions() -> None:
    for s in Status:
        for a in Actor:
            assert not t.allowed(s, s, a)


def test_every_status_has_a_queue_dir() -> None:
    assert set(QUEUE_DIR) == set(Status)
    assert QUEUE_DIR == {
        S.QUEUED: "incoming",
        S.IN_PROGRESS: "active",
        S.STALE: "active",
        S.SUCCEEDED: "done",
        S.FAILED: "done",
        S.KILLED: "done",
    }


def test_every_status_in_table_is_reachable_from_queued() -> None:
    seen = {S.QUEUED}
    frontier = [S.QUEUED]
    while frontier:
        s = frontier.pop()
        for a in Actor:
            for to in t.targets(s, a):
                if to not in seen:
                    seen.add(to)
                    frontier.append(to)
    assert seen == set(Status)


@pytest.mark.parametrize("status", list(Status))
def test_operator_helpers(status: Status) -> None:
    assert t.operator_can_requeue(status) is (status in (S.STALE, S.FAILED))
    assert t.operator_can_kill(status) is (status in (S.QUEUED, S.STALE, S.IN_PROGRESS))


def test_string_values_are_accepted() -> None:
    assert t.allowed(Status("queued"), Status("in-progress"), Actor("agent"))
    with pytest.raises(ValueError):
        Status("running")
