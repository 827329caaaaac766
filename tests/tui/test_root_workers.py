"""The header and the workers pane count every worker of the root, not only this console's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from textual.widgets import DataTable, Static

from farro_core.identity import host
from farro_core.root import Root
from farro_tui.screens.workers import WorkersScreen

from .helpers import FakeSystem, console, ready, until


def _status_file(root: Root, name: str, **body: object) -> None:
    body.setdefault("since", "2026-01-01T00:00:00+00:00")
    (root.workers_dir / f"{name}.json").write_text(json.dumps({"name": name, **body}))


def _dead_pid() -> int:
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def _others(root: Root) -> None:
    """Workers of other processes: one remote busy, one local idle, one gone, one stopped."""
    _status_file(root, "far-w0", host="far.example", pid=4242, state="busy", job="JOBREMOTE01")
    _status_file(root, "near-w0", host=host(), pid=os.getpid(), state="idle", jobs_done=7)
    _status_file(root, "dead-w0", host=host(), pid=_dead_pid(), state="busy", job="JOBDEAD0001")
    _status_file(root, "old-w0", host=host(), pid=_dead_pid(), state="stopped")


async def test_header_counts_every_live_worker_of_the_root(root: Root) -> None:
    _others(root)
    app = console(root)  # --no-workers: none of its own
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(
            pilot,
            lambda: "workers 1 busy 1 idle (1 remote)" in app.stats_text(200).plain,
            "the root's workers in the header",
            diagnose=lambda: app.stats_text(200).plain,
        )


async def test_header_adds_this_consoles_workers_to_the_others(root: Root) -> None:
    _others(root)
    app = console(root, no_workers=False, system=FakeSystem(busy=1, idle=1))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(
            pilot,
            lambda: "workers 2 busy 2 idle (1 remote)" in app.stats_text(200).plain,
            "own and other workers",
            diagnose=lambda: app.stats_text(200).plain,
        )


async def test_workers_pane_lists_the_root_s_workers_marked_local_or_remote(root: Root) -> None:
    _others(root)
    app = console(root, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers pane")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 4, "every worker that wrote a file")
        rows = {str(table.get_row_at(i)[0]): table.get_row_at(i) for i in range(4)}
        where = {name: str(row[1]) for name, row in rows.items()}
        state = {name: str(row[2]) for name, row in rows.items()}
        assert where == {"far-w0": "remote", "near-w0": "local", "dead-w0": "local",
                         "old-w0": "local"}  # fmt: skip
        assert state == {"far-w0": "busy", "near-w0": "idle", "dead-w0": "gone",
                         "old-w0": "stopped"}  # fmt: skip
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["far-w0", "near-w0"]
        manager = str(app.screen.query_one("#manager", Static).content)
        assert "manager: none" in manager and "runs no workers" in manager
