"""The workers pane: every worker of the root (run/workers/), local or remote, and the manager."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.cells import cell_len, get_character_cell_size
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Static

from farro_core.humanize import duration, skew
from farro_core.status_files import WorkerSeen, left_by
from farro_core.visible import visible
from farro_tui.access import FarroAccess
from farro_tui.widgets.footer import FarroFooter
from farro_tui.widgets.queue_view import ellipsized
from farro_tui.widgets.tables import cursor_key

COLUMNS = ("worker", "host", "state", "job", "try", "for", "done")


@dataclass(frozen=True)
class Fit:
    """Most cells a worker's name, its host and its job's id take, and whether ``done``
    shows: a long host name never pushes state, job or age out of the pane."""

    name: int
    host: int
    job: int
    done: bool


#: (narrower than, fit): at 80 columns everything but ``done`` (the least needed) fits
FITS = ((100, Fit(16, 12, 12, False)), (140, Fit(24, 16, 12, True)))
WIDE = Fit(32, 24, 26, True)


def fit_for(width: int) -> Fit:
    return next((f for below, f in FITS if width < below), WIDE)


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
            shown = skew(c.skew_s, snapshot.skew_warn_s, sign=True)
            t.append(f" {visible(c.host)} {shown}", "bold red" if over else "")
    if snapshot is None:
        t.append("\nthis console runs no workers: it observes", "bright_black")
    elif snapshot.paused:
        t.append("\nthis console's workers are PAUSED (p resumes)", "bold magenta")
    return t


#: at most this many presets are listed in the pane (`farro stats` lists them all)
PASSING_LINES = 6


def passing_lines(workers: list[WorkerSeen], width: int = 80) -> Text:
    """Why queued jobs may wait: the presets running workers pass by for lack of their
    key or config on their host (their status files' ``passing``), as `farro stats`
    says it, one line each, cut to ``width`` so the table stays in view. Every name
    and reason is escaped: a status file is anyone's to write."""
    live = [w for w in workers if w.live]
    left = left_by((w.name, w.passing) for w in live)
    t = Text()
    if not left:
        return t
    lines = [Text("passed: queued jobs of these presets wait, their workers lack the config")]
    for preset, why, names in left[:PASSING_LINES]:
        every = len(names) >= len(live)
        line = Text("  ")
        line.append(visible(preset), "bold red" if every else "bold yellow")
        line.append(f" by {visible(', '.join(names))}")
        if every:
            line.append(" (every running worker: none will run them)", "bold red")
        line.append(f": {visible(why)}", "bright_black")
        lines.append(line)
    if len(left) > PASSING_LINES:
        more = len(left) - PASSING_LINES
        lines.append(Text(f"  … {more} more: farro stats lists them all", "bright_black"))
    for line in lines:
        line.truncate(max(1, width), overflow="ellipsis")
        t.append("\n")
        t.append_text(line)
    return t


def tail(text: str, width: int) -> str:
    """The end of ``text`` (a name's pid and worker number, an id's random part)."""
    if cell_len(text) <= width:
        return text
    kept: list[str] = []
    used = 0
    for ch in reversed(text):  # in cells: a wide character is kept whole or left out
        used += get_character_cell_size(ch)
        if used > width - 1:
            break
        kept.append(ch)
    return "…" + "".join(reversed(kept))


def worker_cells(w: WorkerSeen, now: datetime, fit: Fit) -> tuple[Text | str, ...]:
    """One row; Text, not str, where a DataTable would read a str cell as markup. Names
    and ids keep their tails (pid and worker number, the id's random part)."""
    ended = not w.live
    name, job = tail(visible(w.name), fit.name), tail(visible(w.job or ""), fit.job)
    where = ellipsized(visible(w.host or "?"), fit.host).rstrip()
    cells: tuple[Text | str, ...] = (
        Text(name, "bright_black" if ended else ""),
        Text(where, "" if w.local else "cyan"),  # another host's: cyan, as the header's count
        Text(visible(w.state), STATE_STYLE.get(w.state, "bright_black")),
        Text(job),
        str(w.attempt or ""),
        "" if w.since is None or ended else duration((now - w.since).total_seconds()),
        "" if w.jobs_done is None else str(w.jobs_done),
    )
    return cells if fit.done else cells[:-1]


class WorkersScreen(FarroAccess, Screen[None]):
    """Refreshed twice a second from what the app last read of run/ (never read here)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,w", "app.pop_screen", "Back", id="back"),
        # priority: the focused table would take enter (select_cursor) and hide it
        Binding("enter", "open", "Open job", id="open_worker_job", priority=True),
    ]

    def compose(self) -> ComposeResult:
        yield Static(" Workers", id="pane-title")
        yield Static("", id="manager")
        yield DataTable(id="workers", cursor_type="row", zebra_stripes=False)
        yield FarroFooter()

    def __init__(self) -> None:
        super().__init__()
        self._fit: Fit | None = None
        self._jobs: dict[str, str | None] = {}  # the full job id of each row (shown cut short)
        self._had_job: bool | None = None  # the last selected_job seen, as set or not

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self._columns()
        self.set_interval(0.5, self.refresh_view)

    def on_resize(self) -> None:
        self._columns()

    def _columns(self) -> None:
        fit = fit_for(self.size.width)
        if fit == self._fit:
            return
        self._fit = fit
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_columns(*(COLUMNS if fit.done else COLUMNS[:-1]))
        self.refresh_view()

    def refresh_view(self) -> None:
        snap = self.farro.system_snapshot()
        now = self.farro.clock()
        workers = self.farro.workers_of_root()
        manager = self.query_one("#manager", Static)
        width = manager.content_region.width or self.size.width - 2
        head = manager_line(snap, now, self.farro.seen_manager) + passing_lines(workers, width)
        manager.update(head)
        table = self.query_one(DataTable)
        fit = self._fit or fit_for(self.size.width)
        with self.app.batch_update():
            keys = {str(w.name) for w in workers}
            for row_key in list(table.rows):
                if row_key.value not in keys:
                    table.remove_row(row_key)
            for w in workers:
                self._jobs[w.name] = w.job
                cells = worker_cells(w, now, fit)
                if w.name in table.rows:
                    for col, value in zip(table.columns, cells, strict=False):
                        table.update_cell(w.name, col, value)
                else:
                    table.add_row(*cells, key=w.name)
        self._job_changed()

    @property
    def selected_job(self) -> str | None:
        """The job of the worker under the cursor: what enter, ``l`` and ``d`` act on."""
        key = cursor_key(self.query_one(DataTable))
        return None if key is None else self._jobs.get(key) or None

    def no_job(self) -> str:
        """Why enter or ``l`` acts on nothing here (the notification's words)."""
        key = cursor_key(self.query_one(DataTable))
        return "no worker under the cursor" if key is None else f"worker {visible(key)} runs no job"

    def _job_changed(self) -> None:
        """A worker took or finished a job, or the cursor moved: the footer's keys follow."""
        has = self.selected_job is not None
        if has != self._had_job:
            self._had_job = has
            self.farro.refresh_bindings()

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._job_changed()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open":
            return self.selected_job is not None or None  # shown disabled; pressed, says why
        return True

    def explain(self, action: str, parameters: tuple[object, ...]) -> None:
        self.notify(self.no_job(), title="Open job", severity="warning")

    def action_open(self) -> None:
        job_id = self.selected_job
        if job_id:
            self.farro.open_job(job_id)
