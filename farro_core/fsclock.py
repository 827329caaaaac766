"""The file system's clock: the one clock every host sharing a root agrees on.

Heartbeats are file mtimes, and the file server sets them (an NFS client's
``utime(NULL)`` asks for the server's time). Comparing such an mtime with a
host's own ``time.time()`` mixes two clocks, so a host whose clock runs a minute
ahead sees every heartbeat a minute old, and one a minute behind never sees a
dead host go silent. Instead, "now" is read from the file system too: touch a
probe file in ``run/`` and read its mtime back. Ages computed against that are
host-independent; no two hosts' local clocks are ever compared.

Each host also records its measured skew (local clock minus the file system's)
in ``run/clocks/<host>.json``, so ``farro stats`` and the console can show it
and a host whose clock drifts is noticed before anyone trusts its timestamps.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass

from farro_core import fs, humanize, identity
from farro_core.root import Root

log = logging.getLogger("farro.clock")

PROBE = "clock.probe"
CLOCKS = "clocks"
#: how often a process re-measures and records its host's skew
MEASURE_S = 30.0
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def fs_now(root: Root) -> float:
    """The file system's current time: the mtime of a probe in run/ just touched."""
    dfd = fs.open_dir(root.run)
    try:
        fd = os.open(
            PROBE,
            os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
            0o600,
            dir_fd=dfd,
        )
    finally:
        os.close(dfd)
    try:
        os.utime(fd)  # times=NULL: the file server's "now", not ours
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def measure(root: Root) -> float:
    """Skew in seconds: this host's clock minus the file system's (positive: ahead)."""
    before = time.time()
    now_fs = fs_now(root)
    after = time.time()
    return (before + after) / 2 - now_fs


def host_key(name: str) -> str:
    """A file name for a host name (hostile text): itself when plain, else a digest."""
    if _SAFE_NAME.fullmatch(name):
        return name
    return "h-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True)
class HostClock:
    """One host's last recorded skew; ``age_s`` is by the file system's clock."""

    host: str
    skew_s: float
    age_s: float | None


def record(root: Root, skew: float) -> None:
    """Write this host's skew to run/clocks/<host>.json (informational, not fsynced)."""
    clocks = root.run / CLOCKS
    with contextlib.suppress(FileExistsError):
        os.mkdir(clocks, 0o700)
    body = {"host": identity.host(), "boot_id": identity.boot_id(), "skew_s": round(skew, 3)}
    fs.write_json(clocks / f"{host_key(identity.host())}.json", body, durable=False)


def hosts(root: Root, now_fs: float | None = None) -> list[HostClock]:
    """Every host's recorded skew, sorted by host name; unreadable entries are skipped."""
    clocks = root.run / CLOCKS
    try:
        names = sorted(os.listdir(clocks))
    except OSError:
        return []
    out = []
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        path = clocks / name
        try:
            data = fs.read_json(path, limit=1 << 16)
            mtime = os.stat(path, follow_symlinks=False).st_mtime
            out.append(
                HostClock(
                    host=str(data["host"]),
                    skew_s=float(data["skew_s"]),
                    age_s=None if now_fs is None else max(0.0, now_fs - mtime),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


class SkewMonitor:
    """Measures and records this host's skew at most every :data:`MEASURE_S`; warns once
    per excursion over ``warn_s``. Call :meth:`tick` from any loop."""

    def __init__(self, root: Root, warn_s: float, every_s: float = MEASURE_S) -> None:
        self.root = root
        self.warn_s = warn_s
        self.every_s = every_s
        self.skew: float | None = None
        #: every host's recorded skew as of the last tick (for the console's workers pane)
        self.hosts: tuple[HostClock, ...] = ()
        self._last = -float("inf")
        self._warned = False
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            if time.monotonic() - self._last < self.every_s:
                return
            self._last = time.monotonic()
        try:
            before = time.time()
            now_fs = fs_now(self.root)
            skew = (before + time.time()) / 2 - now_fs
            record(self.root, skew)
            self.hosts = tuple(hosts(self.root, now_fs))
        except OSError as exc:
            log.warning("cannot measure the clock skew against %s: %s", self.root.path, exc)
            return
        self.skew = skew
        if abs(skew) > self.warn_s:
            if not self._warned:
                self._warned = True
                log.warning(
                    "this host's clock is %s %s the file system's (warn above %s, "
                    "clock_skew_warn_s): fix NTP; FARRO's liveness does not depend on it",
                    humanize.skew(abs(skew), self.warn_s),
                    "ahead of" if skew > 0 else "behind",
                    humanize.skew(self.warn_s, self.warn_s),
                )
        else:
            self._warned = False
