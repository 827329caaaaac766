"""Requeue and kill from the console: the effect on disk and in the audit log.

Each action goes through a confirmation whose default is "no"; the table decides
what is legal; a refusal is a notification and changes nothing.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from textual.widgets import Static

from farro_core import job, operations
from farro_core.root import Root
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.main import MainScreen

from .conftest import A, S, claim, console, last_audit, make, ready, record_notes, status, until
from .conftest import where as queue_of

SIZES = [(80, 24), (120, 40)]


def committed(root: Root, job_id: str, to: str) -> bool:
    """The commit to ``to`` is over: its audit line, written after job.json and the move
    (by the console's steer thread, which the app's exit does not wait for)."""
    return bool(last_audit(root, job_id)["to"] == to)


def select(app: object, job_id: str) -> None:
    screen = app.screen  # type: ignore[attr-defined]
    assert isinstance(screen, MainScreen)
    assert screen.queue.select(job_id), f"{job_id} is not shown"


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
async def test_requeue_a_stale_job(root: Root, size: tuple[int, int]) -> None:
    jid = make(root, S.STALE, "port the scheduler")
    app = console(root)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        await pilot.press("3")  # running tab: all of active/, stale included
        await until(pilot, lambda: app.screen.queue.ids == [jid], "the stale job in tab 3")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: committed(root, jid, "queued"), "the requeue on disk")
    assert queue_of(root, jid) == "incoming"
    line = last_audit(root, jid)
    assert (line["from"], line["to"], line["actor"]) == ("stale", "queued", "operator")
    assert line["reason"].endswith("@tui")


async def test_requeue_marked_jobs_counts_those_hidden_by_the_filter(root: Root) -> None:
    stale = make(root, S.STALE, "alpha stale")
    failed = make(root, S.FAILED, "beta failed")
    ok = make(root, S.SUCCEEDED, "gamma done")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        for jid in (stale, failed):
            select(app, jid)
            await pilot.press("space")
        await pilot.press("slash", *"alpha", "enter")
        await until(pilot, lambda: app.screen.queue.ids == [stale], "the filter")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = str(app.screen.query_one("#dialog-body", Static).content)
        assert "Requeue 2 jobs?" in body
        assert "1 of the marked jobs are hidden by the filter" in body
        await pilot.press("y")
        await until(
            pilot,
            lambda: committed(root, stale, "queued") and committed(root, failed, "queued"),
            "both requeued",
        )
        await until(pilot, lambda: not app.screen.queue.marks, "marks cleared after the action")
    assert status(root, ok) == "succeeded"
    for jid, frm in ((stale, "stale"), (failed, "failed")):
        line = last_audit(root, jid)
        assert (line["from"], line["to"], line["actor"]) == (frm, "queued", "operator")


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
async def test_kill_marked_queued_and_stale_jobs(root: Root, size: tuple[int, int]) -> None:
    queued = make(root, S.QUEUED, "queued one")
    stale = make(root, S.STALE, "stale one")
    app = console(root)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        for jid in (queued, stale):
            select(app, jid)
            await pilot.press("space")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(
            pilot,
            lambda: committed(root, queued, "killed") and committed(root, stale, "killed"),
            "both killed",
        )
    for jid, frm in ((queued, "queued"), (stale, "stale")):
        assert queue_of(root, jid) == "done"
        line = last_audit(root, jid)
        assert (line["from"], line["to"], line["actor"]) == (frm, "killed", "operator")


async def test_kill_a_running_job_through_its_worker(root: Root) -> None:
    jid = make(root, S.QUEUED, "runs forever")
    c = claim(root, jid)
    stop = threading.Event()
    showing = threading.Event()
    seen: list[str] = []

    def worker() -> None:  # the owning worker honours control/kill, as farro_core's does
        while not stop.is_set():
            by = job.kill_requested(c.path, c.lifecycle.attempt)
            if by is not None:
                seen.append(by)
                deadline = time.monotonic() + 10  # until the console shows "killing"
                while not showing.is_set() and time.monotonic() < deadline:
                    time.sleep(0.01)
                job.commit(c, S.KILLED, A.AGENT, f"killed at the request of {by}")
                job.release_claim(c)
                return
            time.sleep(0.01)

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    app = console(root)
    notes = record_notes(app)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await ready(pilot)
            select(app, jid)
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            assert "1 running" in str(app.screen.query_one("#dialog-body", Static).content)
            await pilot.press("y")
            await until(pilot, lambda: jid in app.screen.queue.killing, "the row shows killing")
            showing.set()
            await until(pilot, lambda: status(root, jid) == "killed", "the worker's kill")
            await until(pilot, lambda: app.store.status_of(jid) == "killed", "killed on screen")
            await until(pilot, lambda: "killed " + jid in notes.text(), "the notification")
    finally:
        stop.set()
        t.join(5)
    assert "kill requested" in notes.text()
    assert seen and seen[0].endswith("@tui")
    body = json.loads((root.done / jid / "control" / "kill").read_text())
    assert body["attempt"] == 1
    line = last_audit(root, jid)
    assert (line["from"], line["to"], line["actor"]) == ("in-progress", "killed", "agent")


async def test_a_refused_action_is_a_notification_and_changes_nothing(root: Root) -> None:
    jid = make(root, S.STALE, "moves on meanwhile")
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        select(app, jid)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        # while the operator reads the prompt, somebody else requeues it and a worker claims it
        operations.requeue(root, jid, by="someone-else")
        c = claim(root, jid, "w9")
        before = (c.path / "job.json").read_bytes()
        audit_before = last_audit(root, jid)
        await pilot.press("y")
        await until(pilot, lambda: any(s == "warning" for _, s in notes.seen), "the refusal")
        assert app.is_running
    assert "is running; only stale or failed jobs can be requeued" in notes.text()
    assert (c.path / "job.json").read_bytes() == before
    assert last_audit(root, jid) == audit_before
    job.release_claim(c)


async def test_illegal_actions_are_disabled_never_offered(root: Root) -> None:
    jid = make(root, S.SUCCEEDED, "finished")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        select(app, jid)
        await pilot.pause()
        assert app.check_action("requeue", ()) is None  # shown disabled
        assert app.check_action("kill", ()) is None
        await pilot.press("r", "x")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
    assert status(root, jid) == "succeeded"
    assert last_audit(root, jid)["to"] == "succeeded"


@pytest.mark.parametrize("answer", ["n", "escape", "enter"])
async def test_the_confirmation_defaults_to_no(root: Root, answer: str) -> None:
    jid = make(root, S.FAILED, "failed once")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        select(app, jid)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert app.screen.focused is not None and app.screen.focused.id == "no"
        await pilot.press(answer)
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the dialog closed")
        await pilot.pause()  # the dialog's answer handled: a "yes" would have started a steer
        assert not [w for w in app.workers if w.group == "steer"]
    assert status(root, jid) == "failed"


async def test_readonly_hides_every_action_that_changes_a_job(root: Root) -> None:
    jid = make(root, S.STALE, "stale but read-only")
    app = console(root, readonly=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        select(app, jid)
        await pilot.pause()
        assert app.check_action("requeue", ()) is False
        assert app.check_action("kill", ()) is False
        offered = {b.binding.action for b in app.screen.active_bindings.values()}
        assert not offered & {"requeue", "kill"}  # hidden, not merely disabled
        await pilot.press("r", "x")
        await pilot.pause()  # every message handled: a dialog would be up by now
        assert isinstance(app.screen, MainScreen)
        assert all(d not in ("Requeue", "Kill") for _, d, _ in app.help_rows())
        assert "READ-ONLY" in str(app.stats_text(120))
    assert status(root, jid) == "stale"
