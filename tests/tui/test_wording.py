"""What the console says: words that match the job's state, and none run together."""

from __future__ import annotations

import html
import re

from textual.widgets import Static

from farro_core import job, operations
from farro_core.root import Root
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.widgets.queue_view import QueueHeader, row_cells

from .helpers import A, S, claim, console, make, ready, until
from .test_console import content_text


async def open_job(pilot: object, app: object, job_id: str) -> JobScreen:
    app.screen.queue.select(job_id)  # type: ignore[attr-defined]
    await pilot.press("enter")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")  # type: ignore[arg-type, attr-defined]
    screen = app.screen  # type: ignore[attr-defined]
    await until(pilot, lambda: screen.env is not None, "the job loaded")  # type: ignore[arg-type]
    return screen  # type: ignore[no-any-return]


def svg_lines(svg: str) -> list[str]:
    """Each screen line of an SVG export as a reader that trims every text run sees it."""
    lines: dict[str, list[str]] = {}
    for line, body in re.findall(r'clip-path="url\(#[\w-]+-line-(\d+)\)">([^<]*)</text>', svg):
        lines.setdefault(line, []).append(html.unescape(body).replace("\xa0", " ").strip())
    return ["".join(parts) for parts in lines.values()]


async def test_a_job_that_failed_for_good_promises_no_automatic_retry(root: Root) -> None:
    jid = make(root, S.FAILED, "upgrade toolchain", max_attempts=3)
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        text = content_text(await open_job(pilot, app, jid))
    assert "automatic left" not in text
    assert "1 of 3 used; failed for good: no automatic retry" in text


async def test_a_finished_job_shows_its_last_claim_as_ended(root: Root) -> None:
    done = make(root, S.FAILED, "ran once")
    running = make(root, S.IN_PROGRESS, "runs now")
    assert job.load(root, done).lifecycle.claim is not None  # kept on disk after the attempt
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        finished = content_text(await open_job(pilot, app, done))
        await pilot.press("escape")
        live = content_text(await open_job(pilot, app, running))
    assert re.search(r"last claim +w1 on .* pid \d+ from .* \(ended\)", finished)
    assert not re.search(r"^ *claim ", finished, re.MULTILINE)
    assert re.search(r"^ *claim +w1 on .* pid \d+ since ", live, re.MULTILINE)


async def test_try_agrees_with_the_reason_after_a_requeue(root: Root) -> None:
    jid = make(root, S.FAILED, "failed once", max_attempts=1)
    operations.requeue(root, jid, by="op")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.status_of(jid) == "queued", "the requeued job")
        row = app.store.rows[jid]
        cells = dict(
            zip(
                ("mark", "id", "title", "status", "attempt", "run"),
                row_cells(jid, row, 80, app.clock(), False, False),
                strict=True,
            )
        )
    assert row.reason == "requeued by op"  # a fresh budget: none of it used yet
    assert cells["attempt"][0].strip() == "0/1"


async def test_the_log_of_an_ended_attempt_is_not_following(root: Root) -> None:
    jid = make(root, S.QUEUED, "said something, then failed", max_attempts=1)
    c = claim(root, jid)
    (c.path / "logs").mkdir(exist_ok=True)
    (c.path / "logs" / "attempt-1.log").write_text("hello\n")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
        title = app.screen.query_one("#pane-title", Static)
        await until(pilot, lambda: "following" in str(title.content), "following, while it runs")
        job.commit(c, S.FAILED, A.AGENT, "exit 1")
        job.release_claim(c)
        await until(pilot, lambda: "ended" in str(title.content), "the attempt ended")
        assert "following" not in str(title.content)


async def test_one_hidden_mark_is_said_in_the_singular(root: Root) -> None:
    hidden = make(root, S.FAILED, "hidden by the filter")
    make(root, S.FAILED, "shown")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        app.screen.queue.select(hidden)
        await pilot.press("space")
        app.set_filter("shown")
        await until(pilot, lambda: hidden not in app.screen.queue.ids, "filtered away")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = str(app.screen.query_one("#dialog-body", Static).content)
    assert "1 marked job is hidden by the filter or tab." in body


async def test_the_sorted_column_shows_its_arrow_at_80_columns(root: Root) -> None:
    make(root, S.QUEUED, "a job")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        header = app.screen.query_one(QueueHeader)

        def heading() -> str:
            return "".join(seg.text for seg in header.render_line(0))

        for col, label in (("attempt", "TRY▲"), ("status", "STATUS ▲"), ("worker", "by WORKER")):
            app.set_sort(col)
            await until(pilot, lambda label=label: label in heading(), f"{col} sorted: {label}")  # type: ignore[misc]
            assert heading().count("▲") == 1


async def test_the_job_pane_never_runs_words_together(root: Root) -> None:
    jid = make(
        root,
        S.FAILED,
        "Refactor config loader",
        rubric=[{"id": "tests-pass", "check": "true", "description": "the test suite passes"}],
    )
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        await open_job(pilot, app, jid)
        await pilot.pause()
        lines = svg_lines(app.export_screenshot())
    text = "\n".join(lines)
    assert "Refactor config loader" in text and "the test suite passes" in text
    assert "FAILEDRefactor" not in text
    assert "tests-passthe" not in text
