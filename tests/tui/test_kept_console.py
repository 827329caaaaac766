"""The job pane shows the kept mark (``farro keep``), and follows it being set and taken back."""

from __future__ import annotations

import os
import subprocess
import sys

from farro_core.identity import operator
from farro_core.job import load
from farro_core.root import Root
from farro_tui.screens.job import JobScreen

from .helpers import S, console, make, ready, until
from .test_console import content_text

SAID = "gc leaves its branch, refs and logs"


def keep(root: Root, *args: str) -> None:
    """The real CLI, in a process of its own, as an operator beside the console."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    subprocess.run(
        [sys.executable, "-m", "farro_core.cli", "keep", *args, "--root", str(root.path)],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )


async def test_the_job_pane_shows_the_mark_as_it_is_set_and_taken_back(root: Root) -> None:
    jid = make(root, S.SUCCEEDED, "fix the parser typo")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
        pane = app.screen
        assert isinstance(pane, JobScreen)
        await until(pilot, lambda: pane.env is not None, "the job loaded")
        text = content_text(pane)
        assert "SUCCEEDED · " in text and "· kept" not in text and SAID not in text

        keep(root, jid)
        await until(pilot, lambda: SAID in content_text(pane), "the mark shown")
        text = content_text(pane)
        assert f"SUCCEEDED · kept · {jid}" in text, text
        assert load(root, jid).lifecycle.kept is not None
        (row,) = [ln for ln in text.splitlines() if SAID in ln]
        assert row.split()[0] == "kept" and f"by {operator()}: {SAID}" in row, row
        assert f"operator: marked kept by {operator()}" in text  # the history's line

        keep(root, "--undo", jid)
        await until(pilot, lambda: SAID not in content_text(pane), "the mark gone")
        text = content_text(pane)
        assert "· kept" not in text and f"operator: kept mark removed by {operator()}" in text
