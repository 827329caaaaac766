"""The log pane: a live tail of an attempt's log, read off the UI thread, appended in batches."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Log, Static

from farro_core.errors import FarroError
from farro_core.fs import open_read
from farro_core.visible import VisibleDecoder, visible
from farro_tui.access import FarroAccess
from farro_tui.widgets.footer import FarroFooter

#: how much of an existing log is shown on opening it: the tail is what matters
INITIAL_BYTES = 256 << 10
#: most read per tick, so a runaway agent cannot stall the UI
CHUNK_BYTES = 512 << 10
_ATTEMPT = re.compile(r"^attempt-(\d+)\.log$")


class LogScreen(FarroAccess, Screen[None]):
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
        self._reading = False  # a read is in flight in a worker thread
        self._refused: str | None = None  # why the log cannot be shown, as last said
        self._moves = (False, False)  # is there an earlier, a later attempt: [ and ] act

    def compose(self) -> ComposeResult:
        yield Static("", id="pane-title")
        yield Log(id="log", max_lines=20_000, auto_scroll=True)
        yield FarroFooter()

    def on_mount(self) -> None:
        self.query_one(Log).focus()
        self._open(self._current_attempt())
        self.set_interval(self._poll_s, self.tick)
        self.farro.store_updated.subscribe(self, lambda _: self.store_changed(), immediate=True)

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
        self._refused = None
        if self._path is not None:
            try:
                size = os.lstat(self._path).st_size  # lstat never blocks, even on a FIFO
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

    def _moves_from(self, found: list[int]) -> tuple[bool, bool]:
        """(earlier, later): whether ``[`` and ``]`` have an attempt to go to."""
        index = found.index(self.attempt) if self.attempt in found else len(found) - 1
        return index > 0, 0 <= index < len(found) - 1

    def _title(self) -> None:
        found = self.attempts()
        moves = self._moves_from(found)
        if moves != self._moves:  # [ and ] are shown enabled only where they go somewhere
            self._moves = moves
            self.farro.refresh_bindings()
        which = f"attempt {self.attempt}" if self.attempt else "no attempt yet"
        if found:
            which += f" of {found[-1]}"
        if not self.live():
            follow = "ended"  # nothing more will come: "following" would promise more
        else:
            follow = "following" if self.follow else "paused (f follows)"
        self._live = self.live()
        missing = "  (no log yet)" if self._missing else ""
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
        """Start reading whatever the log gained since the last read, off the UI thread.

        The log is under the root, so it may be anything (a FIFO, a symlink, a file
        on a stuck disk): the UI thread never opens or reads it. One read is in
        flight at a time; its result is applied by :meth:`_got` as one batch.
        """
        if self.attempt is None or not self.pinned:
            current = self._current_attempt()
            if current is not None and current != self.attempt:
                self._open(current)
                return
        if self._path is None or self._reading:
            return
        self._reading = True
        path, offset = self._path, self._offset
        self.run_worker(
            lambda: self._read(path, offset), thread=True, group="log-tail", exit_on_error=False
        )

    def _read(self, path: Path, offset: int) -> None:
        """In a worker thread: read up to :data:`CHUNK_BYTES` from ``offset``."""
        size, data, error = 0, b"", None
        try:
            fd = open_read(None, path)
            try:
                size = os.fstat(fd).st_size
                if offset <= size:
                    data = os.pread(fd, CHUNK_BYTES, offset)
            finally:
                os.close(fd)
        except FileNotFoundError:
            error = ""
        except Exception as exc:  # never left unanswered: the pane would stop tailing
            error = " ".join(str(exc).split()) or type(exc).__name__
        with contextlib.suppress(RuntimeError):  # the app is gone (quit while reading)
            self.app.call_from_thread(self._got, path, offset, size, data, error)

    def _got(self, path: Path, offset: int, size: int, data: bytes, error: str | None) -> None:
        """On the UI thread: apply one read, unless the pane moved on meanwhile."""
        self._reading = False
        if path != self._path or offset != self._offset or not self.is_mounted:
            return  # another attempt or place was opened meanwhile
        if error == "":  # gone: the job moved queues, follow it
            d = self._job_dir()
            if d is not None and path.parent.parent != d:
                self._path = d / "logs" / path.name
            elif not self._missing:
                self._missing = True
                self._title()
            return
        if error is not None:
            if error != self._refused:
                self._refused = error
                self.query_one(Log).write_line(f"[farro] cannot show this log: {visible(error)}")
            return
        self._refused = None
        if size < self._offset:  # truncated or replaced: start over
            self._offset = 0
            self._partial = ""
            self._decoder = VisibleDecoder()
            self.query_one(Log).clear()
            return
        if not data:
            if self._missing:
                self._missing = False
                self._title()
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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "attempt" and parameters:
            earlier, later = self._moves
            return (earlier if _back(parameters) else later) or None
        return True

    def explain(self, action: str, parameters: tuple[object, ...]) -> None:
        """``[`` or ``]`` with no attempt that way: which attempt this is."""
        found = self.attempts()
        if not found:
            why = "no logs yet"
        elif len(found) == 1:
            why = f"attempt {found[0]} is the only one with a log"
        elif _back(parameters):
            why = f"attempt {self.attempt or found[-1]} is the first"
        else:
            why = f"attempt {self.attempt or found[-1]} is the latest"
        self.notify(why, title="Log", severity="warning")

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


def _back(parameters: tuple[object, ...]) -> bool:
    """Does ``attempt(delta)`` go back (``[``)?"""
    return bool(parameters) and isinstance(parameters[0], int) and parameters[0] < 0
