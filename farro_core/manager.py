"""The manager of a root, or its hot standby.

At most one process manages a root: whoever holds ``run/manager.lock`` (an
flock, so the kernel frees it when the holder dies, however it dies). Every
System tries the lock without blocking; one that finds it taken runs its
workers without a manager, reads who holds it from ``run/manager.json``, and
tries again about every second, so a dead manager is replaced within seconds
and the manager is no single point of failure.

The holder runs two threads. The sweep thread, every ``watchdog_interval_s``:
the watchdog (stale marking and the stale policy), the processes left by this
host's dead workers and managers (:func:`procs.reap_orphans`), and once a minute tmp/
leftovers older than an hour to quarantine (fsck's rule). The inbox thread
ingests request files; it is separate because a planner may take minutes,
and staleness must never wait for a planner. With ``gc_interval_s`` set, a third
thread runs ``farro gc`` (its default selection) that often.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from farro_core import fs, fsclock, locks, procs
from farro_core.clock import utcnow
from farro_core.errors import FarroError
from farro_core.fsck import tmp_leftovers
from farro_core.identity import boot_id, host, pid_started_at
from farro_core.inbox import ingest
from farro_core.planner import PLANNER_TIMEOUT_S, PlannerCancelled
from farro_core.quarantine import quarantine
from farro_core.root import Root
from farro_core.settings import Settings
from farro_core.watchdog import Watchdog

log = logging.getLogger("farro.manager")

#: how often a standby tries the manager lock
RETRY_S = 1.0
#: how often the holder looks for tmp/ leftovers
TMP_SWEEP_S = 60.0
MANAGER_JSON = "manager.json"

Role = Literal["here", "elsewhere", "none", "off"]


@dataclass(frozen=True)
class ManagerStatus:
    """Who manages the root, as this process sees it.

    ``here``: this process; ``elsewhere``: another process (``holder``, ``since``);
    ``none``: nobody holds the lock right now; ``off``: this System runs no manager
    (``holder`` still names the manager elsewhere, if any).
    """

    role: Role
    holder: str | None
    since: datetime | None
    last_sweep: datetime | None
    last_ingest: str | None


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    since: datetime | None

    def __str__(self) -> str:
        return f"{self.host} pid {self.pid}"


def read_holder(root: Root) -> Holder | None:
    """What ``run/manager.json`` says (the last holder; it may be gone)."""
    try:
        data = fs.read_json(root.run / MANAGER_JSON, limit=1 << 16)
        since = data.get("since")
        return Holder(
            host=str(data["host"]),
            pid=int(data["pid"]),
            since=datetime.fromisoformat(since) if isinstance(since, str) else None,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def manager_silence(root: Root, now: float | None = None) -> float | None:
    """Seconds since the manager last swept (manager.json is touched at every sweep),
    by the file system's clock (``now`` too, when given)."""
    try:
        mtime = os.stat(root.run / MANAGER_JSON, follow_symlinks=False).st_mtime
        return (fsclock.fs_now(root) if now is None else now) - mtime
    except OSError:
        return None


def lock_is_held(root: Root) -> bool:
    """Probe ``run/manager.lock`` (by this process too: flock is per open file)."""
    dfd = fs.open_dir(root.run)
    try:
        return not locks.is_free(dfd, root.manager_lock.name)
    finally:
        os.close(dfd)


def current_manager(root: Root) -> Holder | None:
    """The live manager of ``root`` (any process), or None when nobody holds the lock."""
    if not lock_is_held(root):
        return None
    return read_holder(root) or Holder(host="?", pid=0, since=None)


