"""Hosting the System, and leaving cleanly: quit, hangup, the end of run().

The console runs the System (manager + embedded workers) unless told not to;
whatever ends the console (``q``, SIGHUP from a dropped SSH session, SIGTERM, an
exception) stops it once and releases the jobs its workers hold. It also reads the
whole root's workers from run/ once a second, off the UI thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from textual import work

from farro_core.errors import FarroError
from farro_core.identity import host
from farro_core.manager import ManagerStatus, current_manager
from farro_core.root import Root
from farro_core.status_files import WorkerSeen, live_first, workers_seen
from farro_tui.screens.dialogs import QuitScreen
from farro_tui.view_state import ViewState

if TYPE_CHECKING:
    from farro_core.system import SystemSnapshot

#: how long a hangup waits for a clean exit before leaving anyway
HANGUP_EXIT_S = 3.0


class HostedSystem(Protocol):
    """The part of :class:`farro_core.system.System` the console uses: start, stop,
    pause, and a snapshot to draw from."""

    @property
    def paused(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self, *, release: bool = True, grace_s: float | None = None) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def snapshot(self) -> SystemSnapshot: ...


class SystemHost(ViewState):
    """The System's host: :class:`~farro_tui.app.FarroApp` sets these attributes."""

    root: Root
    worker_count: int | None
    system: HostedSystem | None
    _owns_system: bool
    _system_stopped: bool
    _stop_lock: threading.Lock
    _snapshot: SystemSnapshot | None
    _snapshot_at: float
    #: every worker of the root and its manager, from run/ (read off the UI thread)
    seen_workers: list[WorkerSeen]
    seen_manager: ManagerStatus | None
    _looked_once: bool
    quitting: bool
    _in_run: bool
    _run_returned: bool

    def _catch_hangups(self) -> None:
        """SIGHUP (the terminal gone) and SIGTERM release the jobs and leave."""
        if threading.current_thread() is threading.main_thread() and not self.is_headless:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                with contextlib.suppress(RuntimeError, ValueError):  # Unix only, as flock is
                    loop.add_signal_handler(sig, self._hangup)

    def _start_system(self) -> None:
        try:
            from farro_core.system import System
        except ImportError:
            self.notify("embedded workers are not available in this build", severity="warning")
            return
        try:
            self.system = System(self.root, workers=self.worker_count, manager=True)
            self.system.start()
        except FarroError as exc:
            self.system = None
            self.notify(f"workers not started: {exc}", severity="error", timeout=10)

    def _hangup(self) -> None:
        """The terminal is gone (SSH drop) or we were told to stop: release jobs, exit."""
        self.quitting = True
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=self._stop_and_exit, args=(loop,), name="farro-hangup", daemon=True
        ).start()

    def _stop_and_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stop_system(release=True)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.exit)
        if not self._in_run:
            return  # under run_test: the test's event loop ends the app
        # With the terminal gone, Textual's exit can block for ever writing to it
        # (seen: stop_application_mode stuck on its writer queue). The jobs are
        # released by now, so leave for real unless run() returned meanwhile.
        deadline = time.monotonic() + HANGUP_EXIT_S
        while time.monotonic() < deadline:
            if self._run_returned:
                return
            time.sleep(0.05)
        os._exit(129)

    def stop_system(self, *, release: bool = True) -> None:
        """Stop the embedded System once, whoever asks first (quit, hangup, exit)."""
        with self._stop_lock:
            if self._system_stopped or self.system is None:
                self._system_stopped = True
                return
            self._system_stopped = True
        try:
            self.system.stop(release=release)
        except Exception as exc:  # a failing stop must not hide the console's exit
            self.log.error(f"System.stop failed: {exc!r}")

    def on_unmount(self) -> None:
        self.feeder.stop()
        if self._owns_system:
            self.stop_system(release=True)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        self._in_run = True
        try:
            return super().run(*args, **kwargs)
        finally:  # however the app ends, embedded workers release their jobs
            self.feeder.stop()
            if self._owns_system:
                self.stop_system(release=True)
            self._run_returned = True

    def system_snapshot(self) -> SystemSnapshot | None:
        if self.system is None:
            return None
        now = time.monotonic()
        if now - self._snapshot_at > 0.25:
            try:
                self._snapshot = self.system.snapshot()
            except Exception:
                self._snapshot = None
            self._snapshot_at = now
        return self._snapshot

    @work(thread=True, exclusive=True, group="look-at-root", exit_on_error=False)
    def look_at_root(self) -> None:
        """run/workers/ and the manager lock: every worker on the root, local or remote."""
        seen: list[WorkerSeen] = []
        mgr: ManagerStatus | None = None
        try:
            seen = workers_seen(self.root)
            holder = current_manager(self.root)
        except OSError:  # run/ unreadable for a moment: the next look tells
            pass
        else:
            if holder is None:
                mgr = ManagerStatus("none", None, None, None, None)
            else:
                mgr = ManagerStatus("elsewhere", str(holder), holder.since, None, None)
        with contextlib.suppress(RuntimeError):  # the app is gone meanwhile
            self.call_from_thread(self._looked, seen, mgr)

    def _looked(self, seen: list[WorkerSeen], mgr: ManagerStatus | None) -> None:
        self.seen_workers, self.seen_manager = seen, mgr
        if not self._looked_once:
            self._looked_once = True
            self._redraw()

    def workers_of_root(self) -> list[WorkerSeen]:
        """Every worker on the root (live first); this console's own from its System, which
        knows them before their status files say so."""
        by_name = {w.name: w for w in self.seen_workers}
        snap = self.system_snapshot() if not self._system_stopped else None
        for w in snap.workers if snap is not None else ():
            by_name[w.name] = WorkerSeen(
                w.name, w.state, True, w.job, w.attempt, w.since, w.jobs_done, host(), w.passing
            )
        return live_first(list(by_name.values()))

    def action_pause(self) -> None:
        if self.system is None:
            return
        if self.system.paused:
            self.system.resume()
            self.notify("workers resumed: claiming jobs again")
        else:
            self.system.pause()
            self.notify("workers paused: running jobs go on, nothing new is claimed")
        self._snapshot_at = 0.0
        self._redraw()

    def busy_workers(self) -> int:
        snap = self.system_snapshot() if not self._system_stopped else None
        if snap is None:
            return 0
        return sum(1 for w in snap.workers if w.state == "busy")

    def action_quit_farro(self) -> None:
        if self.system is None or self._system_stopped:
            self.exit()
            return
        self._snapshot_at = 0.0
        busy = self.busy_workers()
        if busy == 0:
            self.quit_with(release=True)
            return

        def chosen(choice: str | None) -> None:
            if choice == "finish":
                self.notify("waiting for running jobs to finish…", timeout=60)
                self.quit_with(release=False)
            elif choice == "release":
                self.notify("releasing running jobs…")
                self.quit_with(release=True)

        self.push_screen(QuitScreen(busy), chosen)

    @work(thread=True, group="quit")
    def quit_with(self, *, release: bool) -> None:
        self.quitting = True
        self.stop_system(release=release)
        self.call_from_thread(self.exit)
