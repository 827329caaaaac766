"""Snapshots of the operator's-loop screens (the diff pane) at 80x24 and 120x40.

The job's repository is built with fixed dates (farro_tui.seed_work), so its
commit ids, shown in the title, are the same every run.
Each run_before waits for the state under test; snap_compare then waits until the app
is idle and every scheduled animation (a modal's fade-in) is done: no fixed pauses.
Regenerate with ``pytest tests/tui/test_loop_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.diff import DiffScreen
from farro_tui.screens.followup import NoteScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.report import ReportScreen
from farro_tui.seed import FIXED_NOW, seed_showcase
from farro_tui.seed_work import seed_follow_up, seed_work

from .helpers import until

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def work_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FarroApp, str]:
    monkeypatch.setenv("HOME", str(tmp_path))
    root = Root.init(tmp_path / "root")
    jid = seed_work(root, tmp_path / "repo")
    app = FarroApp(root, no_workers=True, clock=lambda: FIXED_NOW, cursor_blink=False, watch=False)
    return app, jid


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_diff_pane(snap_compare: Any, work_root: Any, size: tuple[int, int]) -> None:
    app, jid = work_root

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.ready and app.store.done_loaded, "every row read")
        app.screen.queue.select(jid)
        await pilot.press("d")
        await until(
            pilot,
            lambda: isinstance(app.screen, DiffScreen) and app.screen.loaded,
            "the diff loaded",
        )
        await pilot.press("n", "n")  # the parser: syntax highlighted, + and - tinted

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_land_confirmation(snap_compare: Any, work_root: Any, size: tuple[int, int]) -> None:
    app, jid = work_root

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.ready and app.store.done_loaded, "every row read")
        app.screen.queue.select(jid)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_follow_up_note(snap_compare: Any, work_root: Any, size: tuple[int, int]) -> None:
    app, jid = work_root

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.ready and app.store.done_loaded, "every row read")
        app.screen.queue.select(jid)
        await pilot.press("u")
        await until(pilot, lambda: isinstance(app.screen, NoteScreen), "the note input")
        await pilot.press(*"Also handle a BOM", "ctrl+t")

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_batch_view(
    snap_compare: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    root = Root.init(tmp_path / "root")
    seed_showcase(root)  # every job is in batch "jan"
    app = FarroApp(root, no_workers=True, clock=lambda: FIXED_NOW, cursor_blink=False, watch=False)

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.ready and app.store.done_loaded, "every row read")
        await pilot.press("b")
        await until(
            pilot,
            lambda: isinstance(app.screen, ReportScreen) and app.screen.loads > 0,
            "the batch view",
        )

    assert snap_compare(app, terminal_size=size, run_before=run_before)


# 80x24 only: at 120x40 the pane shows the workspace, the test's own temporary path
@pytest.mark.parametrize("size", SIZES[:1], ids=["80x24"])
def test_follow_up_job_pane(snap_compare: Any, work_root: Any, size: tuple[int, int]) -> None:
    """A follow-up's pane: its parent in the Lineage section; < goes there."""
    app, jid = work_root
    child = seed_follow_up(app.root, jid)

    async def run_before(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: app.ready and app.store.done_loaded, "every row read")
        app.screen.queue.select(child)
        await pilot.press("enter")
        await until(
            pilot,
            lambda: isinstance(app.screen, JobScreen) and app.screen.env is not None,
            "the follow-up's pane",
        )

    assert snap_compare(app, terminal_size=size, run_before=run_before)
