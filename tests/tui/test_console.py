"""Every other binding: tabs, filter, sort, marks, panes, help, palette, pause, quit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandList, CommandPalette
from textual.screen import Screen
from textual.widgets import Log, Static

from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.screens.dialogs import HelpScreen, QuitScreen, SortScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.main import MainScreen
from farro_tui.screens.workers import WorkersScreen

from .helpers import FakeSystem, S, console, make, ready, record_notes, until

SIZES = [(80, 24), (120, 40)]


def content_text(screen: Screen[Any]) -> str:
    """The job pane's text as a terminal would show it."""
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(screen.query_one("#job-content", Static).content)
    return console.export_text()


def shown(app: object) -> list[str]:
    return list(app.screen.queue.ids)  # type: ignore[attr-defined]


@pytest.fixture
def mixed(root: Root) -> dict[str, str]:
    return {
        "queued": make(root, S.QUEUED, "write the parser", labels={"team": "core"}),
        "running": make(root, S.IN_PROGRESS, "refactor storage"),
        "stale": make(root, S.STALE, "port the scheduler"),
        "failed": make(root, S.FAILED, "upgrade toolchain"),
        "succeeded": make(root, S.SUCCEEDED, "fix the parser typo"),
        "killed": make(root, S.KILLED, "migrate build"),
    }


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
async def test_status_tabs(root: Root, mixed: dict[str, str], size: tuple[int, int]) -> None:
    app = console(root)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        assert sorted(shown(app)) == sorted(mixed.values())
        expect = {
            "2": [mixed["queued"]],
            "3": sorted([mixed["running"], mixed["stale"]]),
            "4": [mixed["stale"]],
            "5": [mixed["failed"]],
            "6": [mixed["succeeded"]],
            "7": [mixed["killed"]],
        }
        for key, ids in expect.items():
            await pilot.press(key)
            await until(pilot, lambda ids=ids: sorted(shown(app)) == ids, f"tab {key}")  # type: ignore[misc]
        await pilot.press("1")
        await until(pilot, lambda: len(shown(app)) == 6, "tab 1 shows all")
        # the default order: what runs first, then stale, queued, then history newest first
        order = shown(app)
        assert order[:3] == [mixed["running"], mixed["stale"], mixed["queued"]]


async def test_filter_text_regex_labels_and_escape(root: Root, mixed: dict[str, str]) -> None:
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("slash", *"PARSER")
        await until(
            pilot,
            lambda: sorted(shown(app)) == sorted([mixed["queued"], mixed["succeeded"]]),
            "case-insensitive text filter",
        )
        await pilot.press("enter")  # keeps the filter, back to the list
        assert app.screen.focused is app.screen.queue
        await pilot.press("slash", *["backspace"] * 6, *"^(refactor|migrate)")
        await until(
            pilot,
            lambda: sorted(shown(app)) == sorted([mixed["running"], mixed["killed"]]),
            "regex filter",
        )
        await pilot.press(*["backspace"] * 19, *"team=core")
        await until(pilot, lambda: shown(app) == [mixed["queued"]], "label filter")
        await pilot.press(*["backspace"] * 9, *"[unclosed")
        await until(pilot, lambda: shown(app) == [], "bad regex matches literally")
        await pilot.press("escape")
        await until(pilot, lambda: len(shown(app)) == 6, "esc clears the filter")
        assert app.spec.filter == ""
        await pilot.press("j")  # a key typed now is no longer filter text
        assert app.spec.filter == ""


async def test_filter_by_id(root: Root, mixed: dict[str, str]) -> None:
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("slash", *mixed["stale"][-8:])
        await until(pilot, lambda: shown(app) == [mixed["stale"]], "id filter")


async def test_sort_by_column_and_repeat_reverses(root: Root, mixed: dict[str, str]) -> None:
    app = console(root)
    titles = {v: k for k, v in mixed.items()}
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")

        def by_title() -> list[str]:
            return [app.store.rows[i].title for i in shown(app)]

        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SortScreen), "the sort menu")
        await pilot.press("down", "down", "enter")  # status, id, title
        await until(pilot, lambda: app.spec.sort == "title", "sorted by title")
        assert by_title() == sorted(by_title())
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SortScreen), "the sort menu again")
        await pilot.press("enter")  # the current column again: reverse
        await until(pilot, lambda: app.spec.reverse, "reversed")
        assert by_title() == sorted(by_title(), reverse=True)
        assert titles  # (ids unused otherwise)