class Manager:
    """Takes the manager role of a root when it can, and does its work while it has it."""

    def __init__(
        self,
        root: Root,
        settings: Settings | None = None,
        *,
        retry_s: float = RETRY_S,
        planner_timeout_s: float = PLANNER_TIMEOUT_S,
    ) -> None:
        self.root = root
        self.settings = settings or root.settings
        self.retry_s = retry_s
        self.planner_timeout_s = planner_timeout_s
        self._lock = FileLock(
            root.manager_lock,
            mode=0o600,  # owner-only, whatever the umask
            preserve_lock_file=True,
            thread_local=False,
            fallback_to_soft=False,
        )
        self._holding = threading.Event()
        self._stop = threading.Event()
        self._wake_sweep = threading.Event()
        self._wake_inbox = threading.Event()
        self._threads: list[threading.Thread] = []
        self._since: datetime | None = None
        self._other: Holder | None = None
        self._last_sweep: datetime | None = None
        self._last_ingest: str | None = None
        self._warned_silent = False
        self._watchdog = Watchdog(root, self.settings)
        self.clock = fsclock.SkewMonitor(root, self.settings.clock_skew_warn_s)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, name="farro-manager", daemon=True),
            threading.Thread(target=self._run_inbox, name="farro-inbox", daemon=True),
        ]
        if self.settings.gc_interval_s is not None:
            self._threads.append(
                threading.Thread(target=self._run_gc, name="farro-gc", daemon=True)
            )
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop both threads (a running planner is killed) and give up the role."""
        self._stop.set()
        self._wake_sweep.set()
        self._wake_inbox.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = []
        self._release()

    def wake(self) -> None:
        """A hint that inbox/ changed (the periodic pass is the fallback)."""
        self._wake_inbox.set()

    def status(self) -> ManagerStatus:
        if self._holding.is_set():
            return ManagerStatus("here", _me(), self._since, self._last_sweep, self._last_ingest)
        other = self._other
        if other is not None:
            return ManagerStatus("elsewhere", str(other), other.since, None, self._last_ingest)
        return ManagerStatus("none", None, None, None, self._last_ingest)

    # ------------------------------------------------------------ the role

    def _try_take(self) -> bool:
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            return False
        self._since = utcnow()
        body = {
            "host": host(),
            "pid": os.getpid(),
            "pid_started_at": pid_started_at(os.getpid()),
            "boot_id": boot_id(),
            "since": self._since.isoformat(),
            "containment": procs.containment(self.settings.containment).as_dict(),
        }
        try:
            fs.write_json(self.root.run / MANAGER_JSON, body)
        except BaseException:
            self._lock.release()
            raise
        self._other = None
        self._holding.set()
        log.info("manager role taken for %s", self.root.path)
        return True

    def _release(self) -> None:
        if self._holding.is_set():
            self._holding.clear()
            self._lock.release()
            log.info("manager role given up for %s", self.root.path)

    def _look_elsewhere(self) -> None:
        """Note who holds the lock we failed to take; log only when that changes.

        The holder touches manager.json at every sweep. A holder that is alive but
        hung (SIGSTOP) keeps its lock, so no standby can take over: say so loudly.
        """
        holder = read_holder(self.root)  # may name the previous holder for a moment
        if holder != self._other:
            self._other = holder
            self._warned_silent = False
            if holder is not None:
                log.info(
                    "standby: %s is the manager (since %s); retrying every %gs",
                    holder,
                    holder.since.isoformat(timespec="seconds") if holder.since else "?",
                    self.retry_s,
                )
        silent = manager_silence(self.root)
        limit = max(self.settings.stale_after_s, 10 * self.settings.watchdog_interval_s)
        if holder is not None and silent is not None and silent > limit:
            if not self._warned_silent:
                self._warned_silent = True
                log.warning(
                    "the manager %s holds its lock but has not swept for %.0f s (hung?); "
                    "nobody can take over until it dies",
                    holder,
                    silent,
                )
        else:
            self._warned_silent = False

    # ------------------------------------------------------------ threads

    def _run(self) -> None:
        last_tmp = 0.0
        while not self._stop.is_set():
            self.clock.tick()  # holder and standby alike: every host records its skew
            if not self._holding.is_set():
                try:
                    took = self._try_take()
                except Exception:
                    log.exception("could not take the manager role")
                    took = False
                if not took:
                    self._look_elsewhere()
                    self._stop.wait(self.retry_s)
                    continue
                self._wake_inbox.set()
            try:
                report = self._watchdog.sweep()
                if report.stale or report.requeued:
                    self._wake_inbox.set()  # requeues may have made room in the queue
                # units (agents, checks, planners) of this host's dead workers and managers
                procs.reap_orphans(self.settings.containment)
                if time.monotonic() - last_tmp >= TMP_SWEEP_S:
                    last_tmp = time.monotonic()
                    sweep_tmp(self.root)
                self._last_sweep = utcnow()
                with contextlib.suppress(OSError):
                    os.utime(self.root.run / MANAGER_JSON, follow_symlinks=False)
            except Exception:
                log.exception("watchdog sweep failed; trying again next interval")
            self._wake_sweep.wait(self.settings.watchdog_interval_s)
            self._wake_sweep.clear()

    def _run_gc(self) -> None:
        """``farro gc`` with its default selection every ``gc_interval_s``, while managing;
        its own thread, as git may take a while and staleness must not wait for it."""
        from farro_core import gc

        interval = self.settings.gc_interval_s or 0.0
        while not self._stop.wait(interval):
            if not self._holding.is_set():
                continue
            try:
                report = gc.run(self.root)
                if report.lines:
                    log.info("gc: %s", report.summary())
            except Exception:
                log.exception("gc failed; trying again next interval")

    def _run_inbox(self) -> None:
        last = None
        waiting: set[str] = set()  # said last pass: a file stuck for long is logged once
        while not self._stop.is_set():
            self._wake_inbox.wait(
                self.settings.watchdog_interval_s if self._holding.is_set() else self.retry_s
            )
            self._wake_inbox.clear()
            if self._stop.is_set() or not self._holding.is_set():
                continue
            try:
                results = ingest(
                    self.root,
                    self.settings,
                    planner_timeout_s=self.planner_timeout_s,
                    cancel=self._stop,
                )
            except PlannerCancelled:
                continue
            except FarroError as exc:  # e.g. a refused inbox/accepted: one line, when new
                if str(exc) != last:
                    log.error("inbox pass refused: %s", exc)
                last = str(exc)
                continue
            except Exception:
                log.exception("inbox pass failed; trying again next interval")
                continue
            said, waiting = waiting, set()
            for r in results:
                text = r.describe()
                self._last_ingest = text
                if r.outcome == "waiting":
                    waiting.add(text)
                    if text != last and text not in said:
                        log.info("inbox: %s", text)
                elif r.outcome == "accepted":
                    log.info("inbox: %s", text)
                else:
                    log.warning("inbox: %s", text)
                last = text


def sweep_tmp(root: Root, now: float | None = None) -> list[Path]:
    """Finish batches whose creator died mid-publish; then tmp/ entries older than an
    hour (creates that never finished) -> quarantine."""
    from farro_core.publish import finish_batches

    for job_id in finish_batches(root):
        log.warning("%s published: its batch's creator died while publishing it", job_id)
    now = fsclock.fs_now(root) if now is None else now  # tmp/ mtimes are the server's
    moved = []
    for path, detail in tmp_leftovers(root, now):
        moved.append(quarantine(root, path, detail))
        log.warning("tmp/%s quarantined: %s", path.name, detail)
    return moved


def _me() -> str:
    return f"{host()} pid {os.getpid()}"
