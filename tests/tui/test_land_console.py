"""`m` in the console: the landing confirmation (no by default), the landing, the mark."""

from __future__ import annotations

import subprocess
from pathlib import Path

from farro_core import audit
from farro_core.job import load
from farro_core.root import Root
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.main import MainScreen
from farro_tui.seed_work import seed_work
from farro_tui.widgets.queue_view import row_cells

from .helpers import S, console, make, ready, record_notes, until


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


async def test_m_confirms_then_lands_and_marks_the_row(root: Root, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    jid = seed_work(root, repo)
    before = git(repo, "rev-parse", "main")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("enter")  # "no" has the focus: nothing happens
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "the dialog closed")
        assert git(repo, "rev-parse", "main") == before
        assert load(root, jid).lifecycle.result.landed is None  # type: ignore[union-attr]

        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        await pilot.press("y")
        await until(
            pilot,
            lambda: load(root, jid).lifecycle.result.landed is not None,  # type: ignore[union-attr]
            "the landing",
        )
        landed = load(root, jid).lifecycle.result.landed  # type: ignore[union-attr]
        assert landed is not None and landed.into == "main"
        assert git(repo, "rev-parse", "main") == landed.commit != before
        assert git(repo, "rev-parse", "main^") == before
        assert list(audit.read(root, jid))[-1]["event"] == "landed"
        await until(
            pilot,
            lambda: getattr(app.store.rows.get(jid), "landed", None) == "main",
            "the row to say landed",
        )
        cells = row_cells(jid, app.store.rows[jid], 120, app.clock(), False, False)
        assert "landed  " in [text for text, _ in cells]

        notes = record_notes(app)
        await pilot.press("m")  # landed already: nothing offered
        assert not isinstance(app.screen, ConfirmScreen)
        assert "nothing to land" in notes.text()


async def test_a_job_that_does_not_apply_is_named_and_nothing_moves(
    root: Root, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    jid = seed_work(root, repo)
    (repo / "csvparse" / "parser.py").write_text("conflicting\n")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "conflict")
    before = git(repo, "rev-parse", "main")
    other = make(root, "failed", "not landable")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        notes = record_notes(app)
        q = app.screen.queue
        q.marks.update({jid, other})
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = str(app.screen.query_one("#dialog-body").render())
        assert "Land 1 job, in this order?" in body and "1 skipped" in body
        await pilot.press("y")
        await until(pilot, lambda: "does not apply cleanly" in notes.text(), "the refusal")
        assert jid in notes.text()
        assert git(repo, "rev-parse", "main") == before
        assert load(root, jid).lifecycle.result.landed is None  # type: ignore[union-attr]


async def test_the_land_confirmation_quotes_a_title_as_written(root: Root) -> None:
    """The dialog shows text, not markup: ``[fast]`` reads ``[fast]`` (it read ``\\[fast]``),
    and a control character in it is written out, not sent to the terminal."""
    jid = make(root, S.SUCCEEDED, "[fast] [b]x[/b] \x1b[2J")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.status_of(jid) == "succeeded", "the job")
        assert app.screen.queue.select(jid)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = str(app.screen.query_one("#dialog-body").render())
    assert f"  {jid} [fast] [b]x[/b] \\x1b[2J → (no branch: farro land --into)" in body, body
    assert "\\[" not in body and "\x1b" not in body