async def test_sort_by_age_uses_created_at_not_the_id(root: Root) -> None:
    first = make(root, S.QUEUED, "submitted first", id="zzzz-first")
    second = make(root, S.QUEUED, "submitted second", id="aaaa-second")
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.set_sort("age")
        await until(pilot, lambda: shown(app) == [second, first], "the youngest on top")
        app.set_sort("age")  # again: reversed, the oldest on top
        await until(pilot, lambda: shown(app) == [first, second], "the oldest on top")


async def test_a_sorted_view_follows_new_and_changed_jobs(
    root: Root, mixed: dict[str, str]
) -> None:
    """The order by a column is kept between changes, never past one."""
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: app.store.done_loaded, "done/ read")
        app.set_sort("title")
        await pilot.pause()
        first = make(root, "queued", title="0000 sorts first")
        await until(pilot, lambda: shown(app)[:1] == [first], "the new job on top")
        app.set_filter("sorts first")
        await until(pilot, lambda: shown(app) == [first], "filtered to the new job")
        app.set_filter("")
        app.set_sort("title")  # the same column again: reversed
        await until(pilot, lambda: shown(app)[-1:] == [first], "the new job at the bottom")
        titles = [app.store.rows[i].title.casefold() for i in shown(app)]
        assert titles == sorted(titles, reverse=True)


async def test_space_marks_and_moves_down_escape_clears(root: Root, mixed: dict[str, str]) -> None:
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        q = app.screen.queue
        first, second = shown(app)[:2]
        await pilot.press("g", "space", "space")
        assert q.marks == {first, second}
        await pilot.press("k", "space")
        assert q.marks == {first}
        await pilot.press("escape")
        assert q.marks == set()


async def test_cursor_keys(root: Root, mixed: dict[str, str]) -> None:
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        q = app.screen.queue
        await pilot.press("G")
        assert q.cursor == len(shown(app)) - 1
        await pilot.press("g")
        assert q.cursor == 0
        await pilot.press("j", "down")
        assert q.cursor == 2
        await pilot.press("up")
        assert q.cursor == 1


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "120x40"])
async def test_job_pane_and_raw_json(
    root: Root, mixed: dict[str, str], size: tuple[int, int]
) -> None:
    app = console(root)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        app.screen.queue.select(mixed["failed"])
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
        screen = app.screen
        await until(pilot, lambda: screen.env is not None, "the job loaded")
        text = content_text(screen)
        for part in ("upgrade toolchain", "Lifecycle", "Result", "Rubric", "History", "failed"):
            assert part in text, part
        await pilot.press("y")
        await until(
            pilot,
            lambda: '"schema_version"' in content_text(screen),
            "raw prompt.json/job.json",
        )
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "back to the queue")


async def test_log_pane_tails_live_and_follow_toggles(root: Root) -> None:
    jid = make(root, S.QUEUED, "talkative")
    from .helpers import claim

    c = claim(root, jid)
    logs = c.path / "logs"
    logs.mkdir(exist_ok=True)
    log_file = logs / "attempt-1.log"
    log_file.write_text("".join(f"line {n}\n" for n in range(100)))
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
        log = app.screen.query_one(Log)
        await until(pilot, lambda: log.line_count >= 100, "the existing log")
        with log_file.open("a") as fh:
            fh.write("".join(f"more {n}\n" for n in range(50)))
        await until(pilot, lambda: log.line_count >= 150, "appended lines, live")
        await until(pilot, lambda: log.is_vertical_scroll_end, "following: at the end")
        await pilot.press("f")
        assert app.screen.follow is False and log.auto_scroll is False
        await pilot.press("g")
        top = log.scroll_y
        with log_file.open("a") as fh:
            fh.write("".join(f"late {n}\n" for n in range(50)))
        await until(pilot, lambda: log.line_count >= 200, "lines while not following")
        assert log.scroll_y == top  # not following: the view stays where the operator put it
        await pilot.press("f")
        await until(pilot, lambda: log.is_vertical_scroll_end, "follow again: at the end")
        await pilot.press("escape")
    from farro_core import job

    job.release_claim(c)


