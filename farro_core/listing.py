"""Cheap read-only summaries of jobs for listings (``farro ls``, the console).

A listing reads job.json and prompt.json with plain ``json`` and no model
validation: it must stay fast over thousands of jobs, and an unreadable job is
shown as such rather than failing the whole listing (``fsck`` deals with it).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from farro_core import fs
from farro_core.root import QUEUES, Root
from farro_core.transitions import Status

_STATUSES = frozenset(s.value for s in Status)

# prompt.json never changes: the parts a listing shows are cached per job.
_prompt_parts: dict[tuple[str, str, str], tuple[str, int, int, float, dict[str, str]]] = {}


@dataclass(frozen=True, slots=True)
class JobRow:
    id: str
    queue: str
    status: str  # "corrupt" when unreadable
    title: str
    attempt: int
    max_attempts: int
    attempt_base: int
    priority: int
    timeout_s: float
    revision: int
    worker: str | None
    claimed_at: str | None
    created_at: str
    updated_at: str
    reason: str
    verdict: str | None
    labels: dict[str, str] = field(default_factory=dict)


def read_row(
    root: Root, queue: str, job_id: str, statuses: Collection[str] | None = None
) -> JobRow | None:
    """The row of one job, or None if it is gone (moved or quarantined meanwhile) or,
    given ``statuses``, readable but in another status: then prompt.json is not read,
    which halves the cost of listing one status out of a big done/."""
    try:
        dfd = fs.open_dir(root.path / queue / job_id)
    except FileNotFoundError:
        return None
    except OSError:
        return _corrupt(queue, job_id, "not a real directory")
    try:
        try:
            lc = fs.read_json_at(dfd, "job.json")
            status = lc.get("status") if isinstance(lc, dict) else None
            if statuses is not None and status in _STATUSES and status not in statuses:
                return None
            # keyed by creation too: a reused id (quarantined, then created again) is new
            key = (root.key, job_id, str(lc.get("created_at", "")))
            parts = _prompt_parts.get(key)
            if parts is None:
                p = fs.read_json_at(dfd, "prompt.json")
                parts = (
                    str(p.get("title", "")),
                    int(p.get("max_attempts", 1)),
                    int(p.get("priority", 0)),
                    float(p.get("timeout_s", 0)),
                    dict(p.get("labels") or {}),
                )
                _prompt_parts[key] = parts
        except FileNotFoundError:
            return (
                None
                if not os.path.lexists(root.path / queue / job_id)
                else _corrupt(queue, job_id, "missing job.json or prompt.json")
            )
        except (ValueError, TypeError, OSError) as exc:
            return _corrupt(queue, job_id, str(exc))
    finally:
        os.close(dfd)
    title, max_attempts, priority, timeout_s, labels = parts
    claim = lc.get("claim") or {}
    result = lc.get("result") or {}
    return JobRow(
        id=job_id,
        queue=queue,
        status=str(lc.get("status", "corrupt")),
        title=title,
        attempt=int(lc.get("attempt", 0)),
        max_attempts=max_attempts,
        attempt_base=int(lc.get("attempt_base", 0)),
        priority=priority,
        timeout_s=timeout_s,
        revision=int(lc.get("revision", 0)),
        worker=claim.get("worker"),
        claimed_at=claim.get("claimed_at"),
        created_at=str(lc.get("created_at", "")),
        updated_at=str(lc.get("updated_at", "")),
        reason=str(lc.get("reason", "")),
        verdict=result.get("verdict"),
        labels=labels,
    )


def _corrupt(queue: str, job_id: str, why: str) -> JobRow:
    return JobRow(
        id=job_id,
        queue=queue,
        status="corrupt",
        title=f"(unreadable: {why})",
        attempt=0,
        max_attempts=0,
        attempt_base=0,
        priority=0,
        timeout_s=0,
        revision=0,
        worker=None,
        claimed_at=None,
        created_at="",
        updated_at="",
        reason=why,
        verdict=None,
    )


def scan(
    root: Root, queues: Iterable[str] = QUEUES, statuses: Collection[str] | None = None
) -> Iterator[JobRow]:
    """Rows of every job in ``queues`` (in ``statuses``, plus unreadable ones), in id
    (creation) order within each queue; each job once, even if it moved on to a queue
    listed later while we read (the row of where it was first seen)."""
    listed: set[str] = set()
    for q in queues:
        for job_id in sorted(root.ids(q)):
            if job_id in listed:
                continue
            row = read_row(root, q, job_id, statuses)
            if row is not None:
                listed.add(job_id)
                yield row
