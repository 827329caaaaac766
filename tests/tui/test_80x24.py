"""The console at 80x24: the footer keeps Help and Quit, help starts with the actions,
and ids cut to the narrow column stay tell-apart."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from farro_core.root import Root
from farro_tui.screens.dialogs import HelpScreen
from farro_tui.screens.diff import DiffScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.report import ReportScreen

from .helpers import FakeSystem, S, console, make, ready, until


def footer_keys(app: Any) -> dict[str, FooterKey]:
    return {k.action.rsplit(".", 1)[-1]: k for k in app.screen.query(FooterKey)}


def shown_keys(screen: Any) -> dict[str, str]:
    """What the footer of ``screen`` lists: key as shown -> its description."""
    return {k.key_display: k.description for k in screen.query(FooterKey)}


def whole(key: FooterKey, width: int = 80) -> bool:
    region = key.region
    return region.width > 0 and region.x >= 0 and region.right <= width


async def footer_settled(pilot: Any, app: Any, *needed: str) -> dict[str, FooterKey]:
    await until(
        pilot,
        lambda: all(n in footer_keys(app) and whole(footer_keys(app)[n]) for n in needed),
        f"{needed} whole in the footer",
        diagnose=lambda: {a: k.region for a, k in footer_keys(app).items()},
    )
    return footer_keys(app)


@pytest.mark.parametrize("screen", ["main", "job", "log"])
async def test_footer_always_shows_help_and_quit_and_no_key_is_cut(root: Root, screen: str) -> None:
    jid = make(root, S.STALE, "a stale job")
    app = console(root, no_workers=False, system=FakeSystem(busy=1))
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        if screen == "job":
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
        elif screen == "log":
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
        keys = await footer_settled(pilot, app, "help", "quit_farro", "requeue", "kill")
        assert all(whole(k) for k in keys.values()), {a: k.region for a, k in keys.items()}
        assert keys["help"].key_display == "?" and keys["quit_farro"].key_display == "q"


YES_NO = {"y": "Yes", "n": "No"}  # esc too answers no: one key per action


@pytest.mark.parametrize(
    ("under", "key", "dialog"),
    [
        ("main", "r", YES_NO),
        ("job", "r", YES_NO),
        ("diff", "r", YES_NO),
        ("batch", "question_mark", {"esc": "Close"}),
    ],
)
async def test_under_a_dialog_the_footer_lists_the_dialogs_keys(
    root: Root, under: str, key: str, dialog: dict[str, str]
) -> None:
    """Not the keys of the screen below, which the dialog does not pass on: in the job pane
    ``y`` is "Raw JSON", in the dialog it answers yes."""
    jid = make(root, S.FAILED, "failed once", labels={"batch": "b1"})
    app = console(root, system=FakeSystem())
    opens = {"job": ("enter", JobScreen), "diff": ("d", DiffScreen), "batch": ("b", ReportScreen)}
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        if under in opens:
            press, pane = opens[under]
            await pilot.press(press)
            await until(pilot, lambda: isinstance(app.screen, pane), f"the {under} pane")
        below = app.screen
        await until(pilot, lambda: "Quit" in shown_keys(below).values(), "the footer")
        before = shown_keys(below)
        await pilot.press(key)
        await until(pilot, lambda: app.screen.is_modal, "the dialog")
        await until(
            pilot,
            lambda: shown_keys(below) == dialog,
            "the dialog's keys in the footer",
            diagnose=lambda: shown_keys(below),
        )
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is below, "the dialog closed")
        await until(
            pilot,
            lambda: shown_keys(below) == before,
            "the screen's own keys back",
            diagnose=lambda: shown_keys(below),
        )
    assert before["?"] == "Help" and before["q"] == "Quit"
    if under == "job":
        assert before["y"] == "Raw JSON"


async def test_remapped_keys_are_shown_whole(root: Root) -> None:
    jid = make(root, S.STALE, "remapped")
    (root.path / "farro.toml").write_text(
        '[keys]\nrequeue = "ctrl+shift+r"\nkill = "ctrl+shift+x"\nquit = "ctrl+shift+q"\n'
    )
    app = console(Root.open(root.path), no_workers=False, system=FakeSystem())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        app.screen.queue.select(jid)
        keys = await footer_settled(pilot, app, "requeue", "kill", "help", "quit_farro")
        assert all(whole(k) for k in keys.values())
        assert "r" in keys["requeue"].key_display.lower()


async def test_help_lists_the_actions_before_the_navigation_keys(root: Root) -> None:
    app = console(root, system=FakeSystem())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        rows = [what for _, what, _ in app.help_rows()]
        first = rows[: rows.index("Follow") + 1]
        assert set(first) == {"Requeue", "Kill", "Land", "Follow up", "Diff", "Log", "Follow"}
        assert rows.index("Follow") < rows.index("Up")
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")


async def test_help_lists_each_binding_once(root: Root) -> None:
    """The job pane's ``l`` is the app-wide Log: one row, not two ``l Log``."""
    app = console(root, system=FakeSystem())
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        table = app.screen.query_one("#help-scroll").query_one(Static).content
        out = Console(width=120, record=True, file=io.StringIO())
        out.print(table)
        lines = [ln.split() for ln in out.export_text().splitlines()]
        rows = app.help_rows()
    assert [ln for ln in lines if ln[:2] == ["l", "Log"]] == [["l", "Log", "everywhere"]]
    assert ["l", "Right", "diff"] in lines  # the same key doing something else is listed
    assert len(rows) == len(set(rows))
    everywhere = {(key, what) for key, what, where in rows if where == "everywhere"}
    again = [r for r in rows if r[2] != "everywhere" and r[:2] in everywhere]
    assert not again, again


