"""The three transactions on a job directory: create, claim, commit (docs/spec.md §5).

Read top to bottom, this file is the life of a job on disk. Each step that a
crash could interrupt carries a named crash point (:mod:`farro_core.crash`), and
the comment beside it says what a crash there leaves behind.

Why one file of ~860 lines: the three transactions share one discipline (the
job dir opened once, the commit lock, the revision check, the crash points), and
reading them side by side is how that discipline is checked. What is not a
transaction lives elsewhere: publishing a batch (publish.py), the queue's ranking
(ranking.py), the heartbeat (heartbeat.py), caches (Root.cache).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from farro_core import audit, batch, crash, fs, locks, publish, ranking
from farro_core.clock import utcnow
from farro_core.envelope import (
    SCHEMA_VERSION,
    AgentPreset,
    Claim,
    Envelope,
    JobSpec,
    Lifecycle,
    Prompt,
    Result,
    Runtime,
    default_title,
    dump,
    dump_queued,
    load_lifecycle,
    load_prompt,
    queued,
)
from farro_core.errors import (
    Conflict,
    Corrupt,
    NotFound,
    QueueFull,
    Refused,
)
from farro_core.identity import WorkerIdentity
from farro_core.ids import check_id, new_id
from farro_core.locks import CLAIMS, COMMIT_LOCK, claim_lock_name
from farro_core.lru import LRU
from farro_core.root import QUEUES, Root
from farro_core.settings import Settings
from farro_core.transitions import QUEUE_DIR, TERMINAL, Actor, Status, check

PROMPT = "prompt.json"
JOB = "job.json"
#: the heartbeat file of roots made before the claim lock carried the heartbeat: a worker
#: of that version may still touch it, so the watchdog still reads it (see heartbeat_age)
LEGACY_HEARTBEAT = "heartbeat"

# prompt.json never changes once written, so a process may keep what it parsed
# (on the root: root.cache).
PROMPT_CACHE = 20_000
ORDER_CACHE = 200_000


def _prompts(root: Root) -> LRU[str, Prompt]:
    return root.cache("prompts", PROMPT_CACHE)


def _cache_prompt(root: Root, prompt: Prompt) -> Prompt:
    _prompts(root).put(prompt.id, prompt)
    return prompt


def read_prompt(
    root: Root,
    dir_fd: int,
    job_id: str,
    created_at: datetime | None = None,
    *,
    fresh: bool = False,
) -> Prompt:
    """prompt.json, from the cache when it holds this very job.

    An id can come back (the job was quarantined, then created again by another
    process): pass the job.json ``created_at`` and a cached prompt of another
    creation is never served.
    """
    cached = None if fresh else _prompts(root).hit(job_id)
    if cached is not None and (created_at is None or cached.created_at == created_at):
        return cached
    prompt = load_prompt(_read(dir_fd, PROMPT, job_id), f"{job_id}/{PROMPT}")
    if prompt.id != job_id:
        raise Corrupt(f"{job_id}/{PROMPT} names job {prompt.id}")
    return _cache_prompt(root, prompt)


def read_lifecycle(dir_fd: int, job_id: str) -> Lifecycle:
    lc = load_lifecycle(_read(dir_fd, JOB, job_id), f"{job_id}/{JOB}")
    if lc.id != job_id:
        raise Corrupt(f"{job_id}/{JOB} names job {lc.id}")
    return lc


def _read(dir_fd: int, name: str, job_id: str) -> bytes:
    try:
        return fs.read_at(dir_fd, name)
    except FileNotFoundError:
        raise Corrupt(f"{job_id}/{name} is missing") from None
    except ValueError as exc:
        raise Corrupt(f"{job_id}/{exc}") from None


def _open_job_dir(path: Path) -> int:
    try:
        dfd = fs.open_dir(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP or exc.errno == errno.ENOTDIR:
            raise Corrupt(f"{path.name} is not a real directory (symlink or file)") from None
        raise
    try:
        check_private_dir(dfd, path.name)
    except BaseException:
        os.close(dfd)
        raise
    return dfd


def _open_following(root: Root, job_id: str, path: Path) -> tuple[int, Path]:
    """The job's dir fd and the path it was opened at, looked up again if the job moved."""
    for _ in range(5):
        try:
            return _open_job_dir(path), path
        except FileNotFoundError:
            path = root.locate(job_id)  # it moved between lookup and open
    raise NotFound(f"job {job_id} keeps moving; try again")


