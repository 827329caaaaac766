"""The console survives what is on disk: a FIFO log, a wrongly typed job, a failing feed.

Before, a FIFO at the log path froze the console in ``open()`` on the UI thread
(only SIGKILL ended it), and a job.json of the wrong shape killed the feed thread
silently: no jobs, no message, and no recovery once the file was fixed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import Log

from farro_core.root import Root
from farro_tui.screens.log import LogScreen
from farro_tui.screens.main import MainScreen

from .helpers import S, console, make, ready, record_notes, until

pytestmark = pytest.mark.timeout(90)  # a frozen console fails the test, never the suite


def _replace(path: Path, data: bytes) -> None:
    """Write-then-rename, as every FARRO writer does (the directory's mtime moves)."""
    tmp = path.with_name(path.name + ".fix")
    tmp.write_bytes(data)
    os.rename(tmp, path)


async def test_a_fifo_at_the_log_path_never_freezes_the_console(root: Root) -> None:
    jid = make(root, S.FAILED, "has a fifo for a log")
    d = root.locate(jid)
    (d / "logs").mkdir(mode=0o700, exist_ok=True)
    os.mkfifo(d / "logs" / "attempt-1.log")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
        log = app.screen.query_one(Log)
        await until(
            pilot, lambda: "not a regular file" in "".join(log.lines), "the refusal, in the pane"
        )
        assert sum("cannot show this log" in line for line in log.lines) == 1  # said once
        await pilot.press("escape")  # the UI still answers
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "back to the queue")


@pytest.mark.parametrize("content", [b"[]", b'{"claim": "x"}', b"{"], ids=["list", "claim", "torn"])
async def test_a_corrupt_job_is_a_row_and_shows_again_once_fixed(
    root: Root, content: bytes
) -> None:
    good = make(root, S.QUEUED, "a good job")
    bad = make(root, S.QUEUED, "a job to break")
    done = make(root, S.SUCCEEDED, "a finished job to break")
    originals = {}
    for jid in (bad, done):
        path = root.locate(jid) / "job.json"
        originals[jid] = path.read_bytes()
        _replace(path, content)
    app = console(root)
    async with app.run_test(size=(100, 24)) as pilot:
        await ready(pilot)
        store = app.store
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        assert store.status_of(good) == "queued"
        assert store.status_of(bad) == "corrupt" and store.status_of(done) == "corrupt"
        assert app.feeder.failure is None
        for jid, data in originals.items():
            _replace(root.locate(jid) / "job.json", data)
        await until(pilot, lambda: store.status_of(bad) == "queued", "the fixed queued job")
        await until(pilot, lambda: store.status_of(done) == "succeeded", "the fixed done job")


async def test_the_console_says_when_its_feed_fails_and_recovers_on_its_own(root: Root) -> None:
    first = make(root, S.QUEUED, "before the failure")
    app = console(root)
    notes = record_notes(app)
    async with app.run_test(size=(100, 24)) as pilot:
        await ready(pilot)
        assert app.store.status_of(first) == "queued"
        # a real fault: incoming/ is briefly not a directory (listing it fails with ENOTDIR)
        os.rename(root.incoming, root.path / "incoming.away")
        (root.path / "incoming").write_text("not a directory")
        app.feeder.poke()
        await until(pilot, lambda: "not updating" in notes.text(), "the failure, said", 20)
        assert app.feeder.failure is not None
        os.unlink(root.path / "incoming")
        os.rename(root.path / "incoming.away", root.incoming)
        later = make(root, S.QUEUED, "after the failure")
        await until(pilot, lambda: "updating again" in notes.text(), "the recovery, said", 20)
        await until(pilot, lambda: app.store.status_of(later) == "queued", "a job made after", 20)
        assert app.feeder.failure is None
        severities = [sev for msg, sev in notes.seen if "not updating" in msg]
        assert severities == ["error"]  # said once, however many rounds failed