async def test_log_pane_earlier_attempts(root: Root) -> None:
    from farro_core import job

    from .helpers import A, claim

    jid = make(root, S.QUEUED, "tried twice", max_attempts=2)
    for attempt, to in ((1, S.QUEUED), (2, S.FAILED)):
        c = claim(root, jid)
        (c.path / "logs").mkdir(exist_ok=True)
        (c.path / "logs" / f"attempt-{attempt}.log").write_text(f"text of attempt {attempt}\n")
        job.commit(c, to, A.AGENT, "exit 1")
        job.release_claim(c)
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
        screen = app.screen
        log = screen.query_one(Log)
        assert screen.attempt == 2
        await until(pilot, lambda: "text of attempt 2" in "".join(log.lines), "the latest")
        await pilot.press("left_square_bracket")
        await until(pilot, lambda: "text of attempt 1" in "".join(log.lines), "the earlier one")
        for _ in range(3):  # ticks (as its timer makes them): a chosen attempt stays chosen
            screen.tick()
        assert screen.attempt == 1
        await pilot.press("right_square_bracket")
        await until(pilot, lambda: "text of attempt 2" in "".join(log.lines), "back to the latest")


async def test_workers_pane_pause_and_resume(root: Root) -> None:
    system = FakeSystem(busy=1, idle=1)
    app = console(root, no_workers=False, system=system)
    notes = record_notes(app)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("p")
        assert system.paused
        assert "paused" in notes.text()
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers pane")
        from textual.widgets import DataTable

        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2, "one row per worker")
        assert "here" in str(app.screen.query_one("#manager", Static).content)
        await pilot.press("p")
        assert not system.paused
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "back")


async def test_pause_is_hidden_without_workers(root: Root) -> None:
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        assert app.check_action("pause", ()) is False
        await pilot.press("p")  # nothing to pause: nothing happens


async def test_help_lists_every_binding(root: Root, mixed: dict[str, str]) -> None:
    app = console(root, system=FakeSystem())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        rows = app.help_rows()
        described = {d for _, d, _ in rows}
        for what in (
            "Requeue",
            "Kill",
            "Filter",
            "Mark",
            "Open",
            "Log",
            "Workers",
            "Pause",
            "Follow",
            "Raw JSON",
            "Sort",
            "Quit",
            "command palette",
            "All",
            "Killed",
        ):
            assert what in described, what
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "help closed")


async def test_keys_are_remappable_from_farro_toml(root: Root) -> None:
    jid = make(root, S.STALE, "remapped")
    (root.path / "farro.toml").write_text('[keys]\nrequeue = "R"\n')
    reopened = Root.open(root.path)
    app = console(reopened)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        await pilot.press("r")
        await pilot.pause()  # every message handled: a dialog would be up by now
        assert isinstance(app.screen, MainScreen)
        await pilot.press("R")
        from farro_tui.screens.dialogs import ConfirmScreen

        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "R requeues")
        assert any(k == "R" and d == "Requeue" for k, d, _ in app.help_rows())


def _palette_offers(app: FarroApp, job_id: str) -> bool:
    """The command palette is up with "Go to job <job_id>" highlighted: enter takes it."""
    palette = app.screen
    if not isinstance(palette, CommandPalette):
        return False
    hits = palette.query_one(CommandList)
    i = hits.highlighted
    return i is not None and f"Go to job {job_id}" in str(hits.get_option_at_index(i).prompt)


async def test_command_palette_goes_to_a_job_by_id(root: Root, mixed: dict[str, str]) -> None:
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*mixed["killed"][-10:])
        await until(pilot, lambda: _palette_offers(app, mixed["killed"]), "the palette's hit")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
        assert app.screen.job_id == mixed["killed"]


async def test_external_changes_show_up_live(root: Root) -> None:
    """Live: by the watch's events, as no rescan comes within the test's failure bound (how
    fast: bench_console's "external change visible")."""
    (root.path / "farro.toml").write_text("rescan_s = 3600\n")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        jid = make(root, S.QUEUED, "arrives while watching")
        await until(pilot, lambda: shown(app) == [jid], "the new job on screen")
        make(root, S.QUEUED, "second")
        await until(pilot, lambda: len(shown(app)) == 2, "a second one")
        from farro_core import operations

        operations.kill(root, jid, by="cli")
        await until(
            pilot,
            lambda: app.store.status_of(jid) == "killed",
            "a change by the CLI",
            diagnose=lambda: (
                app.feeder.errors,
                app.store.queue_of.get(jid),
                app.store.rows.get(jid),
            ),
        )


