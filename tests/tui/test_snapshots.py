"""Snapshots of every screen at 80x24 and 120x40, from the fixed showcase root.

Deterministic: fixed ids and timestamps (farro_tui.seed), a fixed clock, no
embedded workers, no cursor blink, HOME pointed at the root's parent so the stat
bar reads ``~/root``, and every done/ row read before the shot.
Regenerate with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.screens.dialogs import ConfirmScreen, HelpScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.seed import FIXED_NOW, seed_showcase

from .helpers import until

SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def showcase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FarroApp, dict[str, str]]:
    monkeypatch.setenv("HOME", str(tmp_path))
    root = Root.init(tmp_path / "root")
    ids = seed_showcase(root)
    app = FarroApp(root, no_workers=True, clock=lambda: FIXED_NOW, cursor_blink=False, watch=False)
    return app, ids


async def _loaded(pilot: Pilot[Any]) -> FarroApp:
    app = pilot.app
    assert isinstance(app, FarroApp)
    await until(pilot, lambda: app.ready and app.store.done_loaded, "every row read")
    await until(pilot, lambda: len(app.screen.queue.ids) == 10, "all ten shown")
    await pilot.pause()
    return app


def _then(
    *keys: str, wait: Callable[[FarroApp], bool] | None = None
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = await _loaded(pilot)
        if keys:
            await pilot.press(*keys)
        if wait is not None:
            await until(pilot, lambda: wait(app), "the screen under test")
        # then snap_compare waits for every scheduled animation (a modal's fade-in)

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_main_screen(snap_compare: Any, showcase: Any, size: tuple[int, int]) -> None:
    app, _ = showcase
    assert snap_compare(app, terminal_size=size, run_before=_then())


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_job_pane(snap_compare: Any, showcase: Any, size: tuple[int, int]) -> None:
    app, _ = showcase

    def loaded(a: FarroApp) -> bool:
        return isinstance(a.screen, JobScreen) and a.screen.env is not None

    # the failed job: rubric verdicts, violations, history
    assert snap_compare(app, terminal_size=size, run_before=_then(*["j"] * 7, "enter", wait=loaded))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_log_pane(snap_compare: Any, showcase: Any, size: tuple[int, int]) -> None:
    app, _ = showcase

    def shown(a: FarroApp) -> bool:
        return isinstance(a.screen, LogScreen) and a.screen.query_one("Log").line_count > 5

    assert snap_compare(app, terminal_size=size, run_before=_then("l", wait=shown))


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_confirm_modal(snap_compare: Any, showcase: Any, size: tuple[int, int]) -> None:
    app, _ = showcase

    def asking(a: FarroApp) -> bool:
        return isinstance(a.screen, ConfirmScreen)

    # mark the stale and the failed job, then requeue both
    assert snap_compare(
        app,
        terminal_size=size,
        run_before=_then("j", "j", "space", *["j"] * 4, "space", "r", wait=asking),
    )


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
def test_help(snap_compare: Any, showcase: Any, size: tuple[int, int]) -> None:
    app, _ = showcase

    def helping(a: FarroApp) -> bool:
        return isinstance(a.screen, HelpScreen)

    assert snap_compare(app, terminal_size=size, run_before=_then("question_mark", wait=helping))
