"""A job seen to fail gives a notification; the bell rings only when the settings ask."""

from __future__ import annotations

from pathlib import Path

from farro_core import job
from farro_core.root import Root
from farro_core.transitions import Actor, Status
from farro_tui.app import FarroApp

from .helpers import console, make, ready, record_notes, until


async def _fail_one(root: Root) -> tuple[list[tuple[str, str]], int]:
    jid = make(root, Status.IN_PROGRESS, "flaky job")
    make(root, Status.FAILED, "failed before the console opened")
    app = console(root)
    rings = []
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        notes = record_notes(app)
        original = app.bell
        app.bell = lambda: (rings.append(1), original())[1]  # type: ignore[method-assign]
        env = job.load(root, jid)
        job.commit(env, Status.FAILED, Actor.AGENT, "attempt 1: check tests failed")
        await until(pilot, lambda: notes.seen, "the notification")
        # a second notice or ring would come with a later read of the job: wait until the
        # console read its last state (failed, in done/), which nothing changes after
        await until(pilot, lambda: last_read(app, jid) == ("done", "failed"), "the job in done/")
        await pilot.pause()  # and what the console queued in answer to it has run
        return notes.seen, len(rings)


def last_read(app: FarroApp, job_id: str) -> tuple[str, str] | None:
    row = app.store.rows.get(job_id)
    return None if row is None else (row.queue, row.status)


async def test_a_failure_is_announced_without_a_bell_by_default(root: Root) -> None:
    seen, rings = await _fail_one(root)
    assert seen == [("flaky job: attempt 1: check tests failed", "error")]
    assert rings == 0


async def test_the_bell_rings_when_asked(tmp_path: Path) -> None:
    Root.init(tmp_path / "root")
    (tmp_path / "root" / "farro.toml").write_text("bell_on_failure = true\n")
    root = Root.open(tmp_path / "root")
    seen, rings = await _fail_one(root)
    assert len(seen) == 1 and seen[0][1] == "error"
    assert rings == 1
