"""The console's view state: the store fed from the feeder, and the ids the queue shows.

The main screen holds the view state itself (``MainScreen.spec``, a reactive whose
watcher calls :meth:`ViewState.recompute_view`); this layer takes each
:class:`~farro_tui.messages.QueueChanged`, applies it to the store, decides whether
the visible ids must be recomputed (at most ~8 times a second) or the rows only
redrawn, tells the panes through :attr:`ViewState.store_updated`, announces a job
seen to fail, and says when the feed stops being current.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from textual import on
from textual.app import App
from textual.signal import Signal
from textual.timer import Timer

from farro_core.errors import FarroError
from farro_core.listing import JobRow
from farro_core.lru import LRU
from farro_core.root import Root
from farro_core.visible import visible as visible_text
from farro_tui.messages import QueueChanged
from farro_tui.screens.main import MainScreen
from farro_tui.store import Feeder, Store
from farro_tui.view import TABS, ViewSpec, visible


class ViewState(App[None]):
    """FarroApp's bottom layer: the data and what the queue shows (the app sets these)."""

    root: Root
    store: Store
    feeder: Feeder
    clock: Callable[[], datetime]
    #: published after each change the store takes in; panes showing a job subscribe
    store_updated: Signal[None]
    #: each job's status as last read, kept when it drops out of a listing mid-move
    _last_status: LRU[str, str]
    _view_timer: Timer | None
    _last_view: float
    _feed_failure: str | None

    @on(QueueChanged)
    def _queue_changed(self) -> None:
        self._feed_health()
        delta = self.feeder.take()
        if not delta and self._last_view > 0:
            return  # a feed failure said above, or taken with an earlier message
        # a job between queues can be missing from one listing (the feeder read active/
        # after it left and done/ before it came): what it was last seen as still counts
        seen = self._last_status
        before = {i: self.store.status_of(i) or seen.get(i) for i in delta.rows}
        names_changed, rows_changed = self.store.apply(delta)
        self._announce_failures(delta.rows, before)
        for job_id, row in delta.rows.items():
            if row is not None:
                seen.put(job_id, row.status)
        spec = self.spec
        default = spec.tab == 0 and not spec.filter and spec.sort == "status"
        outside_done = any(r is not None and r.queue != "done" for r in delta.rows.values())
        first = self._last_view == 0
        if first or names_changed or (rows_changed and (outside_done or not default)):
            self.schedule_view()
        else:
            self._redraw()
        self.store_updated.publish(None)

    def _announce_failures(
        self, rows: dict[str, JobRow | None], before: dict[str, str | None]
    ) -> None:
        """A job seen to fail (not one read failed already): a notification, and the
        terminal bell when ``bell_on_failure`` is set."""
        failed = [
            (i, row)
            for i, row in rows.items()
            if row is not None
            and row.status == "failed"
            and before.get(i) not in (None, "failed", "done?")
        ]
        if not failed:
            return
        for job_id, row in failed[:3]:
            self.notify(
                visible_text(f"{row.title[:60]}: {row.reason[:120]}"),
                title=f"Job {job_id} failed",
                severity="error",
                timeout=10,
                markup=False,
            )
        if len(failed) > 3:
            self.notify(f"… and {len(failed) - 3} more failed", severity="error")
        try:
            ring = self.root.settings.bell_on_failure
        except FarroError:
            ring = False
        if ring:
            self.bell()

    def schedule_view(self) -> None:
        """Recompute the visible ids now, or soon: at most ~8 times a second."""
        wait = 0.12 - (time.monotonic() - self._last_view)
        if wait <= 0:
            self.recompute_view()
        elif self._view_timer is None:
            self._view_timer = self.set_timer(wait, self.recompute_view)

    def recompute_view(self) -> None:
        self._view_timer = None
        if self._last_view == 0:
            self.call_after_refresh(self.feeder.first_screen_drawn)
        self._last_view = time.monotonic()
        ids = visible(self.store, self.spec, self.clock())
        main = self._main()
        if main is None:
            return
        q = main.queue
        if not ids:
            q.empty_text = self._empty_text()
        q.set_ids(ids)
        main.update_bars()
        self.refresh_bindings()

    def _empty_text(self) -> str:
        if not self.store.loaded:
            return "loading…"
        if self.spec.filter:
            return f"no job matches /{visible_text(self.spec.filter)} (esc clears)"
        if self.spec.tab and not self.store.done_loaded:
            return f"no {TABS[self.spec.tab][0]} jobs yet (still reading done/…)"
        return "no jobs" + (f" in {TABS[self.spec.tab][0]}" if self.spec.tab else "")

    def _redraw(self) -> None:
        main = self._main()
        if main is not None:
            main.queue.refresh()
            main.update_bars()

    def _feed_health(self) -> None:
        """Say when the queue view stops being current, and when it is again."""
        failure = self.feeder.check()
        if failure == self._feed_failure:
            return
        if failure is not None:
            self.notify(
                f"the queue view is not updating: {failure}; retrying",
                title="feed failed",
                severity="error",
                timeout=30,
                markup=False,  # the reason may hold brackets from a path or a file
            )
        else:
            self.notify("the queue view is updating again", title="feed recovered")
        self._feed_failure = failure

    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    @property
    def spec(self) -> ViewSpec:
        """The main screen's view state (reactive there); the default before it exists."""
        main = self._main()
        return main.spec if main is not None else ViewSpec()

    def set_tab(self, n: int) -> None:
        if (main := self._main()) is not None:
            main.set_tab(n)

    def set_filter(self, text: str) -> None:
        if (main := self._main()) is not None:
            main.set_filter(text)

    def set_sort(self, column: str) -> None:
        if (main := self._main()) is not None:
            main.set_sort(column)
