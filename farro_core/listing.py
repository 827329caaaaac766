"""Cheap read-only summaries of jobs for listings (``farro ls``, the console).

A listing reads job.json and prompt.json with plain (bounded) ``json`` and no
model validation: it must stay fast over thousands of jobs. Each field it shows
is still checked for its type, so a job.json that is unreadable, or readable but
wrongly typed (``"claim": "x"``, ``[]``), is a ``corrupt`` row rather than a
failed listing (``fsck`` deals with it).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from farro_core import fs
from farro_core.lru import LRU
from farro_core.root import QUEUES, Root
from farro_core.transitions import Status

_STATUSES = frozenset(s.value for s in Status)
_T = TypeVar("_T")

# prompt.json never changes: the parts a listing shows are cached per job (on the root).
PARTS_CACHE = 250_000


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
    landed: str | None = None  # the branch ``farro land`` brought the work into
    kept: bool = False  # marked kept (``farro keep``): ``farro gc`` leaves it as it is
    # how long the agent of the current attempt ran, once it has a result: a landing
    # updates job.json later, so updated_at is no end of the run
    run_s: float | None = None


def peek_status(path: Path) -> str | None:
    """The status job.json under ``path`` names, without model validation: the cheap
    read (None when unreadable). The watchdog's scan of incoming/ uses it."""
    try:
        data = fs.read_json(path / "job.json", limit=1 << 20)
    except (OSError, ValueError):
        return None
    return _status(data)


def _status(data: object) -> str | None:
    status = data.get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) else None


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
        return corrupt_row(queue, job_id, "not a real directory")
    try:
        try:
            lc = fs.read_json_at(dfd, "job.json")
            if not isinstance(lc, dict):
                raise TypeError(f"job.json holds a {type(lc).__name__}, not an object")
            status = _status(lc)
            if statuses is not None and status in _STATUSES and status not in statuses:
                return None
            # keyed by creation too: a reused id (quarantined, then created again) is new
            key = (job_id, str(lc.get("created_at", "")))
            cache: LRU[tuple[str, str], _Parts] = root.cache("listing", PARTS_CACHE)
            parts = cache.hit(key)
            if parts is None:
                parts = _prompt_row_parts(fs.read_json_at(dfd, "prompt.json"))
                cache.put(key, parts)
            return _row(job_id, queue, lc, parts)
        except FileNotFoundError:
            return (
                None
                if not os.path.lexists(root.path / queue / job_id)
                else corrupt_row(queue, job_id, "missing job.json or prompt.json")
            )
        except (ValueError, TypeError, OSError) as exc:
            return corrupt_row(queue, job_id, " ".join(str(exc).split()))
    finally:
        os.close(dfd)


_Parts = tuple[str, int, int, float, dict[str, str]]


def job_state(root: Root, job_id: str) -> tuple[str, int]:
    """(status, attempt) of one job from job.json, cheaply; ("gone", 0) when it left the queues.

    A job that moves between being located and being read is located again (three
    tries), so a refusal can name the status the job is in now.
    """
    from farro_core.errors import NotFound

    for _ in range(3):
        try:
            path = root.locate(job_id)
        except NotFound:
            return "gone", 0
        row = read_row(root, path.parent.name, job_id)
        if row is not None:
            return row.status, row.attempt
    return "gone", 0


def _get(body: dict[str, Any], key: str, kind: type[_T], default: _T) -> _T:
    """``body[key]`` if it has the type a row needs (bool is no number), else TypeError."""
    value = body.get(key, default)
    if kind is float and type(value) is int:
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TypeError(f"{key} is a {type(value).__name__}, not a {kind.__name__}")
    return value


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} is a {type(value).__name__}, not a string")
    return value


def _prompt_row_parts(p: Any) -> _Parts:
    if not isinstance(p, dict):
        raise TypeError(f"prompt.json holds a {type(p).__name__}, not an object")
    labels = _get(p, "labels", dict, {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise TypeError("labels are not all strings")
    return (
        _get(p, "title", str, ""),
        _get(p, "max_attempts", int, 1),
        _get(p, "priority", int, 0),
        _get(p, "timeout_s", float, 0.0),
        labels,
    )


def _row(job_id: str, queue: str, lc: dict[str, Any], parts: _Parts) -> JobRow:
    """The row of a parsed job.json: every field of the type it must have, else TypeError."""
    title, max_attempts, priority, timeout_s, labels = parts
    status = _get(lc, "status", str, "")
    if status not in _STATUSES:
        raise TypeError(f"status {status!r} is not a job status")
    claim = _get(lc, "claim", dict, {}) if lc.get("claim") is not None else {}
    result = _get(lc, "result", dict, {}) if lc.get("result") is not None else {}
    landing = result.get("landed")
    kept = lc.get("kept") is not None and bool(_get(lc, "kept", dict, {}))
    attempt = _get(lc, "attempt", int, 0)
    run_s = result.get("duration_s") if result.get("attempt") == attempt else None
    if isinstance(run_s, bool) or not isinstance(run_s, (int, float)):
        run_s = None
    return JobRow(
        id=job_id,
        queue=queue,
        status=status,
        title=title,
        attempt=attempt,
        max_attempts=max_attempts,
        attempt_base=_get(lc, "attempt_base", int, 0),
        priority=priority,
        timeout_s=timeout_s,
        revision=_get(lc, "revision", int, 0),
        worker=_opt_str(claim, "worker"),
        claimed_at=_opt_str(claim, "claimed_at"),
        created_at=_get(lc, "created_at", str, ""),
        updated_at=_get(lc, "updated_at", str, ""),
        reason=_get(lc, "reason", str, ""),
        verdict=_opt_str(result, "verdict"),
        labels=labels,
        landed=_opt_str(landing, "into") if isinstance(landing, dict) else None,
        run_s=None if run_s is None else float(run_s),
        kept=kept,
    )


def corrupt_row(queue: str, job_id: str, why: str) -> JobRow:
    """The row of a job that cannot be read (``why`` says what is wrong)."""
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


def oldest_first(row: JobRow) -> tuple[float, str]:
    """Sort key of "oldest first": ``created_at``, then id; unreadable rows last.

    Not the id alone: a caller may choose its own id (``zzzz-first`` can be older
    than ``aaaa-second``).
    """
    try:
        ts = datetime.fromisoformat(row.created_at).timestamp()
    except ValueError:
        ts = float("inf")
    return (ts, row.id)


def scan(
    root: Root, queues: Iterable[str] = QUEUES, statuses: Collection[str] | None = None
) -> Iterator[JobRow]:
    """Rows of every job in ``queues`` (in ``statuses``, plus unreadable ones), oldest
    first (:func:`oldest_first`) within each queue; each job once, even if it moved on
    to a queue listed later while we read (the row of where it was first seen)."""
    listed: set[str] = set()
    for q in queues:
        rows = [
            read_row(root, q, job_id, statuses) for job_id in root.ids(q) if job_id not in listed
        ]
        for row in sorted((row for row in rows if row is not None), key=oldest_first):
            listed.add(row.id)
            yield row
