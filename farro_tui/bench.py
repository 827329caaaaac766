"""Console figures on a big root: ``python -m farro_tui.bench ROOT``.

Make the root with ``benchmarks/gen_root.py ROOT --done 99000 --queued 1000``.
Measures, headless at 120x40: the first screen (app constructed to the first
queue row drawn; add ~0.25 s of imports for a cold process),
RSS once done/ is fully read, an external change (a new job) reaching the
screen, and key-to-screen times for a cursor move, a tab switch and a filter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from farro_core.api import submit
from farro_core.root import Root
from farro_tui.app import FarroApp
from farro_tui.screens.main import MainScreen
from farro_tui.view import ViewSpec
from farro_tui.widgets.queue_view import QueueView


async def until(pilot: Any, cond: Any, timeout: float = 60) -> float:
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("condition not met")
        await pilot.pause(0.001)
    return time.perf_counter() - t0


async def key_ms(
    pilot: Any,
    step: Callable[[], object],
    frame: Callable[[], None],
    reps: int,
    undo: Callable[[], None] | None = None,
) -> float:
    """Median ms of a key's handler plus drawing every visible line, timed in the app
    itself (a Pilot press adds ~150 ms of its own waiting); ``undo`` runs untimed."""
    times = []
    for _ in range(reps):
        t1 = time.perf_counter()
        step()
        frame()
        times.append(time.perf_counter() - t1)
        await pilot.pause()
        if undo is not None:
            undo()
    return round(statistics.median(times) * 1000, 1)


async def measure(root: Root) -> dict[str, Any]:
    out: dict[str, Any] = {"jobs": sum(len(root.ids(q)) for q in ("incoming", "active", "done"))}
    drawn: list[float] = []
    render_line = QueueView.render_line

    def timed_render_line(self: QueueView, y: int) -> Any:
        if self.ids and not drawn:
            drawn.append(time.perf_counter())  # the first row of the queue drawn
        return render_line(self, y)

    QueueView.render_line = timed_render_line  # type: ignore[method-assign]
    t0 = time.perf_counter()
    app = FarroApp(root, no_workers=True, cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.ready and bool(drawn))
        out["first_screen_s"] = round(drawn[0] - t0, 3)
        QueueView.render_line = render_line  # type: ignore[method-assign]
        await until(pilot, lambda: app.store.done_loaded, timeout=300)
        out["all_rows_read_s"] = round(time.perf_counter() - t0, 3)
        out["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        main = app._main()
        assert main is not None
        latencies = []
        for n in range(5):
            t1 = time.perf_counter()
            env = submit(root, f"bench change {n}", title=f"bench change {n}")
            await until(pilot, lambda env=env: env.id in main.queue.ids)
            await pilot.pause()
            latencies.append(time.perf_counter() - t1)
        out["external_change_ms"] = round(statistics.median(latencies) * 1000)
        q = main.queue

        def frame() -> None:
            for y in range(q.size.height):
                q.render_line(y)

        steps: list[tuple[str, Any]] = [
            ("cursor j", lambda: q.action_cursor(1)),
            ("tab 6 succeeded (99k)", lambda: main.action_tab(5)),
            ("tab 1 all (100k)", lambda: main.action_tab(0)),
            (
                "filter on/off 'job 4242'",
                lambda: app.set_filter("" if app.spec.filter else "job 4242"),
            ),
            ("sort by title", lambda: app.set_sort("title")),
            ("sort by status", lambda: app.set_sort("status")),
        ]

        def ascending() -> None:  # back to ascending, without a recompute, as before
            main.set_reactive(MainScreen.spec, ViewSpec(sort=main.spec.sort))

        for label, step in steps:
            undo = ascending if label.startswith("sort") else None
            out[f"key {label} ms"] = await key_ms(pilot, step, frame, 5, undo)
        t1 = time.perf_counter()
        await pilot.press("j")
        out["pilot press j, wall ms"] = round((time.perf_counter() - t1) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("root")
    args = p.parse_args(argv)
    figures = asyncio.run(measure(Root.open(args.root)))
    json.dump(figures, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
