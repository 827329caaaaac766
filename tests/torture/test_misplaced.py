"""What the torture run found: a kill -9 between a commit's job.json write and its move
(crash point ``commit.written``) leaves a job in the wrong queue dir -- queued in active/
where no worker looks, or killed in incoming/ where it counts against max_queued. The
watchdog (the manager) must finish that move on its own, with no operator running fsck,
and audit the revision the crash kept out of the log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farro_core import audit, crash, fsck, job, operations
from farro_core.envelope import parse_spec
from farro_core.identity import WorkerIdentity
from farro_core.locks import CLAIMS
from farro_core.root import Root
from farro_core.transitions import Actor, Status
from farro_core.watchdog import Watchdog

ME = WorkerIdentity.current("misplaced")


class Crash(BaseException):
    """Stands for the process dying at a named crash point."""


@pytest.fixture(autouse=True)
def _release() -> Iterator[None]:
    yield
    for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
        CLAIMS.release(key)


def _crash_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real = crash.point

    def point(where: str) -> None:
        if where == name:
            raise Crash(where)
        real(where)

    monkeypatch.setattr(crash, "point", point)


def _revisions(root: Root, job_id: str) -> list[int]:
    return sorted(int(r["revision"]) for r in audit.read(root, job_id))


def test_retry_cut_before_its_move_is_requeued_by_the_watchdog(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = job.create(root, parse_spec({"prompt": "x"}))
    got = job.claim(root, ME)
    assert got is not None
    _crash_at(monkeypatch, "commit.written")
    with pytest.raises(Crash):
        job.commit(got, Status.QUEUED, Actor.AGENT, "retry", claim=None)
    monkeypatch.undo()
    job.release_claim(got)
    assert (root.active / env.id).is_dir()  # queued, but in active/: nobody would claim it
    assert job.claim(root, ME) is None

    Watchdog(root).sweep()
    assert (root.incoming / env.id).is_dir()
    again = job.claim(root, ME)
    assert again is not None and again.id == env.id
    assert _revisions(root, env.id) == [1, 2, 3, 4]  # revision 3 audited as recovered
    assert fsck.fsck(root) == []


def test_kill_of_a_queued_job_cut_before_its_move_is_finished_by_the_watchdog(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = job.create(root, parse_spec({"prompt": "x"}))
    _crash_at(monkeypatch, "commit.written")
    with pytest.raises(Crash):
        operations.kill(root, env.id)
    monkeypatch.undo()
    assert (root.incoming / env.id).is_dir()  # killed, but still in incoming/
    assert root.count("incoming") == 1

    Watchdog(root).sweep()
    assert (root.done / env.id).is_dir() and root.count("incoming") == 0
    assert job.load(root, env.id).status is Status.KILLED
    assert _revisions(root, env.id) == [1, 2]
    assert fsck.fsck(root) == []
