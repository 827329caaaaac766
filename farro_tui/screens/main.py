"""The main screen: stat bar, status tabs, the queue, and the filter line."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.events import Resize
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, Static

from farro_tui.access import FarroAccess
from farro_tui.view import COLUMNS, TABS, ViewSpec
from farro_tui.widgets.footer import FarroFooter
from farro_tui.widgets.queue_view import NARROW_BELOW, QueueHeader, QueueView
from farro_tui.widgets.stat_bar import StatBar

TAB_SHORT = ("all", "queued", "run", "stale", "failed", "ok", "killed")


def _count(n: int, short: bool) -> str:
    """Counts fit the tab line at 80 columns: 99000 reads 99k there."""
    if not short or n < 10_000:
        return str(n)
    return f"{n // 1000}k"


class MainScreen(FarroAccess, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("escape", "clear", "Clear", show=False, id="clear"),
        Binding("s", "sort", "Sort", show=False, id="sort"),
        *(
            Binding(str(n + 1), f"tab({n})", label.title(), show=False, id=f"tab_{label}")
            for n, (label, _) in enumerate(TABS)
        ),
    ]

    #: which jobs show, in what order; every change is followed by the view (watch_spec)
    spec: reactive[ViewSpec] = reactive(ViewSpec, always_update=True, repaint=False, init=False)

    def __init__(self) -> None:
        super().__init__()
        self._filter_timer: Timer | None = None
        self._queue: QueueView | None = None

    def compose(self) -> ComposeResult:
        farro = self.farro
        # kept, not queried: timers still redraw while the app tears the screen down
        self._stats = StatBar("", id="stats")
        self._tabs = Static("", id="tabs")
        self._header = QueueHeader(id="queue-header")
        yield self._stats
        yield self._tabs
        yield self._header
        self._queue = QueueView(farro.store, farro.clock, want=farro.feeder.want, id="queue")
        yield self._queue
        yield Input(placeholder="filter: text or regex over id, title, labels", id="filter")
        yield FarroFooter()

    def on_mount(self) -> None:
        self.query_one(QueueView).focus()
        self.query_one("#filter", Input).display = False
        self.query_one("#filter", Input).cursor_blink = self.farro.cursor_blink

    @property
    def queue(self) -> QueueView:
        """The queue widget, kept rather than queried: timers and the footer still ask
        for it while the app tears the screen down on quit."""
        if self._queue is None:
            return self.query_one(QueueView)
        return self._queue

    def targets(self) -> list[str]:
        """Marked jobs (visible or not), else the one under the cursor."""
        q = self.queue
        if q.marks:
            return sorted(q.marks)
        return [q.selected] if q.selected else []

    def hidden_marks(self) -> int:
        q = self.queue
        if not q.marks:
            return 0
        shown = set(q.ids)
        return sum(1 for m in q.marks if m not in shown)

    # ------------------------------------------------------------ drawing

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < NARROW_BELOW, "narrow")
        self.update_bars()

    def update_bars(self) -> None:
        farro = self.farro
        self._stats.tick()
        counts = farro.store.counts()
        spec = self.spec
        short = self.size.width < 110
        t = Text(no_wrap=True, overflow="ellipsis")
        for n, (label, statuses) in enumerate(TABS):
            if statuses is None:
                count = _count(len(farro.store.queue_of), short)
            else:
                count = _count(sum(counts.get(s, 0) for s in statuses), short)
                if not farro.store.done_loaded and statuses & {"succeeded", "failed", "killed"}:
                    count += "…"
            name = TAB_SHORT[n] if short else label
            style = "reverse bold" if n == spec.tab else ""
            t.append(f" {n + 1}", "bold yellow" if n != spec.tab else style)
            t.append(f" {name} {count} ", style)
        if spec.filter:
            t.append(f" /{spec.filter}", "bold cyan")
        marks = len(self.queue.marks)
        if marks:
            t.append(f" ● {marks} marked", "bold yellow")
        self._tabs.update(t)
        self._header.sort, self._header.reverse = spec.sort, spec.reverse

    # ------------------------------------------------------------ view state

    def watch_spec(self) -> None:
        self.farro.recompute_view()

    def set_tab(self, n: int) -> None:
        self.spec = replace(self.spec, tab=n)

    def set_filter(self, text: str) -> None:
        if text != self.spec.filter:
            self.spec = replace(self.spec, filter=text)

    def set_sort(self, column: str) -> None:
        """By ``column``; by the same column again: the other way round."""
        reverse = not self.spec.reverse if column == self.spec.sort else False
        self.spec = replace(self.spec, sort=column, reverse=reverse)

    # ------------------------------------------------------------ events

    @on(QueueView.Opened)
    def _opened(self, event: QueueView.Opened) -> None:
        self.farro.open_job(event.job_id)

    @on(QueueView.Moved)
    def _moved(self, event: QueueView.Moved) -> None:
        self.farro.refresh_bindings()
        self.update_bars()

    @on(QueueHeader.SortRequested)
    def _sort_clicked(self, event: QueueHeader.SortRequested) -> None:
        self.set_sort(event.column)

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value
        self._filter_timer = self.set_timer(0.12, lambda: self.set_filter(value))

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.set_filter(event.value)
        inp = self.query_one("#filter", Input)
        if not event.value:
            inp.display = False
        self.queue.focus()

    # ------------------------------------------------------------ actions

    def action_filter(self) -> None:
        inp = self.query_one("#filter", Input)
        inp.display = True
        inp.focus()

    def action_clear(self) -> None:
        inp = self.query_one("#filter", Input)
        if self.spec.filter or inp.display:
            if self._filter_timer is not None:
                self._filter_timer.stop()
            inp.value = ""
            inp.display = False
            self.set_filter("")
            self.queue.focus()
        elif self.queue.marks:
            self.queue.marks.clear()
            self.queue.refresh()
            self.update_bars()
            self.farro.refresh_bindings()

    def action_tab(self, n: int) -> None:
        self.set_tab(n)

    def action_sort(self) -> None:
        from farro_tui.screens.dialogs import SortScreen

        spec = self.spec

        def chosen(col: str | None) -> None:
            if col:
                self.set_sort(col)

        self.app.push_screen(SortScreen(COLUMNS, spec.sort, spec.reverse), chosen)
