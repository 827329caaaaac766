"""`b` in the console: the batch view of the current job's batch, updated as it runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console
from textual.widgets import DataTable, Static

from farro_core import api
from farro_core.root import Root
from farro_tui.screens.job import JobScreen
from farro_tui.screens.report import ReportScreen

from .helpers import console, make, ready, until


async def test_b_shows_the_batch_and_follows_it_live(root: Root, tmp_path: Path) -> None:
    from farro_core.worker import Worker

    report = json.dumps({"cost_usd": 0.25, "tokens_in": 100, "tokens_out": 50})
    agent = ["/bin/sh", "-c", f"echo '{report}' > \"$FARRO_RESULT_FILE\""]
    first = api.submit(root, "one", agent=agent, labels={"batch": "b1"}, max_attempts=1)
    second = api.submit(root, "two", agent=["/bin/sh", "-c", "exit 2"], labels={"batch": "b1"},
                        max_attempts=1)  # fmt: skip
    make(root, "queued", "another batch", labels={"batch": "b2"})
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(first.id)
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, ReportScreen), "the batch view")
        view = app.screen
        assert isinstance(view, ReportScreen)
        assert view.label == ("batch", "b1")
        await until(pilot, lambda: view.summary is not None, "the first load")
        assert view.summary is not None and view.summary.by_status == {"queued": 2}
        assert view.query_one(DataTable).row_count == 2

        # the batch runs while the view is open: it follows
        w = Worker(root, "w1")
        try:
            assert w.run_once() is not None and w.run_once() is not None
        finally:
            w.stop(release=True, grace_s=0)
        await until(
            pilot,
            lambda: view.summary is not None and view.summary.finished == 2,
            "the view to follow the batch",
            diagnose=lambda: view.summary,
        )
        s = view.summary
        assert s.by_status == {"succeeded": 1, "failed": 1} and s.pass_rate == 0.5
        assert s.cost_usd == 0.25 and s.tokens == 150
        assert s.failures == {"agent exited 2": [second.id]}
        console_out = Console(width=120, record=True, file=io.StringIO())
        console_out.print(view.query_one("#report-summary", Static).content)
        text = console_out.export_text()
        assert "50% (1 of 2 finished)" in text and "agent exited 2" in text

        table = view.query_one(DataTable)
        table.move_cursor(row=1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job from the batch")
