"""The batch view: ``farro report`` in the console, updated while the batch runs."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Static

from farro_core.humanize import duration
from farro_core.report import JobLine, Summary, lines, summarize
from farro_core.visible import visible
from farro_tui.access import FarroAccess
from farro_tui.widgets.footer import FarroFooter
from farro_tui.widgets.queue_view import STATUS_STYLE
from farro_tui.widgets.tables import cursor_key

#: at most this often the view reads its jobs again while the batch runs
REFRESH_S = 0.5
MARK = {True: ("✓", "green"), False: ("✗", "red"), None: ("?", "bright_black")}


def summary_table(s: Summary) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bright_black", no_wrap=True)
    grid.add_column()
    counts = Text()
    for status, n in sorted(s.by_status.items()):
        counts.append(f"{n} {status}  ", STATUS_STYLE.get(status))
    grid.add_row("status", counts)
    rate = f"{s.pass_rate:.0%} ({s.passed} of {s.finished} finished)" if s.finished else "—"
    grid.add_row("pass rate", rate)
    mean = f", mean ${s.mean_cost_usd:.4f}" if s.mean_cost_usd is not None else ""
    grid.add_row("cost", f"${s.cost_usd:.4f}{mean}")
    grid.add_row("tokens", f"{s.tokens:,}")
    wall = duration(s.wall_s) if s.wall_s is not None else "—"
    grid.add_row("time", f"{duration(s.run_s)} of agent runs, {wall} wall")
    if s.slowest:
        grid.add_row("slowest", ", ".join(f"{i[-8:]} {duration(d)}" for i, d in s.slowest[:3]))
    if s.costliest:
        grid.add_row("costliest", ", ".join(f"{i[-8:]} ${c:.4f}" for i, c in s.costliest[:3]))
    for why, ids in list(s.failures.items())[:6]:
        grid.add_row(Text("failed", style="red"), Text(f"{len(ids)}: {visible(why)}"))
    return grid


class ReportScreen(FarroAccess, Screen[None]):
    """``b`` on a job: its batch (its ``batch`` label), else every job."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="back"),
    ]

    def __init__(self, label: tuple[str, str] | None) -> None:
        super().__init__()
        self.label = label
        self.jobs: list[JobLine] = []
        self.summary: Summary | None = None
        self.loads = 0  # tests wait for a fresh load
        self._last = 0.0
        self._timer: Any = None

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="pane-title")
        yield Static("loading…", id="report-summary")
        yield DataTable(id="report-jobs", cursor_type="row", zebra_stripes=True)
        yield FarroFooter()

    def _title(self) -> str:
        what = f"{self.label[0]}={self.label[1]}" if self.label else "every job"
        return visible(f" Batch · {what} · live")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("job", "status", "verdict", "checks", "try", "run", "cost", "title")
        table.focus()
        self.reload()
        self.farro.store_updated.subscribe(self, lambda _: self.store_changed(), immediate=True)

    def store_changed(self) -> None:
        """The queue changed: read the batch again, at most every REFRESH_S."""
        wait = REFRESH_S - (time.monotonic() - self._last)
        if wait <= 0:
            self.reload()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._timed)

    def _timed(self) -> None:
        self._timer = None
        self.reload()

    def _ids(self) -> list[str]:
        rows = self.farro.store.rows
        if self.label is None:
            return sorted(rows)
        key, value = self.label
        return sorted(i for i, r in rows.items() if r is not None and r.labels.get(key) == value)

    @work(thread=True, exclusive=True, group="report-load")
    def reload(self) -> None:
        self._last = time.monotonic()
        jobs = lines(self.farro.root, self._ids())
        self.app.call_from_thread(self._show, jobs, summarize(jobs, self.farro.clock()))

    def _show(self, jobs: list[JobLine], s: Summary) -> None:
        self.jobs, self.summary = jobs, s
        head = Text(f"{s.jobs} job{'s' * (s.jobs != 1)}", style="bold")
        self.query_one("#report-summary", Static).update(_stack(head, summary_table(s)))
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for j in jobs:
            checks = Text()
            for cid, ok in j.checks.items():
                mark, colour = MARK[ok]
                checks.append(f"{mark}{visible(cid)} ", colour)
            table.add_row(
                j.id[-12:],
                Text(j.status, style=STATUS_STYLE.get(j.status, "")),
                j.verdict or "—",
                checks,
                str(j.attempts),
                duration(j.duration_s) if j.duration_s is not None else "—",
                f"${j.cost_usd:.4f}" if j.cost_usd is not None else "—",
                Text(visible(j.title)[:60]),
                key=j.id,
            )
        if jobs:
            table.move_cursor(row=min(cursor, len(jobs) - 1))
        self.farro.refresh_bindings()
        self.loads += 1

    @property
    def selected(self) -> str | None:
        """The job under the cursor: what ``l`` (log) and ``d`` (diff) act on here."""
        return cursor_key(self.query_one(DataTable))

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self.farro.refresh_bindings()  # l shown enabled once a row is under the cursor

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """enter on a row opens that job."""
        if event.row_key.value is not None:
            self.farro.open_job(str(event.row_key.value))


def _stack(*parts: Any) -> Table:
    grid = Table.grid()
    for part in parts:
        grid.add_row(part)
    return grid
