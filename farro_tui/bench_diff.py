"""Diff pane figures on a 50,000-line diff: ``python -m farro_tui.bench_diff DIR``.

Makes a root and a git repository under DIR (farro_tui.seed_work with 50,000
generated lines), then measures, headless at 120x40: the first screen (``d``
handled to the first diff line drawn, reading the diff from git included) and
key-to-screen times for the pane's keys, timed in the app as the handler plus
drawing every visible line (a Pilot press adds a fixed wait no user sees).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.bench import key_ms, until
from farro_tui.screens.diff import DiffScreen
from farro_tui.seed_work import seed_work
from farro_tui.widgets.diff_view import DiffView, FileList


async def measure(root: Root, job_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    drawn: list[float] = []
    render_line = DiffView.render_line

    def timed_render_line(self: DiffView, y: int) -> Any:
        if self.diff.lines and not drawn:
            drawn.append(time.perf_counter())
            drawn.append(time.process_time())
        return render_line(self, y)

    app = FarroApp(root, no_workers=True, cursor_blink=False, watch=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.ready)
        DiffView.render_line = timed_render_line  # type: ignore[method-assign]
        t0, c0 = time.perf_counter(), time.process_time()
        app.push_screen(DiffScreen(job_id))
        await until(pilot, lambda: bool(drawn))
        out["first_screen_s"] = round(drawn[0] - t0, 3)
        # CPU used meanwhile, every thread: what a loaded machine's wall time hides
        out["first_screen_cpu_s"] = round(drawn[1] - c0, 3)
        DiffView.render_line = render_line  # type: ignore[method-assign]
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        view, files = screen.query_one(DiffView), screen.query_one(FileList)
        out["lines"] = len(view.diff.lines)
        out["files"] = len(view.diff.files)

        def frame() -> None:
            for y in range(view.size.height):
                view.render_line(y)
            for y in range(files.size.height):
                files.render_line(y)

        steps: list[tuple[str, Any]] = [
            ("n next file", lambda: screen.action_file(1)),
            ("j line down", lambda: screen.action_scroll(1)),
            ("pagedown", lambda: screen.action_page(1)),
            ("p previous file", lambda: screen.action_file(-1)),
            ("G bottom", lambda: screen.action_edge(1)),
            ("g top", lambda: screen.action_edge(0)),
        ]
        for label, step in steps:
            out[f"key {label} ms"] = await key_ms(pilot, step, frame, 7)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("dir", help="an empty scratch directory")
    p.add_argument("--lines", type=int, default=50_000)
    args = p.parse_args(argv)
    d = Path(args.dir)
    root = Root.init(d / "root")
    job_id = seed_work(root, d / "repo", big_lines=args.lines)
    figures = asyncio.run(measure(root, job_id))
    json.dump(figures, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