# ------------------------------------------------------------ quitting


async def test_quit_without_workers_just_exits(root: Root) -> None:
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "exit")


@pytest.mark.parametrize(("key", "release"), [("f", False), ("r", True)])
async def test_quit_with_busy_workers_asks_finish_or_release(
    root: Root, key: str, release: bool
) -> None:
    system = FakeSystem(busy=2)
    app = console(root, no_workers=False, system=system)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question")
        assert app.screen.focused is not None and app.screen.focused.id == "cancel"
        await pilot.press(key)
        await until(pilot, lambda: not app.is_running, "exit")
    assert system.stops[0]["release"] is release
    assert len(system.stops) == 1


async def test_quit_question_can_be_cancelled(root: Root) -> None:
    system = FakeSystem(busy=1)
    app = console(root, no_workers=False, system=system)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, QuitScreen), "the quit question")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), "stayed")
        assert system.stops == [] and app.is_running


async def test_quit_with_idle_workers_releases_without_asking(root: Root) -> None:
    system = FakeSystem(busy=0, idle=2)
    app = console(root, no_workers=False, system=system)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "exit")
    assert system.stops == [{"release": True, "grace_s": None}]


async def test_a_lost_terminal_releases_the_jobs(root: Root) -> None:
    system = FakeSystem(busy=2)
    app = console(root, no_workers=False, system=system)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app._hangup()  # what SIGHUP (an SSH drop) runs
        await until(pilot, lambda: not app.is_running, "exit")
    assert system.stops[0]["release"] is True


async def test_timers_firing_while_the_app_tears_down_do_not_crash(root: Root) -> None:
    """The clock tick and view updates can fire after the queue widget is gone (on quit)."""
    make(root, S.QUEUED, "a job")
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        await main.query("*").remove()  # every widget, as the app's shutdown does
        app._feed_health()  # what the app's 1 s timer does (the widgets' own died with them)
        app.recompute_view()  # what a coalesced disk update does
        app.refresh_bindings()  # what the footer does
        app.targets()
        await pilot.pause()


@pytest.mark.parametrize(
    ("home", "path", "shown"),
    [
        ("/root", "/srv/q/root", "/srv/q/root"),
        ("/root", "/root/q", "~/q"),
        ("/root/", "/root", "~"),
        ("/ro", "/root/q", "/root/q"),
        ("/", "/srv/q", "/srv/q"),
    ],
)
def test_home_is_abbreviated_only_as_the_leading_directory(
    home: str, path: str, shown: str
) -> None:
    from farro_tui.view import tilde_path

    assert tilde_path(path, home) == shown


async def test_header_shows_a_root_outside_home_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Root.init(tmp_path / "root")
    monkeypatch.setenv("HOME", "/root")  # a substring of the root's path, not its prefix
    app = console(root)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        assert f" {root.path} " in app.stats_text(200).plain


def test_every_change_is_told_and_waiting_notices_coalesce(root: Root) -> None:
    """The feeder tells the app of each change, even one not taken yet; of the
    QueueChanged messages waiting in the app's queue, a later one replaces the rest
    (Message.can_replace), so a burst is still one update and none is lost."""
    from farro_tui.messages import ActionDone, QueueChanged
    from farro_tui.store import Delta, Feeder

    told: list[int] = []
    feeder = Feeder(root, lambda: told.append(1), watch=False)
    feeder._post(Delta(done_loaded=True))
    feeder._post(Delta(names={"incoming": {"a"}}))
    assert len(told) == 2
    delta = feeder.take()
    assert delta.done_loaded and delta.names == {"incoming": {"a"}}
    assert not feeder.take()
    assert QueueChanged().can_replace(QueueChanged())
    assert not QueueChanged().can_replace(ActionDone("kill", [], []))


def test_a_pane_reaches_only_a_farro_app() -> None:
    from textual.app import App

    from farro_tui.access import farro_app

    with pytest.raises(TypeError, match="FarroApp"):
        farro_app(App())
