"""`u` in the console: the note, the confirmation, the new job; `<`/`>` in the job pane."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from farro_core import audit
from farro_core.job import load
from farro_core.root import Root
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.followup import NoteScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.main import MainScreen
from farro_tui.seed_work import seed_work

from .helpers import S, console, make, ready, record_notes, until
from .test_console import content_text


async def test_u_notes_confirms_and_creates_a_follow_up(root: Root, tmp_path: Path) -> None:
    jid = seed_work(root, tmp_path / "repo")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        notes = record_notes(app)
        assert app.screen.queue.select(jid)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, NoteScreen), "the note input")
        await pilot.press("enter")  # an empty note goes nowhere
        assert isinstance(app.screen, NoteScreen)
        app.screen.query_one(Input).value = "Also handle a BOM."
        await pilot.press("ctrl+t")  # continue from the work commit
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = str(app.screen.query_one("#dialog-body").render())
        assert "Also handle a BOM." in body and "starting from its last work commit" in body
        # the note is the operator's, not "what failed" (the line above it said so)
        assert "your note,\n  Also handle a BOM.\nthen what failed in its last attempt" in body
        await pilot.press("y")
        await until(pilot, lambda: "created follow-up" in notes.text(), "the new job")
        events = [r for r in audit.read(root, jid) if r.get("event") == "followed-up"]
        assert len(events) == 1
        child_id = events[0]["reason"].split()[2]
        child = load(root, child_id)
        assert child.prompt.lineage is not None and child.prompt.lineage.parent == jid
        assert child.prompt.lineage.from_work is not None
        assert "Also handle a BOM." in child.prompt.prompt
        assert child.status == "queued"

        # the parent's pane lists it; > goes there, < comes back to the parent
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the queue")
        app.screen.queue.select(jid)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the parent's pane")
        parent_pane = app.screen
        assert isinstance(parent_pane, JobScreen)
        await until(pilot, lambda: parent_pane.follow_ups == [child_id], "its follow-ups")
        assert f"follow-ups  {child_id}  (>)" in content_text(parent_pane)
        await pilot.press("greater_than_sign")
        await until(
            pilot,
            lambda: isinstance(app.screen, JobScreen) and app.screen.job_id == child_id,
            "the child's pane",
        )
        child_pane = app.screen
        assert isinstance(child_pane, JobScreen)
        await until(pilot, lambda: child_pane.env is not None, "the child loaded")
        assert f"parent  {jid}, from its work" in content_text(child_pane)
        await pilot.press("less_than_sign")
        await until(
            pilot,
            lambda: isinstance(app.screen, JobScreen) and app.screen.job_id == jid,
            "the parent's pane again",
        )


async def test_u_is_not_offered_for_a_job_still_queued(root: Root) -> None:
    jid = make(root, "queued", "not yet")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        assert app.check_action("follow_up", ()) is None  # shown disabled, like requeue
        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)
        assert load(root, jid).prompt.lineage is None and len(root.ids("incoming")) == 1


async def test_the_follow_up_confirmation_quotes_title_and_note_as_written(root: Root) -> None:
    """The dialogs show text, not markup: ``[fast]`` reads ``[fast]`` (it read ``\\[fast]``)."""
    jid = make(root, S.FAILED, "[fast] Fix \x1b[2Jit")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.status_of(jid) == "failed", "the job")
        assert app.screen.queue.select(jid)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, NoteScreen), "the note input")
        assert str(app.screen.query_one("#dialog-body").render()) == "[fast] Fix \\x1b[2Jit"
        app.screen.query_one(Input).value = "keep [b]API[/b] stable"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = str(app.screen.query_one("#dialog-body").render())
    assert "A new job: [fast] Fix \\x1b[2Jit\n" in body, body
    assert "\n  keep [b]API[/b] stable\n" in body, body
