"""The audit log: one JSON object per line, appended after every job.json commit.

Appends use one ``write`` on an ``O_APPEND`` descriptor, which the kernel
serialises, so several processes can log to one file without a lock. It is not
fsynced: job.json is the truth, and ``fsck`` writes a ``recovered`` line for any
revision the log lacks after a crash.
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from farro_core import fs
from farro_core.bounded import loads_json
from farro_core.clock import utcnow
from farro_core.envelope import Lifecycle
from farro_core.root import Root

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def record(
    *,
    job: str,
    frm: str | None,
    to: str | None,
    actor: str,
    worker: str | None,
    attempt: int | None,
    revision: int,
    reason: str,
    event: str = "transition",
    ts: datetime | None = None,
) -> dict[str, Any]:
    return {
        "ts": (ts or utcnow()).isoformat().replace("+00:00", "Z"),
        "event": event,
        "job": job,
        "from": frm,
        "to": to,
        "actor": actor,
        "worker": worker,
        "attempt": attempt,
        "revision": revision,
        "reason": reason,
    }


def record_of(
    lc: Lifecycle,
    *,
    frm: str | None,
    actor: str,
    worker: str | None,
    reason: str,
    event: str = "transition",
    ts: datetime | None = None,
) -> dict[str, Any]:
    """A record that ``lc`` now stands where it does (its status, attempt and revision)."""
    return record(
        job=lc.id,
        frm=frm,
        to=lc.status,
        actor=actor,
        worker=worker,
        attempt=lc.attempt,
        revision=lc.revision,
        reason=reason,
        event=event,
        ts=ts,
    )


def note(
    root: Root,
    lc: Lifecycle,
    *,
    actor: str,
    reason: str,
    event: str,
    ts: datetime | None = None,
) -> None:
    """Log an event about a job that moves it nowhere (from == to): a record, not a transition."""
    rec = record_of(lc, frm=lc.status, actor=actor, worker=None, reason=reason, event=event, ts=ts)
    append(root, rec)


def recovered(root: Root, lc: Lifecycle, actor: str) -> None:
    """Record a revision that a crash kept out of the log, found by ``actor``."""
    reason = f"recovered: {lc.reason}"
    append(
        root, record_of(lc, frm=None, actor=actor, worker=None, reason=reason, event="recovered")
    )


def append(root: Root, rec: dict[str, Any]) -> None:
    fd = open_log(root)
    try:
        write(fd, rec)
    finally:
        os.close(fd)


def open_log(root: Root) -> int:
    """The log opened for appending, for a caller with many records (a batch) to :func:`write`."""
    return os.open(root.audit_file, _FLAGS, 0o600)


def write(fd: int, rec: dict[str, Any]) -> None:
    """Append one record to a log opened by :func:`open_log`: one ``write``, one line."""
    os.write(fd, (json.dumps(rec, separators=(",", ":")) + "\n").encode())


#: an audit record is a few hundred bytes; a longer "line" is damage, skipped unread
MAX_LINE = 64 << 10
_CHUNK = 1 << 20


def read(root: Root, job: str | None = None) -> Iterator[dict[str, Any]]:
    """Every record (of one job), oldest first, in bounded memory whatever the file holds.

    A torn last line, a line that is not a bounded JSON object, and a line longer
    than :data:`MAX_LINE` (a file of zeros, say) are skipped. The log is opened as
    every file under a root is (:func:`farro_core.fs.open_read`): a FIFO or a
    symlink in its place is not read.
    """
    needle = f'"job":"{job}"'.encode() if job else None
    try:
        fd = fs.open_read(None, root.audit_file)
    except FileNotFoundError:
        return
    except ValueError:
        return  # not a regular file: fsck and the operator see it, readers see no history
    try:
        for line in _lines(fd):
            if needle is not None and needle not in line:
                continue
            try:
                rec = loads_json(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec
    finally:
        os.close(fd)


def tail(root: Root, job: str, limit: int = 10_000) -> tuple[list[dict[str, Any]], int]:
    """The last ``limit`` records of one job, and how many earlier ones were left out:
    a log however long is shown in bounded memory."""
    kept: deque[dict[str, Any]] = deque(maxlen=limit)
    total = 0
    for rec in read(root, job):
        if rec.get("job") == job:
            kept.append(rec)
            total += 1
    return list(kept), total - len(kept)


def _lines(fd: int) -> Iterator[bytes]:
    """Complete lines of at most :data:`MAX_LINE` bytes, read a chunk at a time."""
    buf = b""
    skipping = False  # inside an overlong line: drop bytes up to its newline
    while chunk := os.read(fd, _CHUNK):
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if not skipping:
                yield buf[start:end]
            skipping = False
            start = end + 1
        buf = buf[start:]
        if len(buf) > MAX_LINE:
            buf, skipping = b"", True
