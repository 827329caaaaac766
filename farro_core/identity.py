"""Who holds a claim: enough to tell a live worker from a dead one, even across a reboot.

The claim records host, boot id, pid and the process start time, so a reused pid
is never mistaken for the worker and never receives a signal meant for it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache


@cache
def host() -> str:
    return socket.gethostname()


@cache
def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def pid_started_at(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = raw[raw.rindex(b")") + 2 :].split()
    return int(fields[19])


def same_process(pid: int, started_at: int | None, host_name: str, boot: str) -> bool:
    """True only when ``pid`` on this host and boot is still the very process recorded."""
    if host_name != host() or boot != boot_id() or started_at is None:
        return False
    return pid_started_at(pid) == started_at


@dataclass(frozen=True)
class WorkerIdentity:
    name: str
    host: str
    boot_id: str
    pid: int
    pid_started_at: int | None

    @classmethod
    def current(cls, name: str | None = None) -> WorkerIdentity:
        pid = os.getpid()
        return cls(
            name=name or f"{host()}:{pid}",
            host=host(),
            boot_id=boot_id(),
            pid=pid,
            pid_started_at=pid_started_at(pid),
        )
