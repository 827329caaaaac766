"""flock(2) locks opened relative to a job directory's descriptor.

Why not ``filelock`` for the per-job locks: filelock 4.x recreates a missing
parent directory when it opens a lock path. A job directory moves (incoming/ ->
active/ -> done/) while other processes wait on its locks, so a path-based lock
would leave empty ghost job directories behind. Opening the lock file with
``openat(dir_fd, O_NOFOLLOW)`` pins the lock to the directory we looked at, and
the lock file travels with the directory, so holding it stays meaningful after
the move. ``filelock`` is still used for fixed paths (``run/manager.lock``).

The claim registry records the claim locks this process holds. flock conflicts
between two descriptors even inside one process, so probing a lock that a thread
of ours holds would report "busy" correctly, but the console runs workers and the
watchdog in one process and must never take a claim lock out from under its own
worker for a probe: it asks the registry first.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from dataclasses import dataclass, field

from farro_core.errors import Refused

_O_LOCK = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class Flock:
    """A held exclusive flock. Release it exactly once."""

    fd: int
    name: str
    released: bool = field(default=False)

    def release(self) -> None:
        if not self.released:
            self.released = True
            try:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)


def try_lock(dir_fd: int, name: str) -> Flock | None:
    """Take ``name`` (in ``dir_fd``) without blocking; ``None`` when another holder has it."""
    fd = os.open(name, _O_LOCK, 0o600, dir_fd=dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return Flock(fd, name)


def try_flock_fd(fd: int) -> bool:
    """Take an exclusive flock on an open descriptor without blocking (closing drops it)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock(dir_fd: int, name: str, timeout: float = 10.0) -> Flock:
    """Take ``name`` waiting at most ``timeout`` seconds.

    The commit lock is held for milliseconds, so waiting polls with a short
    back-off; a bounded wait means a stopped (SIGSTOP) holder makes callers fail
    with a clear error instead of hanging for ever.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        held = try_lock(dir_fd, name)
        if held is not None:
            return held
        if time.monotonic() >= deadline:
            raise Refused(f"{name} is held by another process for over {timeout:g}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def is_free(dir_fd: int, name: str) -> bool:
    """Probe a lock: free when nobody holds it (a missing lock file is free too)."""
    try:
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops a lock the probe may have won
    return True


class ClaimRegistry:
    """The claim locks held by this process, keyed by (root, job id, attempt)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str, int], Flock] = {}

    def add(self, key: tuple[str, str, int], held: Flock) -> None:
        with self._lock:
            self._held[key] = held

    def holds(self, key: tuple[str, str, int]) -> bool:
        with self._lock:
            return key in self._held

    def release(self, key: tuple[str, str, int]) -> None:
        with self._lock:
            held = self._held.pop(key, None)
        if held is not None:
            held.release()

    def keys(self) -> list[tuple[str, str, int]]:
        with self._lock:
            return list(self._held)


CLAIMS = ClaimRegistry()


def claim_lock_name(attempt: int) -> str:
    return f".claim-{attempt}.lock"


COMMIT_LOCK = ".commit.lock"
