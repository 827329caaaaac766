"""The diff pane from a real git repository: files, counts, n/p, attempts, escaping."""

from __future__ import annotations

from pathlib import Path

from farro_core.job import load
from farro_core.root import Root
from farro_tui.screens.diff import DiffScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.main import MainScreen
from farro_tui.seed_work import seed_work
from farro_tui.widgets.diff_view import DiffView, FileList

from .helpers import console, make, ready, until


def strip_text(view: DiffView | FileList, y: int) -> str:
    return "".join(seg.text for seg in view.render_line(y))


async def test_d_opens_the_diff_and_n_p_brackets_move(root: Root, tmp_path: Path) -> None:
    jid = seed_work(root, tmp_path / "repo")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff pane")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await until(pilot, lambda: screen.loaded, "the diff loaded")
        view, files = screen.query_one(DiffView), screen.query_one(FileList)
        title = str(screen.query_one("#pane-title").render())
        work = load(root, jid).lifecycle.result.work  # type: ignore[union-attr]
        assert work is not None and (work.insertions, work.deletions) == (23, 9)  # git's numstat
        assert " · attempt 2 of 2 · 4 files +23 -9 · " in title, title
        paths = [f.path for f in view.diff.files]
        assert paths == [
            "README.md",
            "csvparse/legacy.py",
            "csvparse/parser.py",
            "tests/test_parser.py",
        ]
        assert strip_text(files, 0).split() == ["+1", "-1", "README.md"]
        assert strip_text(view, 0).startswith("diff --git a/README.md b/README.md")

        await pilot.press("n", "n")
        await until(pilot, lambda: view.top == view.diff.files[2].start, "the third file")
        assert files.current == 2
        assert strip_text(view, 0).startswith("diff --git a/csvparse/parser.py")
        await pilot.press("j", "j", "p")  # p inside a file: back to its top
        await until(pilot, lambda: view.top == view.diff.files[2].start, "the file's top")
        await pilot.press("p")
        await until(pilot, lambda: files.current == 1, "the previous file")

        await pilot.press("left_square_bracket")
        await until(pilot, lambda: screen.loaded and screen.attempt == 1, "attempt 1")
        assert [f.path for f in view.diff.files] == ["csvparse/parser.py"]
        assert " · attempt 1 of 2 · 1 file " in str(screen.query_one("#pane-title").render())
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: screen.loaded and screen.attempt == 2, "attempt 2 again")

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "back to the queue")
        # from the job pane too
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff from the job")


async def test_hostile_bytes_are_shown_never_obeyed(root: Root, tmp_path: Path) -> None:
    from farro_tui import seed_work as sw

    evil = 'print("\x1b]0;owned\x07\x1b[2J")\tx = 1\n'
    original = sw.TESTS
    sw.TESTS = evil  # type: ignore[misc]
    try:
        jid = seed_work(root, tmp_path / "repo")
    finally:
        sw.TESTS = original  # type: ignore[misc]
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.push_screen(DiffScreen(jid))
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff pane")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await until(pilot, lambda: screen.loaded, "the diff loaded")
        view = screen.query_one(DiffView)
        view.goto_line(view.diff.files[-1].start)

        def shown() -> str:
            return "\n".join(strip_text(view, y) for y in range(view.size.height))

        await until(pilot, lambda: "owned" in shown(), "the hostile line on screen")
        assert "\\x1b]0;owned\\x07\\x1b[2J" in shown()
        assert "\x1b" not in shown() and "\x07" not in shown() and "\t" not in shown()


async def test_a_job_without_work_says_so(root: Root) -> None:
    jid = make(root, "queued", "not run")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.screen.queue.select(jid)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff pane")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await until(pilot, lambda: screen.loaded, "the refusal")
        assert "has not finished an attempt yet" in strip_text(screen.query_one(DiffView), 0)


async def test_a_plain_directory_job_shows_its_changed_paths(root: Root, tmp_path: Path) -> None:
    from farro_core import api
    from farro_core.worker import Worker

    plain = tmp_path / "plain"
    (plain / "src").mkdir(parents=True)
    (plain / "src" / "a.py").write_text("A = 1\n")
    env = api.submit(
        root,
        "edit",
        workspace=str(plain),
        agent=["/bin/sh", "-c", "echo 'A = 2' > src/a.py; echo n > new.txt"],
        max_attempts=1,
    )
    w = Worker(root, "w1")
    try:
        done = w.run_once()
    finally:
        w.stop(release=True, grace_s=0)
    assert done is not None and done.status == "succeeded", done and done.lifecycle.reason
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.push_screen(DiffScreen(env.id))
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff pane")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await until(pilot, lambda: screen.loaded, "the paths loaded")
        view = screen.query_one(DiffView)
        assert [strip_text(view, y).rstrip() for y in range(2)] == ["A  new.txt", "M  src/a.py"]
        assert not screen.query_one(FileList).display
        assert "plain directory" in str(screen.query_one("#pane-title").render())


async def test_long_lines_scroll_sideways(root: Root, tmp_path: Path) -> None:
    jid = seed_work(root, tmp_path / "repo")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.push_screen(DiffScreen(jid))
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff pane")
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        await until(pilot, lambda: screen.loaded, "the diff loaded")
        view = screen.query_one(DiffView)
        assert view.diff.width > view.size.width  # the parser's new signature is wider
        await until(pilot, lambda: view.max_scroll_x > 8, "the diff's width laid out")
        first = strip_text(view, 0)
        await pilot.press("l")
        await until(pilot, lambda: view.scroll_offset.x == 8, "a sideways scroll")
        assert strip_text(view, 0).rstrip() == first[8:].rstrip()
        await pilot.press("h")
        await until(pilot, lambda: view.scroll_offset.x == 0, "back to the left edge")