async def test_custom_ids_that_share_a_suffix_stay_distinguishable(root: Root) -> None:
    ids = ["alpha-fix-the-parser-tests", "beta-fix-the-parser-tests", "01-gamma-one-more-x"]
    for job_id in ids:
        make(root, S.QUEUED, job_id, id=job_id)
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: len(app.screen.queue.ids) == 3, "three jobs")
        q = app.screen.queue
        shown = {}
        for y, job_id in enumerate(q.ids):
            line = "".join(seg.text for seg in q.render_line(y))
            shown[job_id] = line[2:14]  # after the mark column: the 12-cell id column
    assert len(set(shown.values())) == 3, shown
    assert shown["alpha-fix-the-parser-tests"].startswith("a…")
    assert shown["beta-fix-the-parser-tests"].startswith("b…")
    assert shown["01-gamma-one-more-x"] == "…" + "01-gamma-one-more-x"[-11:]  # as ever


async def shown_ids(root: Root, ids: list[str]) -> dict[str, str]:
    """Each job's 12-cell id column in an 80x24 queue, after the mark column."""
    for job_id in ids:
        make(root, S.QUEUED, job_id, id=job_id)
    app = console(root)
    async with app.run_test(size=(80, 24)) as pilot:
        await ready(pilot)
        await until(pilot, lambda: len(app.screen.queue.ids) == len(ids), "the jobs")
        q = app.screen.queue
        return {
            job_id: "".join(seg.text for seg in q.render_line(y))[2:14]
            for y, job_id in enumerate(q.ids)
        }


async def test_custom_ids_that_share_a_prefix_and_a_suffix_stay_distinguishable(
    root: Root,
) -> None:
    # alike in the 11 leading and the 10 trailing characters: no lead-and-tail form of
    # 12 cells tells them apart, only where they part does
    ids = [f"batch-2026-{name}-task-0001" for name in ("alpha", "bravo", "delta")]
    shown = await shown_ids(root, ids)
    assert len(set(shown.values())) == 3, shown
    assert shown[ids[0]] == "…alpha…-0001" and shown[ids[2]] == "…delta…-0001"
    assert shown[ids[1]] == "…" + ids[1][-11:]  # alone in its tail: shown as ever


async def test_ids_that_part_in_the_middle_and_at_the_end_show_both(root: Root) -> None:
    # "alpha" and "beta" both end in "a", so each pair shares its last 11 characters;
    # a window of the middle alone would show "-task-0002" for either name
    ids = [f"batch-2026-{n}-task-000{k}" for n in ("alpha", "beta") for k in (1, 2)]
    shown = await shown_ids(root, ids)
    assert shown == {
        "batch-2026-alpha-task-0001": "…alpha…-0001",
        "batch-2026-alpha-task-0002": "…alpha…-0002",
        "batch-2026-beta-task-0001": "…beta-…-0001",
        "batch-2026-beta-task-0002": "…beta-…-0002",
    }
