"""The console's lowest layer: every line any widget draws is free of control characters.

The lines are taken where Textual hands them to the terminal driver (a widget's
``render_lines``, after the app's line filters), on every screen a hostile job and a
hostile inbox file name reach, with the real embedded System running them. A view
that forgets to escape (here: a bare Static) is still caught by the filter.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

from rich.text import Text
from support import wait_until_async
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.safety import VISIBLE_FILTER
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.workers import WorkersScreen

from .hostile import escaped, first_dangerous, hostile_job, payload


async def until(pilot: Pilot[Any], cond: Callable[[], Any], what: str, timeout: float = 30) -> None:
    await wait_until_async(cond, what, timeout, pause=pilot.pause)


def drawn(app: FarroApp) -> str:
    """What every widget of the screen sends to the terminal, line by line."""
    out = []
    for widget in app.screen.walk_children(Widget, with_self=True):
        width, height = widget.size
        if not widget.display or width == 0 or height == 0:
            continue
        for strip in widget.render_lines(Region(0, 0, width, height)):
            assert strip.cell_length == width, (widget, strip.text)
            out.append(strip.text)
    return "\n".join(out)


def clean(app: FarroApp, where: str) -> str:
    text = drawn(app)
    bad = first_dangerous(text)
    assert bad is None, f"{where}: {bad}"
    return text


def test_every_widget_draws_escaped_text(root: Root) -> None:
    env = hostile_job(root)
    # a request file whose very name is hostile: the manager's last ingestion quotes it
    name = payload("INBOX").replace("/", "-") + ".json"
    request = {"prompt": "from the inbox", "title": payload("INBOXTITLE"), "agent": ["true"]}
    fd = os.open(root.inbox / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(request, fh)

    async def run() -> None:
        app = FarroApp(root, workers=1, cursor_blink=False)
        async with app.run_test(size=(200, 50), notifications=True) as pilot:
            await until(pilot, lambda: app.ready, "the first listing")
            await until(pilot, lambda: app.store.rows.get(env.id) is not None, "the row")
            await pilot.pause()
            text = clean(app, "queue")
            assert escaped("TITLE")[:30] in text

            app.open_job(env.id)
            await until(pilot, lambda: isinstance(app.screen, JobScreen), "the job pane")
            job_screen = app.screen
            assert isinstance(job_screen, JobScreen)
            await until(pilot, lambda: job_screen.env is not None, "the job loaded")
            await pilot.pause()
            text = clean(app, "job pane")
            for tag in ("TITLE", "LABEL", "DESC", "CHECK", "PROMPT"):
                assert escaped(tag)[:30] in text, tag

            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log pane")
            await until(pilot, lambda: "agent exited 0" in drawn(app), "the log")
            assert escaped("LOG") in clean(app, "log pane")

            await pilot.press("escape", "escape")
            await pilot.press("w")
            await until(pilot, lambda: isinstance(app.screen, WorkersScreen), "the workers")
            await until(pilot, lambda: "INBOX" in drawn(app), "the last ingestion", 60)
            assert escaped("INBOX")[:30] in clean(app, "workers pane")

            await pilot.press("escape")
            app.query_one("#queue").focus()
            assert app.screen.queue.select(env.id)  # type: ignore[attr-defined]
            await pilot.press("r")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
            await pilot.pause()
            assert escaped("TITLE")[:28] in clean(app, "confirm dialog")
            await pilot.press("n")

            # a notification quoting job data, with markup in it: text, escaped
            app.notify(f"[b]bold?[/b] {payload('NOTE')}", title=payload("NOTETITLE"))
            await until(pilot, lambda: "NOTE" in drawn(app), "the notification")
            text = clean(app, "notification")
            assert "[b]bold?[/b]" in text and escaped("NOTE")[:30] in text

            # a view that forgets to escape: the app's line filter still does it
            forgot = "<FORGOT>\x1b]2;PWNED-FORGOT\x07\x1b]52;c;eA==\x07 \u202e\x9b2J"
            await app.screen.mount(Static(Text(forgot), id="forgot"))
            await pilot.pause()
            text = clean(app, "a view that forgot")
            # (rich itself drops BEL; ESC, RLO and C1 it would have sent on)
            assert "<FORGOT>\\x1b]2;PWNED-FORGOT\\x1b]52;c;eA== \\u202e\\x9b2J" in text
            app.exit()

    asyncio.run(run())


def test_the_filter_is_the_last_every_widget_draws_through(root: Root) -> None:
    app = FarroApp(root, no_workers=True)
    assert app.get_line_filters()[-1] is VISIBLE_FILTER

    async def run() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.ready, "the first listing")
            widgets = list(app.screen.walk_children(Widget, with_self=True))
            assert widgets
            for widget in widgets:
                assert VISIBLE_FILTER in widget.get_line_filters(), widget
            app.exit()

    asyncio.run(run())


def test_a_forgotten_escape_keeps_the_line_width() -> None:
    from rich.segment import Segment
    from textual.color import Color

    line = [Segment("ab\x1b[2Jcd", None), Segment("ef" + " " * 10, None)]
    out = VISIBLE_FILTER.apply(line, Color(0, 0, 0))
    assert Segment.get_line_length(out) == Segment.get_line_length(line)
    assert "".join(s.text for s in out).startswith("ab\\x1b[2Jcdef")
    plain = [Segment("nothing to do", None)]
    assert VISIBLE_FILTER.apply(plain, Color(0, 0, 0)) is plain


def test_console_modules_write_to_the_terminal_only_through_widgets() -> None:
    """A guard: no console module prints, writes to stdout or the driver, overrides the
    line filters or asks for markup on a notification (all would bypass the escaping)."""
    import ast
    from pathlib import Path

    import farro_tui

    allowed_print = {"main.py"}  # farro-tui's own messages, escaped in _fail
    # developer tools: they print figures and paths of their own making, no job data
    tools = {"bench.py", "bench_diff.py", "docgen.py", "screenshots.py", "seed.py", "seed_work.py"}
    for path in Path(farro_tui.__file__).parent.rglob("*.py"):
        if path.name in tools:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.FunctionDef) and node.name == "get_line_filters":
                assert path.name == "app.py", where
            if isinstance(node, ast.Attribute) and node.attr in ("_driver", "__stdout__"):
                raise AssertionError(f"{where}: writes to the terminal directly")
            if isinstance(node, ast.Attribute) and node.attr == "stdout":
                raise AssertionError(f"{where}: writes to stdout")
            if isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name) and fn.id == "print":
                    assert path.name in allowed_print, f"{where}: print()"
                if isinstance(fn, ast.Attribute) and fn.attr == "notify":
                    for kw in node.keywords:
                        off = isinstance(kw.value, ast.Constant) and kw.value.value is False
                        assert kw.arg != "markup" or off, f"{where}: notify(markup=...)"


WIDE_TITLES = [
    "中文标题" * 12,
    "e\u0301" * 40 + " combining",
    "🙂" * 30,
    payload("TITLE"),
    "mixed 中 e\u0301 \x1b[2J \u202e 🙂 end",
]


def test_queue_rows_keep_their_columns_in_cells(root: Root) -> None:
    """Every cell of a queue row is escaped, then sized in terminal cells: the columns
    after the title start at the same cell whatever the title holds."""
    from rich.cells import cell_len

    from farro_core import job
    from farro_core.envelope import parse_spec
    from farro_core.listing import read_row
    from farro_tui.seed import FIXED_NOW
    from farro_tui.widgets.queue_view import layout, row_cells

    for width in (80, 120, 200):
        starts = set()
        for title in WIDE_TITLES:
            env = job.create(root, parse_spec({"prompt": "x", "title": title}))
            row = read_row(root, "incoming", env.id)
            assert row is not None and row.title == title
            cells = row_cells(env.id, row, width, FIXED_NOW, marked=False, killing=False)
            texts = [text for text, _ in cells]
            assert first_dangerous("".join(texts)) is None
            assert [cell_len(t) for t in texts] == [w for _, w in layout(width)]
            names = [col for col, _ in layout(width)]
            after = names.index("title") + 1
            starts.add(sum(cell_len(t) + 1 for t in texts[:after]))
        assert len(starts) == 1, (width, starts)
