"""The header and the workers pane count every worker of the root, not only this console's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from textual.widgets import DataTable, Static

from farro_core.identity import host
from farro_core.root import Root
from farro_tui.screens.job import JobScreen
from farro_tui.screens.workers import WorkersScreen

from .helpers import FakeSystem, S, console, make, ready, until


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


async def test_workers_pane_lists_the_root_s_workers_with_their_hosts(root: Root) -> None:
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
        assert where == {"far-w0": "far.example", "near-w0": host(), "dead-w0": host(),
                         "old-w0": host()}  # fmt: skip
        assert rows["far-w0"][1].style == "cyan" and rows["near-w0"][1].style == ""  # remote
        assert state == {"far-w0": "busy", "near-w0": "idle", "dead-w0": "gone",
                         "old-w0": "stopped"}  # fmt: skip
        assert [str(table.get_row_at(i)[0]) for i in range(2)] == ["far-w0", "near-w0"]
        manager = str(app.screen.query_one("#manager", Static).content)
        assert "manager: none" in manager and "runs no workers" in manager


LONG_HOST = "build-server-07.example.internal"


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40)], ids=str)
async def test_workers_pane_keeps_its_important_columns_in_view(
    root: Root, size: tuple[int, int]
) -> None:
    """A long host name and worker name never push state, job or age out of the pane."""
    jid = make(root, S.QUEUED, "claimed far away")
    name = f"{LONG_HOST}-1234567-w12"
    _status_file(root, name, host=LONG_HOST, pid=4242, state="busy", job=jid, attempt=2,
                 jobs_done=17)  # fmt: skip
    app = console(root, readonly=True)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers pane")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1, "the far worker")
        await pilot.pause()
        labels = [str(c.label) for c in table.columns.values()]
        assert labels[:6] == ["worker", "host", "state", "job", "try", "for"]
        assert table.virtual_size.width <= table.scrollable_content_region.width  # all in view
        row = [str(c) for c in table.get_row_at(0)]
        assert row[0].endswith("-1234567-w12") and row[2] == "busy" and row[5]  # pid, state, age
        assert row[1].startswith("build-serve") and row[3].endswith(jid[-8:])
        await pilot.press("enter")  # the whole id, though the cell shows its tail
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the worker's job")
        assert app.screen.job_id == jid


HOSTILE = "no key\x1b]0;pwned\x07 (ANTHROPIC_API_KEY unset)\x1b[2J"


async def test_workers_pane_and_header_say_which_presets_workers_pass_by(root: Root) -> None:
    """Queued jobs of a preset its workers lack the config of wait: the pane says which,
    by whom and why (escaped: a status file is anyone's to write), like `farro stats`."""
    why = {"claude\x1b[31m": f"agent preset claude: {HOSTILE}"}
    _status_file(root, "far-w0", host="far.example", pid=4242, state="idle", passing=why)
    _status_file(root, "near-w0", host=host(), pid=os.getpid(), state="idle",
                 passing={**why, "codex": "agent preset codex: no model provider"})  # fmt: skip
    _status_file(root, "old-w0", host=host(), pid=_dead_pid(), state="stopped",
                 passing={"gemini": "no key"})  # fmt: skip
    app = console(root, no_workers=False, system=FakeSystem(idle=1))
    app.system.workers[0].passing = (("aider", "agent preset aider: no key"),)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(
            pilot,
            lambda: " passed aider,claude\\x1b[31m,codex" in app.stats_text(200).plain,
            "the passed presets in the header",
            diagnose=lambda: app.stats_text(200).plain,
        )
        header = app.stats_text(200)
        assert "\x1b" not in header.plain
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers pane")
        manager = app.screen.query_one("#manager", Static)
        await until(pilot, lambda: "passed:" in str(manager.content), "the passed presets")
        text = str(manager.content)
        assert "\x1b" not in text and "\x07" not in text  # nothing reaches the terminal raw
        lines = text.split("\n  ")
        assert "aider by w0: agent preset aider: no key" in lines
        assert (
            "claude\\x1b[31m by far-w0, near-w0: agent preset claude: no key\\x1b]0;pwned\\x07 "
            "(ANTHROPIC_API_KEY unset)\\x1b[2J" in lines
        )
        assert "codex by near-w0: agent preset codex: no model provider" in lines
        assert "gemini" not in text  # a stopped worker runs nothing: it leaves nothing
        assert "every running worker" not in text  # w0 runs claude's and codex's


async def test_a_preset_every_running_worker_lacks_is_shown_as_left_to_none(root: Root) -> None:
    _status_file(root, "far-w0", host="far.example", pid=4242, state="busy", job="J1",
                 passing={"codex": "agent preset codex: no model provider"})  # fmt: skip
    app = console(root, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(
            pilot,
            lambda: " passed codex" in app.stats_text(200).plain,
            "the passed preset in the header",
            diagnose=lambda: app.stats_text(200).plain,
        )
        (span,) = [s for s in app.stats_text(200).spans if s.style == "bold red"]
        assert app.stats_text(200).plain[span.start : span.end] == "codex"  # none runs it
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers pane")
        manager = app.screen.query_one("#manager", Static)
        await until(pilot, lambda: "passed:" in str(manager.content), "the passed preset")
        assert "\n  codex by far-w0 (every running worker: none will run them): agent preset " in (
            str(manager.content)
        )


async def test_what_workers_pass_keeps_the_table_in_view_at_80x24(root: Root) -> None:
    """Many presets with long reasons (real codex reasons run to 300 characters): one line
    each, cut with …, at most PASSING_LINES of them; the workers stay on screen."""
    from farro_tui.screens.workers import PASSING_LINES

    long = {f"preset{i}": "agent preset: " + "x" * 300 for i in range(PASSING_LINES + 3)}
    _status_file(root, "far-w0", host="far.example", pid=4242, state="idle", passing=long)
    app = console(root, readonly=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers pane")
        manager = app.screen.query_one("#manager", Static)
        await until(pilot, lambda: "passed:" in str(manager.content), "the passed presets")
        await pilot.pause()
        lines = str(manager.content).split("\n")
        shown = [line for line in lines if line.startswith("  preset")]
        assert len(shown) == PASSING_LINES
        assert all(len(line) <= 78 and line.endswith("…") for line in shown)
        assert lines[-1] == "  … 3 more: farro stats lists them all"
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1 and table.region.height >= 3  # header and the row in view
