"""Who holds a claim: enough to tell a live worker from a dead one, even across a reboot.

The claim records host, boot id, pid and the process start time, so a reused pid
is never mistaken for the worker and never receives a signal meant for it.

The host name is the kernel's, or ``FARRO_HOSTNAME`` when set (containers often
share or randomise their host names). It is data, not a name FARRO trusts:
:func:`name_part` turns any host name into a piece of a valid worker name.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from functools import cache

HOSTNAME_VAR = "FARRO_HOSTNAME"
_NAME_PART_MAX = 48
_UNSAFE = re.compile(r"[^A-Za-z0-9_.@-]+")


@cache
def host() -> str:
    override = os.environ.get(HOSTNAME_VAR)
    return override if override is not None else socket.gethostname()


def operator() -> str:
    """The person behind this process, as the audit names them: the account's name.

    One answer for the CLI, the console and job creation alike, so the audit never
    names one person two ways. Not $USER (it can say anything); the uid when the
    account has no name (a container's arbitrary uid).
    """
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def name_part(host_name: str) -> str:
    """``host_name`` as the start of a worker name: ``[A-Za-z0-9][A-Za-z0-9_.@-]*``, at
    most 48 characters. A name that had to change gets a hash of the original, so two
    hosts whose names differ only in unsafe characters still get different names."""
    safe = _UNSAFE.sub("-", host_name).strip("-_.@")
    if safe == host_name and safe and len(safe) <= _NAME_PART_MAX:
        return safe
    digest = hashlib.sha256(host_name.encode(errors="surrogateescape")).hexdigest()[:8]
    kept = safe[: _NAME_PART_MAX - len(digest) - 1].rstrip("-_.@")
    return f"{kept}-{digest}" if kept else f"host-{digest}"


@cache
def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return "unknown"


def proc_stat(pid: int) -> list[bytes] | None:
    """/proc/PID/stat from field 3 (state) on, or None when the process is gone.

    The command name may contain spaces and parentheses: split after the last ')'.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw[raw.rindex(b")") + 2 :].split()


def pid_started_at(pid: int) -> int | None:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fields = proc_stat(pid)
    return None if fields is None else int(fields[19])


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
            name=name or f"{name_part(host())}:{pid}",
            host=host(),
            boot_id=boot_id(),
            pid=pid,
            pid_started_at=pid_started_at(pid),
        )
