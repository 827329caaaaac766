"""README's screenshots read as the screen does: no words run together in their text.

Rich's SVG exporter draws a run of spaces as nothing, so the text of a picture
(what a copy, a search or a screen reader gets) joined the words around every
gap: ``exit code0``, ``last claimw1``, ``fromioimportStringIO``.
"""

from __future__ import annotations

import html
import re
from itertools import pairwise
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from farro_tui.screenshots import readable_svg

SHOTS = sorted((Path(__file__).resolve().parents[2] / "screenshots").glob("*.svg"))
SPAN = re.compile(
    r'<text [^>]*\bx="([0-9.]+)" y="([0-9.]+)" textLength="([0-9.]+)"[^>]*>(.*?)</text>'
)


def text_lines(svg: str) -> list[str]:
    """Each row's text in the order the file holds it, as a reader of the text gets it."""
    rows: dict[str, list[str]] = {}
    for _, y, _, text in SPAN.findall(svg):
        rows.setdefault(y, []).append(html.unescape(text).replace("\xa0", " "))
    return ["".join(parts) for _, parts in sorted(rows.items(), key=lambda r: float(r[0]))]


def gaps(svg: str) -> list[str]:
    """Two texts of one row with undrawn cells between them: words a reader sees joined."""
    rows: dict[str, list[tuple[int, int, str]]] = {}
    for x, y, length, escaped in SPAN.findall(svg):
        text = html.unescape(escaped)
        cell = float(length) / len(text)  # Rich's textLength: one cell per character
        col = round(float(x) / cell)
        rows.setdefault(y, []).append((col, col + cell_len(text), text))
    found = []
    for row in rows.values():
        row.sort()
        for (_, end, a), (start, _, b) in pairwise(row):
            if start > end:
                found.append(f"{a[-15:]!r} | {b[:15]!r}")
    return found


def test_a_grid_s_padding_is_text_in_the_picture() -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bright_black")
    grid.add_column()
    grid.add_row("exit code", "0")
    grid.add_row("claim", "w1 on farro-demo")
    console = Console(width=60, record=True, color_system="truecolor", file=None)
    console.print(grid)
    svg = console.export_svg()
    assert "exit code0" in text_lines(svg)[0]  # Rich alone: the padding is not text
    fixed = readable_svg(svg)
    assert [ln.rstrip() for ln in text_lines(fixed)[:2]] == [
        "exit code  0",
        "claim      w1 on farro-demo",
    ]
    assert gaps(fixed) == []
    assert readable_svg(fixed) == fixed  # nothing left to fill


@pytest.mark.parametrize("shot", SHOTS, ids=lambda p: p.name)
def test_readme_screenshots_run_no_words_together(shot: Path) -> None:
    assert gaps(shot.read_text(encoding="utf-8")) == [], (
        f"{shot.name}: words run together in its text; run `make screenshots`"
    )


def test_there_are_screenshots() -> None:
    assert len(SHOTS) >= 5
