"""The workers pane: every worker of the root (run/workers/), local or remote, and the manager."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Static

from farro_core.humanize import duration
from farro_core.visible import visible
from farro_tui.access import FarroAccess
from farro_tui.widgets.footer import FarroFooter

STATE_STYLE = {"busy": "yellow", "idle": "green", "paused": "magenta", "stopping": "red"}


def manager_line(snapshot: Any, now: datetime, seen: Any = None) -> Text:
    """The manager as this console's System knows it, else as run/ shows it (``seen``)."""
    m = snapshot.manager if snapshot is not None else seen
    t = Text("manager: ")
    if m is None:
        t.append("…", "bright_black")
        return t
    t.append(m.role, {"here": "green", "elsewhere": "cyan", "none": "red"}.get(m.role, ""))
    if m.holder:
        t.append(f" (held by {visible(str(m.holder))})")
    if m.since:
        t.append(f" for {duration((now - m.since).total_seconds())}")
    if m.last_sweep:
        t.append(f" · last sweep {duration((now - m.last_sweep).total_seconds())} ago")
    if m.last_ingest:
        t.append(f"\nlast ingestion: {visible(str(m.last_ingest))}", "bright_black")
    clocks = getattr(snapshot, "clocks", ())
    if snapshot is not None and clocks:
        t.append("\nclock skew vs the file system:")
        for c in clocks:
            over = abs(c.skew_s) > snapshot.skew_warn_s
            t.append(f" {visible(c.host)} {c.skew_s:+.1f}s", "bold red" if over else "")
    if snapshot is None:
        t.append("\nthis console runs no workers: it observes", "bright_black")
    elif snapshot.paused:
        t.append("\nthis console's workers are PAUSED (p resumes)", "bold magenta")
    return t


class WorkersScreen(FarroAccess, Screen[None]):
    """Refreshed twice a second from what the app last read of run/ (never read here)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,w", "app.pop_screen", "Back", id="back"),
        Binding("enter", "open", "Open job", id="open_worker_job"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(" Workers", id="pane-title")
        yield Static("", id="manager")
        yield DataTable(id="workers", cursor_type="row", zebra_stripes=False)
        yield FarroFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("worker", "where", "state", "job", "try", "for", "done")
        table.focus()
        self.refresh_view()
        self.set_interval(0.5, self.refresh_view)

    def refresh_view(self) -> None:
        snap = self.farro.system_snapshot()
        now = self.farro.clock()
        self.query_one("#manager", Static).update(manager_line(snap, now, self.farro.seen_manager))
        table = self.query_one(DataTable)
        workers = self.farro.workers_of_root()
        with self.app.batch_update():
            keys = {str(w.name) for w in workers}
            for row_key in list(table.rows):
                if row_key.value not in keys:
                    table.remove_row(row_key)
            for w in workers:
                ended = not w.live
                # Text, not str: a DataTable reads a str cell as markup
                cells = (
                    Text(visible(w.name), "bright_black" if ended else ""),
                    Text("local" if w.local else "remote", "" if w.local else "cyan"),
                    Text(visible(w.state), STATE_STYLE.get(w.state, "bright_black")),
                    Text(visible(w.job or "")),
                    str(w.attempt or ""),
                    "" if w.since is None or ended else duration((now - w.since).total_seconds()),
                    "" if w.jobs_done is None else str(w.jobs_done),
                )
                if w.name in table.rows:
                    for col, value in zip(table.columns, cells, strict=False):
                        table.update_cell(w.name, col, value)
                else:
                    table.add_row(*cells, key=w.name)

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        row = table.get_row_at(table.cursor_row)
        if row[3]:
            self.farro.open_job(str(row[3]))  # an id: escaping leaves it unchanged
