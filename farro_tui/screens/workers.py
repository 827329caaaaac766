"""The workers pane: this console's embedded workers and the manager."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from farro_core.humanize import duration

if TYPE_CHECKING:
    from farro_tui.app import FarroApp

STATE_STYLE = {"busy": "yellow", "idle": "green", "paused": "magenta", "stopping": "red"}


def manager_line(snapshot: Any, now: datetime) -> Text:
    if snapshot is None:
        return Text("no embedded workers or manager (--no-workers): observing only", "bright_black")
    m = snapshot.manager
    t = Text("manager: ")
    t.append(m.role, {"here": "green", "elsewhere": "cyan", "none": "red"}.get(m.role, ""))
    if m.holder:
        t.append(f" (held by {m.holder})")
    if m.since:
        t.append(f" for {duration((now - m.since).total_seconds())}")
    if m.last_sweep:
        t.append(f" · last sweep {duration((now - m.last_sweep).total_seconds())} ago")
    if m.last_ingest:
        t.append(f"\nlast ingestion: {m.last_ingest}", "bright_black")
    clocks = getattr(snapshot, "clocks", ())
    if clocks:
        t.append("\nclock skew vs the file system:")
        for c in clocks:
            over = abs(c.skew_s) > snapshot.skew_warn_s
            t.append(f" {c.host} {c.skew_s:+.1f}s", "bold red" if over else "")
    if snapshot.paused:
        t.append("\nworkers are PAUSED (p resumes)", "bold magenta")
    return t


class WorkersScreen(Screen[None]):
    """Refreshed from the System's in-memory snapshot twice a second: no disk reads."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,w", "app.pop_screen", "Back", id="back"),
        Binding("enter", "open", "Open job", id="open_worker_job"),
    ]

    @property
    def farro(self) -> FarroApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(" Workers", id="pane-title")
        yield Static("", id="manager")
        yield DataTable(id="workers", cursor_type="row", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("worker", "state", "job", "try", "for", "done")
        table.focus()
        self.refresh_view()
        self.set_interval(0.5, self.refresh_view)

    def refresh_view(self) -> None:
        snap = self.farro.system_snapshot()
        now = self.farro.clock()
        self.query_one("#manager", Static).update(manager_line(snap, now))
        table = self.query_one(DataTable)
        workers = list(snap.workers) if snap is not None else []
        with self.app.batch_update():
            keys = {str(w.name) for w in workers}
            for row_key in list(table.rows):
                if row_key.value not in keys:
                    table.remove_row(row_key)
            for w in workers:
                cells = (
                    w.name,
                    Text(w.state, STATE_STYLE.get(w.state, "")),
                    w.job or "",
                    str(w.attempt or ""),
                    duration((now - w.since).total_seconds()),
                    str(w.jobs_done),
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
        if row[2]:
            self.farro.open_job(str(row[2]))
