"""Every key a pane's footer offers acts there: ``l`` in the batch and workers panes opens
the log of the job under the cursor, and a key with nothing to act on is shown disabled
and, pressed, says why."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable
from textual.widgets._footer import FooterKey

from farro_core.root import Root
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.report import ReportScreen
from farro_tui.screens.workers import WorkersScreen

from .helpers import FakeSystem, S, console, make, ready, record_notes, until


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