@contextmanager
def _job_locked(
    root: Root, env: Envelope, *, committing: bool = False
) -> Iterator[tuple[int, Path]]:
    """The job's dir fd under its commit lock, and where it is: moves happen only under it.

    ``committing``: a commit's crash point is here (annotations have none of their own).
    """
    dfd, _ = _open_following(root, env.id, env.runtime.path)
    try:
        with commit_lock(dfd):
            if committing:
                crash.point("commit.locked")  # lock freed by the kernel, nothing written
            here = where(root, env.id, dfd)
            if here is None:
                raise NotFound(f"job {env.id} left the queue (quarantined?)")
            yield dfd, here
    finally:
        os.close(dfd)


def check_private_dir(dfd: int, name: str) -> None:
    """Refuse a job dir that group or others can write (or that is not ours): like the root."""
    st = os.fstat(dfd)
    if st.st_mode & 0o022 or st.st_uid != os.geteuid():
        raise Corrupt(
            f"{name}/ is writable by group or others or not owned by you "
            f"(mode {st.st_mode & 0o7777:04o}, uid {st.st_uid}): refused, since whoever "
            "can write a job can run code as you"
        )


def _in_queues(root: Root, job_id: str, dir_fd: int) -> Iterator[tuple[Path, bool]]:
    """Each queue directory of this id, and whether it is the one open as ``dir_fd``."""
    st = os.fstat(dir_fd)
    for q in QUEUES:
        candidate = root.path / q / job_id
        try:
            cst = os.stat(candidate, follow_symlinks=False)
        except FileNotFoundError:
            continue
        yield candidate, (cst.st_dev, cst.st_ino) == (st.st_dev, st.st_ino)


def where(root: Root, job_id: str, dir_fd: int) -> Path | None:
    """The queue path of the directory open as ``dir_fd``, or None if it left the queues."""
    return next((path for path, same in _in_queues(root, job_id, dir_fd) if same), None)


def _only_in_incoming(root: Root, job_id: str, dir_fd: int) -> bool:
    """``dir_fd`` is ``incoming/<id>`` and no other queue holds a directory of this id
    (a duplicate, which the watchdog quarantines): both checks in one pass."""
    return list(_in_queues(root, job_id, dir_fd)) == [(root.incoming / job_id, True)]


def duplicate_of(root: Root, job_id: str, dir_fd: int) -> Path | None:
    """Another queue directory holding a job of this id (a copy put back by hand, say).

    A move is one rename, so a job never shows in two queues at once: a second
    directory of the same id is another job, and neither copy may run.
    """
    return next((path for path, same in _in_queues(root, job_id, dir_fd) if not same), None)


# ---------------------------------------------------------------- load


def load(root: Root, job: str | os.PathLike[str]) -> Envelope:
    """Read a job by id (or by its directory path) into an :class:`Envelope`."""
    if isinstance(job, str) and "/" not in job:
        job_id = check_id(job)
        path = root.locate(job_id)
    else:
        path = Path(os.path.abspath(job))
        job_id = check_id(path.name)
    dfd, path = _open_following(root, job_id, path)
    try:
        lc = read_lifecycle(dfd, job_id)
        prompt = read_prompt(root, dfd, job_id, lc.created_at)
        here = where(root, job_id, dfd) or path
    finally:
        os.close(dfd)
    return Envelope(prompt=prompt, lifecycle=lc, runtime=Runtime(root=root.path, path=here))


def prompt_of(root: Root, job_id: str) -> Prompt:
    """A job's prompt.json alone: what it was asked never changes, so it is read even
    when its job.json is unreadable (``farro submit --like`` needs nothing else)."""
    job_id = check_id(job_id)
    dfd, _ = _open_following(root, job_id, root.locate(job_id))
    try:
        return read_prompt(root, dfd, job_id)
    finally:
        os.close(dfd)


