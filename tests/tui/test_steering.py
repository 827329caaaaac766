"""Requeue and kill from the console: the effect on disk and in the audit log.

Each action goes through a confirmation whose default is "no"; the table decides
what is legal; a refusal is a notification and changes nothing.
"""

from __future__ import annotations

import json
import threading

import pytest
from support import wait_until
from textual.widgets import Static

from farro_core import job, operations
from farro_core.root import Root
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.main import MainScreen

from .helpers import A, S, claim, console, last_audit, make, ready, record_notes, status, until
from .helpers import where as queue_of

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
        assert "1 marked job is hidden by the filter" in body
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
        def requested() -> bool:
            return stop.is_set() or job.kill_requested(c.path, c.lifecycle.attempt) is not None

        wait_until(requested, "control/kill (or the test's end)")
        by = job.kill_requested(c.path, c.lifecycle.attempt)
        if stop.is_set() or by is None:  # the test ended first
            return
        seen.append(by)
        showing.wait(60)  # until the console shows "killing" (60 s: a failure bound only)
        job.commit(c, S.KILLED, A.AGENT, f"killed at the request of {by}")
        job.release_claim(c)

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


#: quick liveness and stop timings, and an agent that runs until it is killed
REAL_WORKERS_TOML = """\
heartbeat_s = 0.2
stale_after_s = 30
watchdog_interval_s = 0.2
rescan_s = 0.2
shutdown_grace_s = 0.2
kill_grace_s = 5
"""


async def test_kill_several_running_jobs_at_once_with_real_workers(root: Root) -> None:
    """Every marked running job is killed and reported killed, none refused (issue 10:
    the second job, already killed when the console came to wait for it, was refused)."""
    (root.path / "farro.toml").write_text(REAL_WORKERS_TOML)
    # the console acts in id order: the first job dies only at SIGKILL, kill_grace_s after
    # its SIGTERM, so the second is killed (by its own worker) while the first is awaited
    slow = make(root, S.QUEUED, "ignores SIGTERM", id="aaaa-slow", agent="trap '' TERM; sleep 600")
    fast = make(root, S.QUEUED, "dies at SIGTERM", id="zzzz-fast", agent=["sleep", "600"])
    ids = [slow, fast]
    app = console(Root.open(root.path), no_workers=False, workers=2, kill_wait_s=60.0)
    notes = record_notes(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(
            pilot,
            lambda: all(status(root, i) == "in-progress" for i in ids),
            "both jobs running in the embedded workers",
            timeout=30,
        )
        await until(
            pilot,
            lambda: all(app.store.status_of(i) == "in-progress" for i in ids),
            "both shown running",
        )
        for jid in ids:
            select(app, jid)
            await pilot.press("space")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert "2 running" in str(app.screen.query_one("#dialog-body", Static).content)
        await pilot.press("y")
        await until(
            pilot,
            lambda: "killed 2 jobs" in notes.text() or any(s == "warning" for _, s in notes.seen),
            "the outcome of the kill",
            timeout=60,
        )
        assert not [m for m, sev in notes.seen if sev == "warning"], notes.text()
        assert "killed 2 jobs" in notes.text()
    for jid in ids:
        assert status(root, jid) == "killed" and queue_of(root, jid) == "done"
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


async def test_illegal_actions_are_disabled_and_their_keys_say_why(root: Root) -> None:
    jid = make(root, S.SUCCEEDED, "finished")
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        select(app, jid)
        await pilot.pause()
        assert app.check_action("requeue", ()) is None  # shown disabled
        assert app.check_action("kill", ()) is None
        await pilot.press("r")
        await until(pilot, lambda: len(notes.seen) == 1, "r explained")
        await pilot.press("x")
        await until(pilot, lambda: len(notes.seen) == 2, "x explained")
        assert isinstance(app.screen, MainScreen)
    (requeue, sev), (kill, _) = notes.seen
    assert sev == "warning"
    assert requeue == (
        f"job {jid} has already succeeded; only stale or failed jobs can be requeued"
    )
    assert kill == (
        f"job {jid} has already succeeded; only queued, running or stale jobs can be killed"
    )
    assert status(root, jid) == "succeeded"
    assert last_audit(root, jid)["to"] == "succeeded"


async def test_refused_keys_explain_themselves_in_the_job_pane_and_for_marks(root: Root) -> None:
    from farro_tui.screens.job import JobScreen

    done = [make(root, S.KILLED, "killed"), make(root, S.SUCCEEDED, "ok")]
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        for jid in done:
            select(app, jid)
            await pilot.press("space")
        await pilot.press("x")
        await until(pilot, lambda: len(notes.seen) == 1, "x on marks explained")
        assert notes.seen[0][0] == (
            "none of the 2 marked jobs can be (1 killed, 1 succeeded); "
            "only queued, running or stale jobs can be killed"
        )
        await pilot.press("escape")  # clear the marks
        select(app, done[0])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
        screen = app.screen
        await until(pilot, lambda: screen.env is not None, "the job loaded")
        await pilot.press("x")
        await until(pilot, lambda: len(notes.seen) == 2, "x in the job pane explained")
        assert notes.seen[1][0].startswith(f"job {done[0]} was already killed;")


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
    notes = record_notes(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        select(app, jid)
        await pilot.pause()
        assert app.check_action("requeue", ()) is False
        assert app.check_action("kill", ()) is False
        offered = {b.binding.action for b in app.screen.active_bindings.values()}
        assert not offered & {"requeue", "kill"}  # hidden, not merely disabled
        await pilot.press("r", "x")
        await until(pilot, lambda: len(notes.seen) == 2, "both keys explained")
        assert [m for m, _ in notes.seen] == ["read-only console: it changes no job"] * 2
        assert isinstance(app.screen, MainScreen)
        assert all(d not in ("Requeue", "Kill") for _, d, _ in app.help_rows())
        assert "READ-ONLY" in str(app.stats_text(120))
    assert status(root, jid) == "stale"


async def test_readonly_runs_no_workers_and_takes_no_manager_role(root: Root) -> None:
    jid = make(root, S.QUEUED, "waits for a worker elsewhere")
    app = console(root, readonly=True, no_workers=False)  # as `farro-tui --readonly` builds it
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.system is None
        assert app.check_action("pause", ()) is False
        assert list(root.workers_dir.iterdir()) == []  # no worker ever wrote its status
        assert not (root.run / "manager.json").exists()  # the manager role was never taken
    assert status(root, jid) == "queued"
