"""Regenerate screenshots/*.svg from the fixed showcase root: ``python -m farro_tui.screenshots``.

The same deterministic set-up as the snapshot tests (fixed ids, timestamps and
clock; no workers), so the pictures only change when the console does.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

from rich.cells import cell_len

from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.diff import DiffScreen
from farro_tui.screens.followup import NoteScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.report import ReportScreen
from farro_tui.seed import FIXED_NOW, seed_showcase
from farro_tui.seed_work import seed_work

# (file, keys from the main screen, what to wait for)
SHOTS: list[tuple[str, tuple[str, ...], Callable[[FarroApp], bool]]] = [
    ("main", (), lambda a: True),
    (
        "job",
        ("j",) * 7 + ("enter",),
        lambda a: isinstance(a.screen, JobScreen) and a.screen.env is not None,
    ),
    ("log", ("l",), lambda a: isinstance(a.screen, LogScreen)),
    ("confirm", ("j", "j", "space", "j", "j", "j", "j", "space", "r"),
     lambda a: isinstance(a.screen, ConfirmScreen)),
    ("batch", ("b",), lambda a: isinstance(a.screen, ReportScreen) and a.screen.loads > 0),
]  # fmt: skip
#: the operator's loop after the agent, on a root holding one job with real git work
LOOP_SHOTS: list[tuple[str, tuple[str, ...], Callable[[FarroApp], bool]]] = [
    ("diff", ("d", "n", "n"), lambda a: isinstance(a.screen, DiffScreen) and a.screen.loaded),
    ("land", ("m",), lambda a: isinstance(a.screen, ConfirmScreen)),
    ("followup", ("u", *"Also handle a BOM", "ctrl+t"), lambda a: isinstance(a.screen, NoteScreen)),
]


#: a text on the screen's rows as Rich's SVG export writes it (or :func:`readable_svg` a gap's);
#: the title bar's has no textLength
_SPAN = re.compile(
    r'<text (?:class="[^"]*" )?x="(?P<x>[0-9.]+)" y="(?P<y>[0-9.]+)" '
    r'textLength="(?P<len>[0-9.]+)" clip-path="(?P<clip>[^"]*)">(?P<text>.*?)</text>'
)


def readable_svg(svg: str) -> str:
    """The SVG with the spaces between words written as text too.

    Rich's exporter draws a run of spaces (a grid's padding, the gap between two
    syntax tokens) as nothing, so anything that reads the picture's text (a copy
    from the README, a screen reader, a search) runs the words around it
    together: ``exit code0``. Each such gap gets a text of as many spaces; what
    the picture shows does not change.
    """
    spans = list(_SPAN.finditer(svg))
    if not spans:
        return svg
    first = spans[0]
    cell = float(first["len"]) / len(html.unescape(first["text"]))
    lines: dict[str, list[tuple[int, int, re.Match[str]]]] = {}
    for m in spans:
        col = round(float(m["x"]) / cell)
        lines.setdefault(m["y"], []).append((col, col + cell_len(html.unescape(m["text"])), m))
    fill: dict[int, str] = {}  # after the span ending at this offset
    for row in lines.values():
        row.sort(key=lambda r: r[0])
        for (_, end, m), (start, _, _) in pairwise(row):
            if start > end:
                gap = start - end
                fill[m.end()] = (
                    f'<text x="{format(end * cell, "g")}" y="{m["y"]}" '
                    f'textLength="{format(gap * cell, "g")}" clip-path="{m["clip"]}">'
                    f"{'&#160;' * gap}</text>"
                )
    out, at = [], 0
    for offset in sorted(fill):
        out += [svg[at:offset], fill[offset]]
        at = offset
    return "".join(out) + svg[at:]


async def _until(pilot: Any, cond: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("the screen never got ready")
        await pilot.pause(0.02)


def _loaded(app: FarroApp) -> Callable[[], bool]:
    return lambda: app.ready and app.store.done_loaded


def _bound(ready: Callable[[FarroApp], bool], app: FarroApp) -> Callable[[], bool]:
    return lambda: ready(app)


async def shoot(out: Path, size: tuple[int, int]) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory(prefix="farro-shots-") as tmp:
        os.environ["HOME"] = tmp  # the stat bar shows ~/root, the same on every machine
        root = Root.init(Path(tmp) / "root")
        seed_showcase(root)
        work_root = Root.init(Path(tmp) / "loop")
        seed_work(work_root, Path(tmp) / "repo")
        for root, (name, keys, ready) in [
            *((root, shot) for shot in SHOTS),
            *((work_root, shot) for shot in LOOP_SHOTS),
        ]:
            app = FarroApp(
                root, no_workers=True, clock=lambda: FIXED_NOW, cursor_blink=False, watch=False
            )
            async with app.run_test(size=size) as pilot:
                await _until(pilot, _loaded(app))
                await pilot.pause()
                await pilot.press(*keys)
                await _until(pilot, _bound(ready, app))
                await pilot.pause(0.4)
                path = out / f"{name}.svg"
                path.write_text(readable_svg(app.export_screenshot()), encoding="utf-8")
                written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", nargs="?", default="screenshots", help="directory for the SVGs")
    p.add_argument("--size", default="110x32", help="terminal size, COLSxROWS")
    args = p.parse_args(argv)
    cols, rows = (int(n) for n in args.size.lower().split("x"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(shoot(out, (cols, rows))):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