# ---------------------------------------------------------------- create


_NOT_COPIED = frozenset({"id", "schema_version"})


def _prompt_from_spec(
    spec: JobSpec, job_id: str, settings: Settings, created_by: str, now: datetime
) -> Prompt:
    given = spec.model_fields_set
    # the validated values themselves, not a dump of them to validate back
    fields = {k: getattr(spec, k) for k in type(spec).model_fields if k not in _NOT_COPIED}
    fields["title"] = spec.title or default_title(spec.prompt)
    if "timeout_s" not in given:
        fields["timeout_s"] = settings.timeout_s
    if "max_attempts" not in given:
        fields["max_attempts"] = settings.max_attempts
    return Prompt(
        schema_version=SCHEMA_VERSION,
        id=job_id,
        created_at=now,
        created_by=created_by,
        **fields,
    )


def create_many(
    root: Root, specs: Sequence[JobSpec], *, created_by: str | None = None
) -> list[Envelope]:
    """Create every job or none: stage all in tmp/, then publish them into incoming/.

    Safe for any number of concurrent callers: each stages under a unique name and
    the publishing rename never replaces an existing job. A spec that names its own
    id (the manager derives ids from request files) is checked against every queue
    under ``run/create.lock``, so processing a request twice creates no duplicate.
    """
    settings = root.settings
    _check_room(root, settings, len(specs))  # cheap early refusal; checked again to publish
    by = created_by or default_creator()
    start = utcnow()
    staged: list[tuple[Path, Prompt, Lifecycle]] = []
    made: list[tuple[str, str]] = []  # a batch's stages: (name in tmp/, job id)
    jobs: list[tuple[Prompt, Lifecycle]] = []
    for i, spec in enumerate(specs):
        # a microsecond apart: "oldest first" is the batch's own order, whatever its ids
        now = start + timedelta(microseconds=i)
        job_id = spec.id or new_id()
        lc = queued(job_id, f"created by {by}", now)
        jobs.append((_prompt_from_spec(spec, job_id, settings, by, now), lc))
    try:
        if len(jobs) > 1:  # written without fsyncs, then made durable at once
            batch.write_stages(root, jobs, made)
            staged = [
                (root.tmp / name, p, lc) for (name, _), (p, lc) in zip(made, jobs, strict=True)
            ]
        else:
            prompt, lc = jobs[0]
            stage = root.tmp / f"{lc.id}.{fs.unique_suffix()}"
            os.mkdir(stage, 0o700)
            staged.append((stage, prompt, lc))
            crash.point("create.staged")  # an empty staging dir: fsck quarantines it after an hour
            dfd = fs.open_dir(stage)
            try:
                fs.write_at(dfd, PROMPT, dump(prompt), mode=0o444)
                crash.point("create.prompt_written")
                fs.write_at(dfd, JOB, dump_queued(lc))
                crash.point("create.job_written")  # complete but unpublished: still only in tmp/
            finally:
                os.close(dfd)
        if any(spec.id for spec in specs) or settings.max_queued:
            from filelock import FileLock  # only caller ids and max_queued need it: light submit

            with FileLock(root.create_lock, mode=0o600, preserve_lock_file=True, timeout=30):
                # concurrent creators: count and publish as one step, or the cap overshoots
                _check_room(root, settings, len(specs))
                publish.publish(root, staged)
        else:
            publish.publish(root, staged)
    except publish.BatchCommitted:
        raise  # the intent is durable: recovery publishes the rest (finish_batches)
    except BaseException:
        # our own unpublished staging, never visible to anyone
        for stage in [s for s, _, _ in staged] or [root.tmp / name for name, _ in made]:
            if stage.exists():
                shutil.rmtree(stage, ignore_errors=True)
        raise
    out = []
    loaded = utcnow()
    for _, prompt, lc in staged:
        _cache_prompt(root, prompt)
        # both parts were validated as they were made: not once more per job
        runtime = Runtime.model_construct(
            root=root.path, path=root.incoming / lc.id, loaded_at=loaded
        )
        out.append(Envelope.model_construct(prompt=prompt, lifecycle=lc, runtime=runtime))
    return out


