"""Queue titles cut to their column end in ``…``, in terminal cells, escaped first."""

from __future__ import annotations

import pytest
from rich.cells import cell_len

from farro_core.root import Root
from farro_tui.screens.main import MainScreen
from farro_tui.widgets.queue_view import layout

from .helpers import S, console, make, ready, until

LONG = "Refactor the storage layer so that every backend shares one retry policy and one clock"
WIDE = "日本語のタイトルはとても長いのでこの列には収まりません" * 2
HOSTILE = "\x1b]52;c;aGk=\x07 steals the clipboard " + "x" * 80


def title_cell(line: str, width: int) -> str:
    """The title column of a rendered queue line (cells, not characters)."""
    start = 0
    for col, w in layout(width):
        if col == "title":
            cells = 0
            out = []
            for ch in line:  # walk to the title's first cell, then take w cells
                size = cell_len(ch)
                if start <= cells < start + w:
                    out.append(ch)
                cells += size
            return "".join(out)
        start += w + 1
    raise AssertionError("no title column")


@pytest.mark.parametrize("size", [(100, 30), (80, 24), (150, 40)], ids=str)
async def test_a_cut_title_ends_in_an_ellipsis(root: Root, size: tuple[int, int]) -> None:
    ids = {t: make(root, S.QUEUED, t) for t in (LONG, WIDE, HOSTILE, "short")}
    app = console(root)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        assert isinstance(app.screen, MainScreen)
        queue = app.screen.queue
        await until(pilot, lambda: all(i in queue.ids for i in ids.values()), "every job")
        width = queue.size.width
        lines = {t: queue.render_line(queue.ids.index(i)).text for t, i in ids.items()}
    for title, line in lines.items():
        assert cell_len(line) == width  # a wide character never shifts the columns after it
        cell = title_cell(line, width).rstrip()
        if title == "short":
            assert cell == "short"
        else:
            assert cell.endswith("…"), (title, cell)
    assert "\x1b" not in lines[HOSTILE] and "\x07" not in lines[HOSTILE]
    assert title_cell(lines[HOSTILE], width).startswith("\\x1b]52;c;aGk=\\x07")
    assert title_cell(lines[WIDE], width).startswith("日本語")
