"""Publishing staged jobs into incoming/, and finishing a batch a crash cut short.

One job is one rename, atomic already. Several jobs are several renames, so
:func:`publish` first records an intent (``tmp/batch.<unique>.json``, flocked while
its creator lives); if the creator dies between two renames, :func:`finish_batches`
(run by ``fsck --repair`` and by the manager) rolls the batch forward instead of
leaving half of it published (docs/spec.md §5).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from farro_core import audit, crash, fs, locks
from farro_core.envelope import Lifecycle, Prompt, load_lifecycle, load_prompt
from farro_core.errors import AlreadyExists, Corrupt, DurabilityError, FarroError
from farro_core.ids import check_id
from farro_core.root import QUEUES, Root
from farro_core.transitions import Status

#: a staged job: its directory in tmp/, its prompt and its first lifecycle
Staged = tuple[Path, Prompt, Lifecycle]


def _created(lc: Lifecycle, reason: str | None = None) -> dict[str, Any]:
    return audit.record(
        job=lc.id,
        frm=None,
        to=Status.QUEUED,
        actor="creator",
        worker=None,
        attempt=0,
        revision=1,
        reason=reason or lc.reason,
        event="created",
        ts=lc.created_at,
    )


def _announce(root: Root, lc: Lifecycle, reason: str | None = None) -> None:
    crash.point("create.published")  # visible and queued, only the audit line is missing
    audit.append(root, _created(lc, reason))


def publish(root: Root, staged: list[Staged]) -> None:
    """Move staged job dirs into incoming/: all of them, or recovery does the rest after a crash."""
    _check_free(root, [prompt.id for _, prompt, _ in staged])
    if len(staged) == 1:
        fs.move(staged[0][0], root.incoming / staged[0][1].id)  # one rename: atomic already
        _announce(root, staged[0][2])
        return
    # Several renames: record the intent first, so a crash between two of them is
    # rolled forward by recovery (finish_batches) instead of leaving half a batch.
    fd, name = write_intent(root, staged)
    try:
        crash.point("create.intent_written")  # nothing published; recovery publishes all
        try:
            _publish_all(root, staged)
        except BaseException as exc:
            raise BatchCommitted(
                f"batch interrupted after its intent was recorded ({exc}); "
                "`farro fsck --repair` or the manager publishes the rest"
            ) from exc
        os.unlink(root.tmp / name)
        fs.fsync_dir(root.tmp)
    finally:
        os.close(fd)  # drops the flock that tells recovery we are alive


def _check_free(root: Root, ids: list[str]) -> None:
    """Refuse an id given twice, or one that some queue holds already."""
    seen: set[str] = set()
    if len(ids) == 1:
        for q in QUEUES:
            if os.path.lexists(root.path / q / ids[0]):
                raise AlreadyExists(f"job {ids[0]} exists already ({q}/)")
        return
    fds = [fs.open_dir(root.path / q) for q in QUEUES]
    try:
        for job_id in ids:
            if job_id in seen:  # else the first copy would be published, then the batch fail
                raise AlreadyExists(f"job {job_id} appears twice in one batch")
            seen.add(job_id)
            for q, qfd in zip(QUEUES, fds, strict=True):
                try:
                    os.stat(job_id, dir_fd=qfd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                raise AlreadyExists(f"job {job_id} exists already ({q}/)")
    finally:
        for qfd in fds:
            os.close(qfd)


def _publish_all(root: Root, staged: list[Staged]) -> None:
    """Rename every stage into incoming/, auditing each; then fsync both directories once.

    No fsync per rename: the intent rolls a torn batch forward, and both
    directories are fsynced before the intent goes. Directory descriptors and
    one open log serve the whole batch: no path is walked per job.
    """
    tmp_fd = fs.open_dir(root.tmp)
    try:
        in_fd = fs.open_dir(root.incoming)
        try:
            log = audit.open_log(root)
            try:
                for i, (stage, prompt, lc) in enumerate(staged):
                    fs.rename_noreplace_at(tmp_fd, stage.name, in_fd, prompt.id)
                    crash.point("create.published")  # visible and queued, only unaudited
                    audit.write(log, _created(lc))
                    if i == 0:
                        crash.point("create.batch_partial")  # recovery publishes the rest
            finally:
                os.close(log)
            fs.fsync(in_fd)
            fs.fsync(tmp_fd)
        finally:
            os.close(in_fd)
    finally:
        os.close(tmp_fd)


class BatchCommitted(DurabilityError):
    """A batch failed after its intent was durable: it will be completed, not undone."""


BATCH_PREFIX = "batch."


def write_intent(root: Root, staged: list[Staged]) -> tuple[int, str]:
    """Create ``tmp/batch.<unique>.json`` listing the staged jobs, flocked while we publish.

    The flock is taken before the content is written: recovery skips a locked intent
    (its creator is alive) and ignores an unlocked one it cannot parse (its creator
    died before the batch was committed, so nothing of it was published).
    """
    name = f"{BATCH_PREFIX}{fs.unique_suffix()}.json"
    fd = os.open(root.tmp / name, fs.O_CREATE, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        body = {"jobs": [{"stage": st.name, "id": p.id} for st, p, _ in staged]}
        fs.write_all(fd, json.dumps(body).encode())
        fs.fsync(fd)
        fs.fsync_dir(root.tmp)
    except BaseException:
        os.close(fd)
        with suppress(OSError):
            os.unlink(root.tmp / name)
        raise
    return fd, name


def unfinished_batches(root: Root) -> list[str]:
    """Intents in tmp/ whose creator is gone (read-only: for a dry-run fsck)."""
    out = []
    for name in _intents(os.listdir(root.tmp)):
        try:
            fd = os.open(
                root.tmp / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            )
        except OSError:
            continue
        try:
            if locks.try_flock_fd(fd):
                out.append(name)
        finally:
            os.close(fd)
    return out


def _intents(names: Iterable[str]) -> list[str]:
    """The batch intents among the names in tmp/, in name order."""
    return sorted(n for n in names if n.startswith(BATCH_PREFIX) and n.endswith(".json"))


def finish_batches(root: Root) -> list[str]:
    """Publish what is left of every batch whose creator died while publishing it.

    Run by ``fsck --repair`` and by the manager. Returns the ids it published.
    """
    published: list[str] = []
    try:
        entries = [e.name for e in os.scandir(root.tmp)]
    except FileNotFoundError:
        return published
    for name in _intents(entries):
        try:
            fd = os.open(root.tmp / name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if not locks.try_flock_fd(fd):
                continue  # its creator is alive and publishing
            try:
                body = fs.read_json(root.tmp / name)
                items = [(str(i["stage"]), check_id(str(i["id"]))) for i in body["jobs"]]
            except (ValueError, KeyError, TypeError, OSError, FarroError):
                continue  # torn: written before the batch was committed; the tmp/ sweep
                # quarantines it with its staging dirs after an hour
            published += _roll_forward(root, items)
            os.unlink(root.tmp / name)
            fs.fsync_dir(root.tmp)
        finally:
            os.close(fd)
    return published


def _roll_forward(root: Root, items: list[tuple[str, str]]) -> list[str]:
    out = []
    for stage_name, job_id in items:
        stage = root.tmp / stage_name
        if "/" in stage_name or not os.path.isdir(stage) or os.path.islink(stage):
            continue  # published before the crash (or not ours to touch)
        if any(os.path.lexists(root.path / q / job_id) for q in QUEUES):
            continue
        try:
            lc = _complete(stage, job_id)
        except (Corrupt, OSError, ValueError):
            continue  # an incomplete stage was never part of a committed batch
        fs.move(stage, root.incoming / job_id)
        _announce(root, lc, f"{lc.reason} (batch finished by recovery)")
        out.append(job_id)
    return out


def _complete(stage: Path, job_id: str) -> Lifecycle:
    """The staged job's lifecycle, if both its files are there and name this job."""
    dfd = fs.open_dir(stage)
    try:
        lc = load_lifecycle(fs.read_at(dfd, "job.json"), f"{job_id}/job.json")
        prompt = load_prompt(fs.read_at(dfd, "prompt.json"), f"{job_id}/prompt.json")
    finally:
        os.close(dfd)
    if lc.id != job_id or prompt.id != job_id:
        raise Corrupt(f"{stage.name} holds another job than {job_id}")
    return lc