def queue_full(root: Root, settings: Settings, n: int = 1) -> str | None:
    """Backpressure: why ``n`` more jobs would overfill incoming/ (``max_queued``), or None.

    The one check for submit (refused at once) and the inbox (which waits).
    """
    if settings.max_queued:
        queued = root.count("incoming")
        if queued + n > settings.max_queued:
            return f"queue full: {queued} queued (max_queued is {settings.max_queued})"
    return None


def _check_room(root: Root, settings: Settings, n: int) -> None:
    full = queue_full(root, settings, n)
    if full is not None:
        raise QueueFull(full)


def create(root: Root, spec: JobSpec, *, created_by: str | None = None) -> Envelope:
    return create_many(root, [spec], created_by=created_by)[0]


def default_creator() -> str:
    """``created_by`` when the caller names nobody: the operator at this host."""
    from farro_core.identity import host, operator

    return f"{operator()}@{host()}"


# ---------------------------------------------------------------- claim

#: How long a claimer waits for a candidate's commit lock (held for milliseconds,
#: unless its holder is stopped) before passing that job by for the next one.
CLAIM_COMMIT_WAIT_S = 1.0

# prompt.json never changes, so a job's place in the queue (priority, creation
# time) and its agent preset are read once per job directory (id and inode) and
# kept, and so is the ranking of incoming/ (farro_core.ranking): a claim looks only
# at the entries that came and went since the last claim.


def _preset(prompt: Prompt) -> str | None:
    """The preset a claim passes a job by for: its name, "" for a command, None for
    a job naming no agent (the ``agent`` setting runs it)."""
    agent = prompt.agent
    return agent.preset if isinstance(agent, AgentPreset) else None if agent is None else ""


def _queued(root: Root, job_id: str, ino: int, *, fresh: bool = False) -> ranking.Order:
    """What the claim needs of prompt.json: (-priority, created_at, preset).

    ``preset`` names the job's agent preset; "" for an agent that is no preset,
    None for a job naming no agent (the ``agent`` setting runs it). An unreadable
    prompt sorts last among priority 0 (claim skips it anyway). Kept by id *and*
    the inode of the job's directory: an id can come back (quarantined, then
    created again by another process) as another directory, with another prompt,
    which must not be sorted, or passed by, as the old one was. ``fresh``: read it
    even if kept (the inode number of a removed directory can be given to the next).
    """
    order: LRU[tuple[str, int], ranking.Order] = root.cache("claim_order", ORDER_CACHE)
    cached = None if fresh else order.hit((job_id, ino))
    if cached is None:
        try:
            dfd = fs.open_dir(root.incoming / job_id)
        except OSError:
            return ranking.UNOPENED
        try:
            prompt = read_prompt(root, dfd, job_id, fresh=True)
            cached = (-prompt.priority, prompt.created_at.timestamp(), _preset(prompt))
        except Corrupt:
            cached = (0, float("inf"), None)
        finally:
            os.close(dfd)
        order.put((job_id, ino), cached)
    return cached


#: a claim takes its first candidates from a copy of the ranking's head, and copies
#: the rest only when it passed all of those by
_HEAD = 64


def _queue(root: Root) -> ranking.Ranking:
    return ranking.of(root)


def _queue_keys(root: Root) -> list[ranking.QueueKey]:
    """(-priority, created_at, id, preset) of every queued job, best first."""
    return _queue(root).ranked(root, _queued)


