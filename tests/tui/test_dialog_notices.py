"""At 80x24 notifications never cover a dialog's question: those raised before it opened
stay under it, those raised while it is open wait and show once it is answered."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input
from textual.widgets._toast import Toast

from farro_core import job
from farro_core.root import Root
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.followup import NoteScreen
from farro_tui.screens.main import MainScreen
from farro_tui.screenshots import readable_svg

from .helpers import A, S, console, make, ready, until
from .test_screenshot_text import text_lines


def screen_text(app: Any) -> list[str]:
    """The terminal's rows as drawn (what the operator reads)."""
    return text_lines(readable_svg(app.export_screenshot()))


def toasts(app: Any) -> list[str]:
    """The text of the notifications shown on the top screen."""
    return [t.render().plain for t in app.screen.query(Toast) if t.visible]


def fail(root: Root, job_id: str, why: str) -> None:
    job.commit(job.load(root, job_id), S.FAILED, A.AGENT, why)


async def test_notifications_do_not_cover_the_requeue_dialog_and_wait_for_its_answer(
    root: Root,
) -> None:
    target = make(root, S.FAILED, "requeue me")
    running = [make(root, S.IN_PROGRESS, f"long running job number {n}") for n in range(4)]
    app = console(root)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await ready(pilot)
        for jid in running[:3]:  # three failure notices stack up the right half
            fail(root, jid, "attempt 1: agent exited 1; no attempts left (1 of 1)")
        await until(pilot, lambda: len(toasts(app)) == 3, "three failure notices shown")
        assert app.screen.queue.select(target)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        # the dialog is a screen of its own: the notices are put on it too (drawn or not)
        await until(pilot, lambda: len(app.screen.query(Toast)) == 3, "the dialog's notices")
        await pilot.pause()
        question = f"  {target} requeue me (failed)"
        await until(
            pilot,
            lambda: any(question in row for row in screen_text(app)),
            "the dialog's question whole on screen",
            diagnose=lambda: "\n".join(screen_text(app)),
        )
        rows = screen_text(app)
        assert any("Requeue 1 job?" in row for row in rows), "\n".join(rows)
        assert any("No (n)" in row and "Requeue (y)" in row for row in rows), "\n".join(rows)

        # a job fails while the dialog asks: its notice waits, the question stays whole
        fail(root, running[3], "attempt 1: agent timed out")
        await until(pilot, lambda: app.store.status_of(running[3]) == "failed", "seen to fail")
        await pilot.pause()
        rows = screen_text(app)
        assert any(question in row for row in rows), "\n".join(rows)
        assert not any(f"{running[3]} failed" in t for t in toasts(app))

        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the dialog answered")
        await until(
            pilot,
            lambda: any(f"Job {running[3]} failed" in t for t in toasts(app)),
            "the notice that waited, shown",
            diagnose=lambda: toasts(app),
        )


async def test_an_empty_follow_up_note_is_refused_in_the_dialog_itself(root: Root) -> None:
    jid = make(root, S.FAILED, "follow me up")
    app = console(root)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, NoteScreen), "the note dialog")
        assert isinstance(app.focused, Input)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: any("the note may not be empty" in row for row in screen_text(app)),
            "the refusal, readable in the dialog",
            diagnose=lambda: "\n".join(screen_text(app)),
        )
        assert isinstance(app.screen, NoteScreen)
