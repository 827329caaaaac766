"""The audit log: one JSON object per line, appended after every job.json commit.

Appends use one ``write`` on an ``O_APPEND`` descriptor, which the kernel
serialises, so several processes can log to one file without a lock. It is not
fsynced: job.json is the truth, and ``fsck`` writes a ``recovered`` line for any
revision the log lacks after a crash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from farro_core.envelope import Lifecycle, utcnow
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


def recovered(root: Root, lc: Lifecycle, actor: str) -> None:
    """Record a revision that a crash kept out of the log, found by ``actor``."""
    append(
        root,
        record(
            job=lc.id,
            frm=None,
            to=lc.status,
            actor=actor,
            worker=None,
            attempt=lc.attempt,
            revision=lc.revision,
            reason=f"recovered: {lc.reason}",
            event="recovered",
        ),
    )


def append(root: Root, rec: dict[str, Any]) -> None:
    line = (json.dumps(rec, separators=(",", ":")) + "\n").encode()
    fd = os.open(root.audit_file, _FLAGS, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(root: Root, job: str | None = None) -> Iterator[dict[str, Any]]:
    """Every record (of one job), oldest first; a torn last line is skipped."""
    needle = f'"job":"{job}"'.encode() if job else None
    try:
        fd = os.open(root.audit_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    with os.fdopen(fd, "rb") as fh:
        for line in fh:
            if needle is not None and needle not in line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec
