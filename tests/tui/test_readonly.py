"""``farro-tui --readonly``: the footer offers only what works without changing a job."""

from __future__ import annotations

import pytest
from textual.widgets._footer import FooterKey

from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.screens.main import MainScreen

from .helpers import S, console, make, ready, until

#: what a read-only console refuses (marks only choose what requeue/kill/land act on)
REFUSED = {"requeue", "kill", "land", "follow_up", "mark", "pause"}


def offered(app: FarroApp) -> set[str]:
    """The actions of the keys the footer shows now."""
    return {
        k.action.split("(")[0].rsplit(".", 1)[-1]
        for k in app.screen.query(FooterKey)
        if not k.has_class("-command-palette")
    }


@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
async def test_readonly_footer_offers_only_what_works(root: Root, size: tuple[int, int]) -> None:
    jid = make(root, S.FAILED, "failed, looked at read-only")
    app = console(root, readonly=True)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        shown: dict[str, set[str]] = {}
        for key, screen in [("", "main"), ("enter", "job"), ("l", "log"), ("escape", "job")]:
            if key:
                await pilot.press(key)
            await until(pilot, lambda: app.screen.query(FooterKey), f"the {screen} footer")
            await pilot.pause()
            shown[f"{screen}:{key}"] = offered(app)
        for where, actions in shown.items():
            assert not actions & REFUSED, where
            assert {"help", "quit_farro"} <= actions, where
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "back on the queue")
        await pilot.press("space")  # inert: nothing is marked for actions that cannot run
        await pilot.pause()
        assert isinstance(app.screen, MainScreen) and not app.screen.queue.marks
        assert all(d != "Mark" for _, d, _ in app.help_rows())
    assert jid