def _ranked(root: Root, ids: Sequence[str] | None = None) -> Iterator[tuple[str, ranking.Order]]:
    """(id, order) of queued jobs, highest priority first, then oldest, then id.

    Not the id first: a caller may choose its own id, so ``zzzz-first`` submitted
    before ``aaaa-second`` must still be claimed first. ``ids`` keeps their order.
    """
    if ids is not None:
        for job_id in ids:
            try:
                ino = os.lstat(root.incoming / job_id).st_ino
            except OSError:
                continue  # not queued (or gone meanwhile): nothing to claim
            yield job_id, _queued(root, job_id, ino)
        return
    queue = _queue(root)
    head = queue.ranked(root, _queued, _HEAD)
    for priority, created, job_id, preset in head:
        yield job_id, (priority, created, preset)
    if len(head) < _HEAD:
        return  # that was the whole queue
    tried = {key[2] for key in head}  # passed by already: a claim looks at each job once
    for priority, created, job_id, preset in queue.ranked(root, _queued):
        if job_id not in tried:
            yield job_id, (priority, created, preset)


def candidates(root: Root) -> list[str]:
    """Queued job ids, highest priority first, then oldest (by ``created_at``, then id)."""
    return [key[2] for key in _queue_keys(root)]


#: a claimer's say on a job's agent preset (see :func:`_queued`): True passes the job by
PassBy = Callable[[str | None], bool]


def claim_key(root: Root | Path, job_id: str, attempt: int) -> tuple[str, str, int]:
    return (str(root.path if isinstance(root, Root) else root), job_id, attempt)


def claim(
    root: Root,
    worker: WorkerIdentity,
    *,
    ids: Sequence[str] | None = None,
    now: datetime | None = None,
    pass_by: PassBy | None = None,
) -> Envelope | None:
    """Claim the best queued job: claim lock, then status (under the commit lock), then move.

    Returns None when nothing is claimable. The returned envelope's claim lock stays
    held (in :data:`CLAIMS`) until :func:`release_claim`; while it is held the job
    is alive whatever its heartbeat says. ``pass_by(preset)`` true leaves a job
    for another worker, untouched (a preset this host lacks the key of).
    """
    now = now or utcnow()
    for job_id, order in _ranked(root, None if ids is None else [check_id(i) for i in ids]):
        if pass_by is not None and pass_by(order[2]):
            continue
        try:
            dfd = fs.open_dir(root.incoming / job_id)
        except OSError:
            continue  # claimed or moved meanwhile, or not a real directory (fsck's business)
        try:
            check_private_dir(dfd, job_id)
            env = _try_claim(root, worker, job_id, dfd, now, order, pass_by)
        except Corrupt:
            continue  # unsafe permissions: never run it (fsck quarantines it)
        except _LockBusy:
            continue  # its commit lock is stuck (a stopped committer): take the next job
        finally:
            os.close(dfd)
        if env is not None:
            return env
    return None


def _try_claim(
    root: Root,
    worker: WorkerIdentity,
    job_id: str,
    dfd: int,
    now: datetime,
    ranked: ranking.Order,
    pass_by: PassBy | None,
) -> Envelope | None:
    try:
        lc = read_lifecycle(dfd, job_id)
    except Corrupt:
        return None
    if lc.status is not Status.QUEUED or (lc.not_before and lc.not_before > now):
        return None
    attempt = lc.attempt + 1
    key = claim_key(root, job_id, attempt)
    if CLAIMS.holds(key):
        return None
    held = locks.try_lock(dfd, claim_lock_name(attempt))  # step 1
    if held is None:
        return None
    crash.point("claim.locked")  # lock freed by the kernel; job.json untouched: still queued
    try:
        with commit_lock(dfd, timeout=CLAIM_COMMIT_WAIT_S):
            lc = read_lifecycle(dfd, job_id)  # step 2: re-read under the commit lock
            if (
                lc.status is not Status.QUEUED
                or lc.attempt + 1 != attempt
                or (lc.not_before and lc.not_before > now)
                or not _only_in_incoming(root, job_id, dfd)
            ):
                held.release()
                return None
            try:  # a job whose prompt cannot be read is never claimed (fsck quarantines it)
                prompt = read_prompt(root, dfd, job_id, lc.created_at)
            except Corrupt:
                held.release()
                return None
            order = (-prompt.priority, prompt.created_at.timestamp(), _preset(prompt))
            if order != ranked:  # ranked by a prompt it no longer has (ranking.stale)
                _queue(root).stale(job_id)
                if pass_by is not None and pass_by(order[2]):
                    held.release()
                    return None
            # the claim lock's mtime is the attempt's heartbeat (§5.6); a failed claim of
            # this attempt may have made the file long ago
            os.utime(held.fd)
            new = lc.model_copy(
                update={
                    "status": Status.IN_PROGRESS,
                    "attempt": attempt,
                    "revision": lc.revision + 1,
                    "claim": Claim(
                        worker=worker.name,
                        host=worker.host,
                        boot_id=worker.boot_id,
                        pid=worker.pid,
                        pid_started_at=worker.pid_started_at,
                        token=secrets.token_hex(8),
                        claimed_at=now,
                    ),
                    "not_before": None,
                    "reason": f"claimed by {worker.name}",
                    "updated_at": now,
                }
            )
            fs.write_at(dfd, JOB, dump(new))  # step 3
            crash.point("claim.committed")  # in-progress in incoming/, lock free: watchdog -> stale
            fs.move(root.incoming / job_id, root.active / job_id)  # step 4
            crash.point("claim.moved")  # in-progress in active/, lock free: watchdog -> stale
            audit.append(root, _audit(new, lc.status, Actor.AGENT, worker.name))
    except BaseException:
        held.release()
        raise
    CLAIMS.add(key, held)  # step 5: held until the attempt ends
    return Envelope(
        prompt=prompt, lifecycle=new, runtime=Runtime(root=root.path, path=root.active / job_id)
    )


