"""``farro-tui --readonly``: the footer offers only what works without changing a job."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import wait_until
from textual.widgets._footer import FooterKey

from farro_core import demo
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


def _screen(session: str) -> str:
    out = subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    )
    return out.stdout


def _gone(session: str) -> bool:
    return (
        subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode != 0
    )


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_demo_readonly_watches_an_earlier_demo_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "demo"
    demo.seed(Root.init(path))
    before = sorted((str(p), p.lstat().st_size, p.lstat().st_mtime_ns) for p in path.rglob("*"))
    session = f"farro-demo-ro-{os.getpid()}-{time.monotonic_ns()}"
    tui = Path(sys.executable).parent / "farro-tui"
    cmd = f"{tui} --demo --readonly --root {path}"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd])
    try:
        diagnose = lambda: _screen(session)  # noqa: E731
        wait_until(lambda: "READ-ONLY" in _screen(session), "the console", 20, diagnose=diagnose)
        wait_until(lambda: "1 all 13" in _screen(session), "the demo's jobs", 20, diagnose=diagnose)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_until(lambda: _gone(session), "the console to exit", 20, diagnose=diagnose)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    after = sorted((str(p), p.lstat().st_size, p.lstat().st_mtime_ns) for p in path.rglob("*"))
    assert after == before  # no job seeded, nothing else written
