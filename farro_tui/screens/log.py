"""The log pane: a live tail of an attempt's log, appended in batches."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Log, Static

from farro_core.errors import FarroError
from farro_core.visible import VisibleDecoder
from farro_tui.widgets.footer import FarroFooter

if TYPE_CHECKING:
    from farro_tui.app import FarroApp

#: how much of an existing log is shown on opening it: the tail is what matters
INITIAL_BYTES = 256 << 10
#: most read per tick, so a runaway agent cannot stall the UI
CHUNK_BYTES = 512 << 10
_ATTEMPT = re.compile(r"^attempt-(\d+)\.log$")


class LogScreen(Screen[None]):
    """``l`` from the queue or a job; ``f`` toggles follow, ``[``/``]`` earlier/later attempt."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="back"),
        Binding("f", "follow", "Follow", id="follow"),
        Binding("left_square_bracket", "attempt(-1)", "Earlier", id="attempt_prev"),
        Binding("right_square_bracket", "attempt(1)", "Later", id="attempt_next"),
        Binding("g,home", "top", "Top", show=False),
        Binding("G,end", "bottom", "Bottom", show=False),
    ]

    def __init__(self, job_id: str, *, poll_s: float = 0.25) -> None:
        super().__init__()
        self.job_id = job_id
        self.attempt: int | None = None
        self.pinned = False  # an earlier attempt chosen by hand: do not jump to a new one
        self.follow = True
        self._poll_s = poll_s
        self._path: Path | None = None
        self._offset = 0
        self._partial = ""
        self._decoder = VisibleDecoder()
        self._missing = False
        self._live = True

    @property
    def farro(self) -> FarroApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static("", id="pane-title")
        yield Log(id="log", max_lines=20_000, auto_scroll=True)
        yield FarroFooter()

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self._open(self._current_attempt())
        self.set_interval(self._poll_s, self.tick)

    def targets(self) -> list[str]:
        return [self.job_id]

    # ------------------------------------------------------------ attempts

    def _job_dir(self) -> Path | None:
        try:
            return self.farro.root.locate(self.job_id)
        except FarroError:
            return None

    def attempts(self) -> list[int]:
        d = self._job_dir()
        if d is None:
            return []
        try:
            names = os.listdir(d / "logs")
        except OSError:
            return []
        return sorted(int(m.group(1)) for n in names if (m := _ATTEMPT.match(n)))

    def _current_attempt(self) -> int | None:
        row = self.farro.store.rows.get(self.job_id)
        found = self.attempts()
        if row is not None and row.attempt > 0:
            return row.attempt
        return found[-1] if found else None

    def _open(self, attempt: int | None) -> None:
        self.attempt = attempt
        self._offset = 0
        self._partial = ""
        self._decoder = VisibleDecoder()
        self._missing = False
        log = self.query_one(Log)
        log.clear()
        d = self._job_dir()
        self._path = d / "logs" / f"attempt-{attempt}.log" if d and attempt else None
        if self._path is not None:
            try:
                size = os.stat(self._path).st_size
            except OSError:
                size = 0
            if size > INITIAL_BYTES:
                self._offset = size - INITIAL_BYTES
                self._partial = ""
                log.write_line(f"… {self._offset} earlier bytes not shown …")
                self._skip_partial = True
            else:
                self._skip_partial = False
        self.tick()
        self._title()

    def _title(self) -> None:
        found = self.attempts()
        which = f"attempt {self.attempt}" if self.attempt else "no attempt yet"
        if found:
            which += f" of {found[-1]}"
        if not self.live():
            follow = "ended"  # nothing more will come: "following" would promise more
        else:
            follow = "following" if self.follow else "paused (f follows)"
        missing = "  (no log yet)" if self._missing else ""
        self._live = self.live()
        self.query_one("#pane-title", Static).update(
            f" Log {self.job_id} · {which} · {follow}{missing}"
        )

    def live(self) -> bool:
        """Is the shown attempt still running (its log may grow)?"""
        row = self.farro.store.rows.get(self.job_id)
        if row is None:
            return True  # not read yet: it may be running
        if self.attempt is None:  # no attempt yet: the first one is followed when it starts
            return row.status not in ("succeeded", "failed", "killed")
        return row.status == "in-progress" and row.attempt == self.attempt

    def store_changed(self) -> None:
        """The job moved on (its attempt ended, or a new one began): retitle."""
        if self._live != self.live():
            self._title()

    # ------------------------------------------------------------ tail

    def tick(self) -> None:
        """Append whatever the log gained since the last tick, as one batch."""
        if self.attempt is None or not self.pinned:
            current = self._current_attempt()
            if current is not None and current != self.attempt:
                self._open(current)
                return
        if self._path is None:
            return
        try:
            with open(self._path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self._offset:  # truncated or replaced: start over
                    self._offset = 0
                    self._partial = ""
                    self._decoder = VisibleDecoder()
                    self.query_one(Log).clear()
                if size == self._offset:
                    if self._missing:
                        self._missing = False
                        self._title()
                    return
                fh.seek(self._offset)
                data = fh.read(CHUNK_BYTES)
        except FileNotFoundError:
            d = self._job_dir()  # the job moved queues: follow it
            if d is not None and self._path.parent.parent != d:
                self._path = d / "logs" / self._path.name
            elif not self._missing:
                self._missing = True
                self._title()
            return
        except OSError:
            return
        self._offset += len(data)
        # the agent's output as text: escape sequences shown, never sent to the terminal
        text = self._partial + self._decoder.feed(data)
        lines = text.split("\n")
        self._partial = lines.pop()
        if getattr(self, "_skip_partial", False) and lines:
            lines = lines[1:]  # the first line of a tail starts mid-line
            self._skip_partial = False
        if lines:
            log = self.query_one(Log)
            log.write_lines(lines, scroll_end=self.follow)

    # ------------------------------------------------------------ actions

    def action_follow(self) -> None:
        self.follow = not self.follow
        log = self.query_one(Log)
        log.auto_scroll = self.follow
        if self.follow:
            log.scroll_end(animate=False)
        self._title()

    def action_attempt(self, delta: int) -> None:
        found = self.attempts()
        if not found:
            self.notify("no logs yet", severity="warning")
            return
        index = found.index(self.attempt) if self.attempt in found else len(found) - 1
        index = max(0, min(index + delta, len(found) - 1))
        self.pinned = found[index] != found[-1]
        self._open(found[index])

    def action_top(self) -> None:
        self.follow = False
        log = self.query_one(Log)
        log.auto_scroll = False
        log.scroll_home(animate=False)
        self._title()

    def action_bottom(self) -> None:
        self.query_one(Log).scroll_end(animate=False)