def release_claim(env: Envelope) -> None:
    """Drop the claim lock of the envelope's attempt (after its final commit)."""
    CLAIMS.release(claim_key(env.runtime.root, env.id, env.lifecycle.attempt))


def holds_claim(root: Root, job_id: str, attempt: int) -> bool:
    return CLAIMS.holds(claim_key(root, job_id, attempt))


def claim_is_free(root: Root, path: Path, job_id: str, attempt: int) -> bool:
    """Whether attempt's claim lock is free (its worker is gone). Never probes our own."""
    if holds_claim(root, job_id, attempt):
        return False
    try:
        dfd = fs.open_dir(path)
    except OSError:
        return False
    try:
        return locks.is_free(dfd, claim_lock_name(attempt))
    finally:
        os.close(dfd)


def heartbeat(env: Envelope) -> bool:
    """Touch the attempt's heartbeat: its claim lock's mtime. False when the job is no
    longer where it was.

    The claim lock is made by the claim anyway: a ``heartbeat`` file of its own was one
    more inode per job (docs/architecture.md, "Locks and liveness"). Per attempt, so a
    hung worker that wakes never freshens a later attempt's heartbeat.
    """
    name = claim_lock_name(env.lifecycle.attempt)
    try:
        os.utime(env.runtime.path / name, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def heartbeat_age(path: Path, attempt: int, now: float) -> float | None:
    """Seconds since attempt's last sign of life by ``now`` (a file-system time), None when
    neither its claim lock nor a legacy ``heartbeat`` file is there.

    The newer of the two: a worker of an older version touches ``heartbeat``, and a
    ``heartbeat`` left by an earlier attempt is older than this attempt's claim lock.
    """
    ages = []
    for name in (claim_lock_name(attempt), LEGACY_HEARTBEAT):
        try:
            ages.append(now - os.stat(path / name, follow_symlinks=False).st_mtime)
        except FileNotFoundError:
            continue
    return min(ages, default=None)


class _LockBusy(Refused):
    """The commit lock stayed busy for the whole wait (its holder may be stopped)."""


class commit_lock:
    """Hold ``.commit.lock`` of an open job directory for one read-check-write.

    Public: besides :func:`commit`, the watchdog and fsck take it around their own
    read-check-move of a job, so none of them acts on a job.json another is replacing.
    """

    def __init__(self, dfd: int, timeout: float = 10.0) -> None:
        self._dfd = dfd
        self._timeout = timeout
        self._held: locks.Flock | None = None

    def __enter__(self) -> None:
        try:
            self._held = locks.lock(self._dfd, COMMIT_LOCK, self._timeout)
        except Refused as exc:
            raise _LockBusy(str(exc)) from None

    def __exit__(self, *_: object) -> None:
        if self._held is not None:
            self._held.release()


def _audit(lc: Lifecycle, frm: Status, actor: Actor | str, worker: str | None) -> dict[str, Any]:
    return audit.record_of(
        lc, frm=frm, actor=actor, worker=worker, reason=lc.reason, ts=lc.updated_at
    )


# ---------------------------------------------------------------- commit


_IDENTITY = frozenset({"id", "created_at", "schema_version"})


def commit(
    env: Envelope,
    to: Status | str,
    actor: Actor | str,
    reason: str,
    *,
    worker: str | None = None,
    **changes: Any,
) -> Envelope:
    """Move a job to ``to`` if nobody moved it since ``env`` was read.

    1. take ``.commit.lock``, re-read job.json; 2. its revision must equal the
    envelope's (else :class:`Conflict`: the fencing); 3. the move must be legal for
    ``actor``; 4. write job.json (revision+1); 5. move the directory if its queue
    changes, audit, release.
    """
    fixed = sorted(_IDENTITY & changes.keys())
    if fixed:  # rewriting these would make job.json disagree with its job (corrupt)
        raise ValueError(f"commit cannot change {', '.join(fixed)} of job {env.id}")
    root = Root(env.runtime.root)
    to, actor = Status(to), Actor(actor)
    with _job_locked(root, env, committing=True) as (dfd, here):
        lc = read_lifecycle(dfd, env.id)
        if lc.revision != env.lifecycle.revision:
            raise Conflict(
                f"job {env.id} moved on: it is {lc.status} at revision {lc.revision}, "
                f"not revision {env.lifecycle.revision} ({lc.reason})"
            )
        check(lc.status, to, actor)
        now = utcnow()
        # validated from a plain dict: an unknown field in ``changes`` is refused,
        # never silently dropped (model_copy would drop it)
        new = Lifecycle.model_validate(
            {
                **lc.model_dump(),
                **changes,
                "status": to,
                "revision": lc.revision + 1,
                "reason": reason,
                "updated_at": now,
            }
        )
        fs.write_at(dfd, JOB, dump(new))
        crash.point("commit.written")  # job.json is the truth; fsck moves the dir
        dest = root.path / QUEUE_DIR[to] / env.id
        if dest != here:
            fs.move(here, dest)
            crash.point("commit.moved")  # only the audit line is missing: fsck adds it
        audit.append(root, _audit(new, lc.status, actor, worker))
    out = Envelope(prompt=env.prompt, lifecycle=new, runtime=Runtime(root=root.path, path=dest))
    if to in TERMINAL and lc.status not in TERMINAL:
        from farro_core import notify  # only a finishing job needs it: a light submit

        notify.finished(root, out)  # on_finish, in a thread: never holds up the commit
    return out


def annotate(
    env: Envelope,
    actor: str,
    reason: str,
    *,
    event: str,
    result: Result,
    before: Callable[[Lifecycle], None] | None = None,
) -> Envelope:
    """Replace a finished job's result in place: a record, not a transition.

    What ``farro land`` writes. The job keeps its status, queue and reason; job.json
    gets revision+1 (so every reader sees the change) and the audit a line of its
    own ``event``. Refused unless the job is still at ``env``'s status and attempt,
    since a result belongs to the attempt that made it.

    ``before`` (given the job as read under the lock) runs once every check passed,
    still under the commit lock, and may raise to write nothing: what the record
    tells of (land's branch move) then happens only while the job is sure to take
    the record, since no move (gc's archive, a requeue) can come in between.
    """
    root = Root(env.runtime.root)
    with _job_locked(root, env) as (dfd, here):
        lc = read_lifecycle(dfd, env.id)
        if lc.status != env.status or lc.attempt != env.lifecycle.attempt:
            raise Conflict(
                f"job {env.id} moved on: it is {lc.status} at attempt {lc.attempt}, "
                f"not {env.status} at attempt {env.lifecycle.attempt}"
            )
        if before is not None:
            before(lc)
        new = Lifecycle.model_validate(
            {
                **lc.model_dump(),
                "result": result.model_dump(),
                "revision": lc.revision + 1,
                "updated_at": utcnow(),
            }
        )
        fs.write_at(dfd, JOB, dump(new))
        audit.note(root, new, actor=actor, reason=reason, event=event, ts=new.updated_at)
    return Envelope(prompt=env.prompt, lifecycle=new, runtime=Runtime(root=root.path, path=here))


def mark_kept(env: Envelope, by: str, *, kept: bool) -> Envelope | None:
    """Set (or clear) a job's kept mark: a record, not a transition (``farro keep``).

    The job keeps its status, queue and reason; job.json gets revision+1 and the
    audit a ``kept`` (or ``unkept``) line. Refused while the job runs: its worker's
    commit names the revision it read, and would be fenced off by this one. None when
    the job already is as asked (nothing written).
    """
    from farro_core.envelope import Kept
    from farro_core.errors import Running

    root = Root(env.runtime.root)
    with _job_locked(root, env) as (dfd, here):
        lc = read_lifecycle(dfd, env.id)
        if lc.status is Status.IN_PROGRESS:
            raise Running(
                f"job {env.id} is running: mark it once it has finished "
                "(writing job.json now would fence off its worker's commit)"
            )
        if (lc.kept is not None) == kept:
            return None
        now = utcnow()
        new = Lifecycle.model_validate(
            {
                **lc.model_dump(),
                "kept": Kept(at=now, by=by).model_dump() if kept else None,
                "revision": lc.revision + 1,
                "updated_at": now,
            }
        )
        fs.write_at(dfd, JOB, dump(new))
        what = "marked kept" if kept else "kept mark removed"
        audit.note(
            root,
            new,
            actor=Actor.OPERATOR,
            reason=f"{what} by {by}",
            event="kept" if kept else "unkept",
            ts=now,
        )
    return Envelope(prompt=env.prompt, lifecycle=new, runtime=Runtime(root=root.path, path=here))


def move_misplaced(
    root: Root,
    path: Path,
    lc: Lifecycle,
    on_moved: Callable[[Lifecycle], None] | None = None,
) -> Lifecycle | None:
    """Finish the move a crash cut short: put the job in the queue dir its status names.

    A crash between a commit's job.json write and its directory move leaves a job
    in the wrong dir (queued in active/, where no worker looks). A live commit passes
    through that state too, under the commit lock, so the job is read again under
    that lock first. Returns its lifecycle once moved (``on_moved`` has run under the
    lock), None if it was gone or moved on meanwhile. Used by the watchdog and fsck.
    """
    try:
        dfd = fs.open_dir(path)
    except FileNotFoundError:
        return None
    try:
        with commit_lock(dfd):
            here = where(root, path.name, dfd)
            now = read_lifecycle(dfd, path.name)
            dest = root.path / QUEUE_DIR[now.status] / path.name
            if here is None or now.revision != lc.revision or here == dest:
                return None
            fs.move(here, dest)
            if on_moved is not None:
                on_moved(now)
            return now
    finally:
        os.close(dfd)


def request_kill(env: Envelope, by: str) -> None:
    """Ask the worker running this attempt to kill it (``control/kill``).

    The request names the attempt, so a request that arrives too late can never
    kill a later attempt of the same job.
    """
    control = env.runtime.path / "control"
    with suppress(FileExistsError):
        os.mkdir(control, 0o700)
    body = {"attempt": env.lifecycle.attempt, "by": by, "at": utcnow().isoformat()}
    fs.write_json(control / "kill", body)


def kill_requested(path: Path, attempt: int) -> str | None:
    """Who asked to kill ``attempt``, or None when nobody did."""
    try:  # control/ itself may be a planted symlink: open it without following
        cfd = fs.open_dir(path / "control")
    except OSError:
        return None
    try:
        body = fs.read_json_at(cfd, "kill", limit=4096)
    except (OSError, ValueError):
        return None
    finally:
        os.close(cfd)
    if isinstance(body, dict) and body.get("attempt") == attempt:
        return str(body.get("by") or "operator")
    return None
