"""Every key a pane's footer offers acts there: ``l`` in the batch and workers panes opens
the log of the job under the cursor, and a key with nothing to act on is shown disabled
and, pressed, says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from farro_core import job, operations
from farro_core.root import Root
from farro_tui.screens.diff import DiffScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.report import ReportScreen
from farro_tui.screens.workers import WorkersScreen
from farro_tui.seed_work import seed_work
from farro_tui.widgets.diff_view import DiffView, FileList

from .helpers import A, FakeSystem, S, claim, console, make, ready, record_notes, until


def footer(screen: Any) -> dict[str, FooterKey]:
    """The footer's keys by action name (``app.log`` -> ``log``)."""
    return {k.action.rsplit(".", 1)[-1]: k for k in screen.query(FooterKey)}


def offered(screen: Any, action: str, enabled: bool = True) -> bool:
    key = footer(screen).get(action)
    return key is not None and key.has_class("-disabled") is not enabled


async def test_l_in_the_batch_pane_opens_the_log_of_the_job_under_the_cursor(root: Root) -> None:
    first = make(root, S.FAILED, "first", labels={"batch": "b1"})
    second = make(root, S.SUCCEEDED, "second", labels={"batch": "b1"})
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(first)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen), "the batch pane")
        pane = app.screen
        table = pane.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2, "both jobs of the batch")
        await until(pilot, lambda: offered(pane, "log"), "l Log offered, enabled")
        table.move_cursor(row=[str(k.value) for k in table.rows].index(second))
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
        assert app.screen.job_id == second
        assert not [m for m, s in notes.seen if s == "warning"], notes.seen


async def test_l_in_an_empty_batch_pane_is_disabled_and_says_why(root: Root) -> None:
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen), "the batch pane")
        pane = app.screen
        assert isinstance(pane, ReportScreen)
        await until(pilot, lambda: pane.loads > 0, "the batch read")
        await until(
            pilot,
            lambda: offered(pane, "log", enabled=False),
            "l Log disabled",
            diagnose=lambda: {a: k.classes for a, k in footer(pane).items()},
        )
        await pilot.press("l")
        await until(pilot, lambda: "no job under the cursor" in notes.text(), "why")
        assert app.screen is pane


async def test_workers_pane_l_and_enter_act_on_the_job_of_the_worker_under_the_cursor(
    root: Root,
) -> None:
    jid = make(root, S.IN_PROGRESS, "running")
    system = FakeSystem(busy=1, idle=1)
    system.workers[0].job = jid
    app = console(root, no_workers=False, system=system)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers pane")
        pane = app.screen
        assert isinstance(pane, WorkersScreen)
        table = pane.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2, "one row per worker")
        busy = [str(k.value) for k in table.rows].index("w0")
        table.move_cursor(row=busy)
        await until(pilot, lambda: offered(pane, "log") and offered(pane, "open"), "enabled")
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the worker's job's log")
        assert app.screen.job_id == jid
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is pane, "back to the workers")

        # an idle worker has no job: both keys shown disabled, and pressed they say why
        table.move_cursor(row=1 - busy)
        await until(
            pilot,
            lambda: offered(pane, "log", enabled=False) and offered(pane, "open", enabled=False),
            "l and enter disabled on an idle worker",
            diagnose=lambda: {a: k.classes for a, k in footer(pane).items()},
        )
        await pilot.press("l")
        await until(pilot, lambda: "worker w1 runs no job" in notes.text(), "why l")
        await pilot.press("enter")
        await until(
            pilot,
            lambda: [t for t, _ in notes.seen].count("worker w1 runs no job") == 2,
            "why enter",
        )
        assert app.screen is pane

        table.move_cursor(row=busy)
        await until(pilot, lambda: offered(pane, "open"), "enter enabled again")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the worker's job")
        assert app.screen.job_id == jid


async def test_the_log_pane_does_not_offer_l_which_would_open_it_again(root: Root) -> None:
    jid = make(root, S.FAILED, "a failed job")
    app = console(root)
    async with app.run_test(size=(120, 24)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
        pane = app.screen
        await until(pilot, lambda: "follow" in footer(pane), "the log pane's footer")
        assert "log" not in footer(pane), list(footer(pane))
        await pilot.press("l")
        await pilot.pause()
        assert app.screen is pane and len(app.screen_stack) == 2


async def test_log_pane_brackets_are_offered_only_where_there_is_an_attempt_to_go_to(
    root: Root,
) -> None:
    once, twice = make(root, S.FAILED, "ran once"), make(root, S.FAILED, "ran twice")
    operations.requeue(root, twice, by="test")
    job.commit(claim(root, twice), S.FAILED, A.AGENT, "failed again")  # attempt 2
    for jid, n in ((once, 1), (twice, 2)):
        logs = root.locate(jid) / "logs"
        logs.mkdir(exist_ok=True)
        for attempt in range(1, n + 1):
            (logs / f"attempt-{attempt}.log").write_text(f"attempt {attempt} ran\n")
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(120, 24)) as pilot:
        await ready(pilot)

        async def log_of(jid: str) -> Any:
            assert app.screen.queue.select(jid)
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
            return app.screen

        def keys(pane: Any, earlier: bool, later: bool) -> bool:
            return offered(pane, "attempt(-1)", earlier) and offered(pane, "attempt(1)", later)

        pane = await log_of(once)
        await until(
            pilot,
            lambda: keys(pane, False, False),
            "[ and ] shown disabled: one attempt",
            diagnose=lambda: {a: k.classes for a, k in footer(pane).items()},
        )
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: "attempt 1 is the only one with a log" in notes.text(), "why")
        await pilot.press("escape")
        await until(pilot, lambda: len(app.screen_stack) == 1, "back to the queue")

        pane = await log_of(twice)
        await until(pilot, lambda: pane.attempt == 2 and keys(pane, True, False), "[ only")
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "attempt 2 is the latest" in notes.text(), "why ]")
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: pane.attempt == 1 and keys(pane, False, True), "] only")
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: "attempt 1 is the first" in notes.text(), "why [")
        assert pane.attempt == 1


async def test_diff_pane_n_at_the_last_file_and_brackets_at_the_ends_say_why(
    root: Root, tmp_path: Path
) -> None:
    jid = seed_work(root, tmp_path / "repo")
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff pane")
        pane = app.screen
        assert isinstance(pane, DiffScreen)
        await until(pilot, lambda: pane.loaded, "the diff loaded")
        view, files = pane.query_one(DiffView), pane.query_one(FileList)
        await pilot.press("p")
        await until(pilot, lambda: "this is the first file" in notes.text(), "why p")
        last = len(view.diff.files) - 1
        await pilot.press(*["n"] * last)
        await until(pilot, lambda: files.current == last, "the last file")
        await pilot.press("n")
        await until(pilot, lambda: "this is the last file" in notes.text(), "why n")
        assert files.current == last
        await pilot.press("p")
        await until(pilot, lambda: files.current == last - 1, "p: the file before")
        await pilot.press("n")
        await until(pilot, lambda: files.current == last, "n: the last file again")

        # attempt 2 of 2: ] is disabled and says why, [ goes to attempt 1
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "attempt 2 is the latest with work" in notes.text(), "why ]")
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: pane.loaded and pane.attempt == 1, "attempt 1")
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: "attempt 1 is the first with work" in notes.text(), "why [")
