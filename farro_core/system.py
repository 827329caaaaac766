"""The System: one manager (or its hot standby) and N agent workers, as one component.

The console, headless mode (``farro-tui --workers-only``) and the tests all run
FARRO through this one object: built from settings, started and stopped as a
whole, restartable in the same process. Nothing here relies on atexit or
interpreter shutdown hooks: whoever starts a System stops it (a clean stop
leaves no job in-progress), and a process that dies without stopping leaves
only free claim locks, which the next manager's watchdog turns into stale jobs.

One watcher thread (watchfiles, non-recursive, on incoming/ and inbox/) turns
file events into wake-ups; events are only hints, and workers and the manager
rescan on their own timers, so a missed event costs latency, never a job. The
watch is registered before :meth:`System.start` returns, so an event made after
that is never missed.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from farro_core import doctor
from farro_core.fsclock import HostClock
from farro_core.identity import host, name_part
from farro_core.manager import Manager, ManagerStatus, current_manager
from farro_core.root import Root
from farro_core.settings import Settings

if TYPE_CHECKING:
    from watchfiles._rust_notify import RustNotify

    from farro_core.worker import Worker, WorkerStatus

__all__ = ["ManagerStatus", "System", "SystemSnapshot"]

log = logging.getLogger("farro.system")

_systems = itertools.count()


@dataclass(frozen=True)
class SystemSnapshot:
    manager: ManagerStatus
    workers: tuple[WorkerStatus, ...]
    paused: bool
    running: bool
    #: each host's clock minus the file system's, as last recorded (run/clocks/)
    clocks: tuple[HostClock, ...] = ()
    #: this host's, when measured
    skew_s: float | None = None
    skew_warn_s: float = 5.0


class System:
    """A manager (when ``manager``) and ``workers`` workers (default: settings.workers)."""

    def __init__(
        self,
        root: Root,
        *,
        workers: int | None = None,
        manager: bool = True,
        settings: Settings | None = None,
    ) -> None:
        self.root = root
        self.settings = settings or root.settings
        self.n_workers = self.settings.workers if workers is None else workers
        if self.n_workers < 0:
            raise ValueError("workers must be >= 0")
        self.with_manager = manager
        n = next(_systems)
        # unique across hosts and processes, and across Systems of one process
        self._prefix = f"{name_part(host())}-{os.getpid()}" + (f"-s{n}" if n else "")
        self._lock = threading.RLock()
        self._workers: list[Worker] = []
        self._manager: Manager | None = None
        self._watcher: threading.Thread | None = None
        self._stop_watch = threading.Event()
        self._paused = False
        self._running = False

    @property
    def worker_names(self) -> tuple[str, ...]:
        return tuple(f"{self._prefix}-w{i}" for i in range(self.n_workers))

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the manager (or standby), the workers and the watcher. Idempotent.

        Raises :class:`~farro_core.errors.Refused` where ``farro doctor`` finds the
        root's file system unsafe (locks that do not exclude), unless allowed.
        """
        from farro_core.worker import Worker

        with self._lock:
            if self._running:
                return
            if self.n_workers or self.with_manager:
                doctor.require_safe(self.root, self.settings)  # refuses an unsafe fs
            self._running = True
            try:
                self._stop_watch.clear()
                notify = self._open_watch()
                if notify is not None:
                    self._watcher = threading.Thread(
                        target=self._watch, args=(notify,), name="farro-watcher", daemon=True
                    )
                    self._watcher.start()
                if self.with_manager:
                    self._manager = Manager(self.root, self.settings)
                    self._manager.start()
                self._workers = [
                    Worker(self.root, name, settings=self.settings) for name in self.worker_names
                ]
                for w in self._workers:
                    if self._paused:
                        w.pause()
                    w.start()
            except BaseException:
                self._stop_locked(release=True, grace_s=0)
                raise
            n = len(self._workers)
            log.info(
                "started: %d worker%s; %s",
                n,
                "" if n == 1 else "s",
                "the manager role is taken when free" if self.with_manager else "no manager",
            )

    def stop(self, *, release: bool = True, grace_s: float | None = None) -> None:
        """Stop claiming; then, per worker, a grace and release (or wait for) its job.

        ``release=True`` gives running attempts ``grace_s`` (default
        shutdown_grace_s) and then puts them back in the queue; ``release=False``
        waits for them to finish. Either way nothing is left in-progress.
        """
        with self._lock:
            if self._running:
                self._stop_locked(release=release, grace_s=grace_s)

    def _stop_locked(self, *, release: bool, grace_s: float | None) -> None:
        workers = list(self._workers)  # kept listed while they stop, for snapshots
        errors: list[BaseException] = []

        def stop_one(w: Worker) -> None:
            try:
                w.stop(release=release, grace_s=grace_s)
            except BaseException as exc:
                errors.append(exc)
                log.exception("worker did not stop cleanly")

        # in parallel, so N running attempts share one grace instead of N in a row
        threads = [threading.Thread(target=stop_one, args=(w,), name="farro-stop") for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._workers = []
        if self._manager is not None:
            self._manager.stop()
            self._manager = None
        self._stop_watch.set()
        if self._watcher is not None:
            self._watcher.join(10)
            self._watcher = None
        self._running = False
        log.info(
            "stopped%s", f" (workers that failed to stop cleanly: {len(errors)})" if errors else ""
        )

    def restart(self) -> None:
        """Stop (releasing running jobs) and start again, in this process."""
        with self._lock:
            self.stop()
            self.start()

    def pause(self) -> None:
        """Workers stop claiming; running attempts go on."""
        with self._lock:
            self._paused = True
            for w in self._workers:
                w.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            for w in self._workers:
                w.resume()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        return self._running

    def snapshot(self) -> SystemSnapshot:
        """Never blocks, not even while a stop waits out its grace (the console polls it)."""
        workers = tuple(w.status() for w in list(self._workers))
        mgr = self._manager
        running = self._running
        return SystemSnapshot(
            manager=mgr.status() if mgr is not None else self._manager_off(),
            workers=workers,
            paused=self._paused,
            running=running,
            clocks=mgr.clock.hosts if mgr is not None else (),
            skew_s=mgr.clock.skew if mgr is not None else None,
            skew_warn_s=self.settings.clock_skew_warn_s,
        )

    def _manager_off(self) -> ManagerStatus:
        try:
            other = current_manager(self.root)
        except OSError:
            other = None
        if other is None:
            return ManagerStatus("off", None, None, None, None)
        return ManagerStatus("off", str(other), other.since, None, None)

    # ------------------------------------------------------------ hints

    def _open_watch(self) -> RustNotify | None:
        """The watch on incoming/ and inbox/, registered when this returns (None: no watch).

        Not ``watchfiles.watch()``: that registers only at its first iteration, in the
        watcher thread, some time after start() returned (seconds on a busy machine, the
        thread's first act being to import watchfiles), and an event made meanwhile was
        lost until the next rescan. RustNotify adds its inotify watches (or falls back
        to polling) before its constructor returns.
        """
        try:
            from watchfiles._rust_notify import RustNotify

            return RustNotify(
                [str(self.root.incoming), str(self.root.inbox)],
                False,  # debug
                False,  # force_polling
                300,  # poll_delay_ms, if it has to poll
                False,  # recursive
                False,  # ignore_permission_denied
            )
        except Exception:
            log.exception("no file watcher; falling back to periodic rescans")
            return None

    def _watch(self, notify: RustNotify) -> None:
        """File events -> wake-ups. Runs until stop; a failing watcher only costs latency."""
        from watchfiles import Change

        incoming, inbox = str(self.root.incoming), str(self.root.inbox)
        try:
            with notify:
                while True:
                    # 50 ms debounce, 5 ms steps, no timeout: a timeout's return clears
                    # the changes, and could drop one that came in just then
                    changes = notify.watch(50, 5, 0, self._stop_watch)
                    if changes == "stop":
                        return
                    if isinstance(changes, str):
                        continue  # "signal" is for the main thread only
                    parents = {
                        os.path.dirname(path)
                        for change, path in changes
                        if change != Change.deleted
                    }
                    if incoming in parents:
                        for w in list(self._workers):
                            w.wake()
                    if inbox in parents and self._manager is not None:
                        self._manager.wake()
        except Exception:
            log.exception("file watcher failed; falling back to periodic rescans")
