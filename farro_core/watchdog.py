"""The watchdog: in-progress jobs whose worker is gone or silent become stale.

Liveness is the claim lock (docs/spec.md §5.6): the kernel frees it when the worker
dies, however it dies, so a free lock means "worker gone". A worker that is
alive but hung (SIGSTOP, a deadlock) keeps its lock and stops touching it (the
lock's mtime is the heartbeat); after ``stale_after_s`` its job is made stale anyway, and the
revision check then refuses that worker's late commit (the fencing). Silence is
measured by the file system's clock (the lock's mtime against a probe's mtime, see
fsclock.py), so hosts whose clocks disagree neither steal work nor miss a dead host.

Every move goes through :func:`farro_core.job.commit`, so the transition table
decides what is legal and a job that moved on meanwhile is left alone. A job the
sweep cannot handle (a directory it cannot write) is reported by name, logged
once, and the sweep goes on with the others. A copy in incoming/ of a job id that
active/ or done/ holds too is quarantined (claim never takes one).

Crash after claim step 3 (docs/spec.md §5.3): the job is in-progress but still in
incoming/. Reading every job.json in incoming/ each sweep would cost a parse per
queued job, so the watchdog remembers each queued job directory's (inode, mtime): every write of
job.json creates and renames a file inside the directory, which bumps its mtime.
A sweep then costs one ``lstat`` per entry of a single ``scandir`` (a few
microseconds per queued job) and parses only directories that changed. Because
mtimes tick coarsely, a directory changed in the last :data:`_RACY_S` seconds is
not remembered (git's "racy clean" rule), so a change within the same tick as
our look is still caught on the next sweep.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farro_core import audit, fs, fsclock, job, listing
from farro_core.envelope import Envelope
from farro_core.errors import Conflict, FarroError, IllegalTransition, NotFound
from farro_core.ids import ID_PATTERN
from farro_core.quarantine import quarantine
from farro_core.root import Root
from farro_core.settings import Settings
from farro_core.transitions import QUEUE_DIR, Actor, Status

log = logging.getLogger("farro.watchdog")

_StatKey = tuple[int, int]
#: a directory changed this recently may change again within the same mtime tick
_RACY_S = 2.0


@dataclass
class SweepReport:
    """What one sweep did: (job id, reason) per stale mark, ids requeued."""

    stale: list[tuple[str, str]] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    checked: int = 0
    #: (job id, why) for each job the sweep could not handle; it went on with the others
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: (job id, why) for each copy of a job id put aside into quarantine/
    quarantined: list[tuple[str, str]] = field(default_factory=list)


class Watchdog:
    """Sweeps a root; holds only a cache of what it saw in incoming/ (no locks)."""

    def __init__(self, root: Root, settings: Settings | None = None) -> None:
        self.root = root
        self.settings = settings or root.settings
        self._incoming_seen: dict[str, _StatKey] = {}
        self._failing: dict[str, str] = {}  # job id -> why, as logged

    def sweep(self, now: float | None = None) -> SweepReport:
        """One pass: stale-marking in active/ and incoming/, then the stale policy.

        Each job is handled on its own: one the sweep cannot handle (a directory it
        cannot write, say) is reported by name, and the others are still looked at.

        ``now`` is by the file system's clock (default: read it), never this host's.
        """
        report = SweepReport()
        now = fsclock.fs_now(self.root) if now is None else now
        for job_id in self.root.ids("active"):
            report.checked += 1
            self._isolated(
                job_id, report, self._check, self.root.active / job_id, job_id, now, report
            )
        suspects, duplicates = self._suspects_in_incoming(now)
        for job_id, other in duplicates:
            self._isolated(job_id, report, self._quarantine_duplicate, job_id, other, report)
        for job_id in suspects:
            report.checked += 1
            self._isolated(
                job_id, report, self._check, self.root.incoming / job_id, job_id, now, report
            )
        failed = dict(report.failed)
        for job_id in set(self._failing) - set(failed):
            del self._failing[job_id]  # handled again: a new failure is worth a new line
        return report

    def _isolated(
        self, job_id: str, report: SweepReport, fn: Callable[..., None], *args: Any
    ) -> None:
        """Run ``fn(*args)`` for one job; a failure is that job's, logged once until a sweep
        handles the job again."""
        try:
            fn(*args)
        except Exception as exc:
            why = " ".join((str(exc) or type(exc).__name__).split())[:500]
            report.failed.append((job_id, why))
            if job_id not in self._failing:  # not again while it lasts (a temp name varies)
                log.error("job %s: the watchdog cannot handle it: %s", job_id, why)
                self._failing[job_id] = why

    # ------------------------------------------------------------ incoming/

    def _suspects_in_incoming(self, now: float) -> tuple[list[str], list[tuple[str, Path]]]:
        """Ids in incoming/ whose directory changed since last seen and that say in-progress;
        and those (with the other place) whose id another queue directory holds too."""
        seen = self._incoming_seen
        present: set[str] = set()
        suspects = []
        duplicates: list[tuple[str, Path]] = []
        with os.scandir(self.root.incoming) as it:
            entries = [e for e in it if ID_PATTERN.fullmatch(e.name)]
        for entry in entries:
            job_id = entry.name
            present.add(job_id)
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # moved meanwhile
            key = (st.st_ino, st.st_mtime_ns)
            if seen.get(job_id) == key:
                continue
            seen.pop(job_id, None)
            other = self._elsewhere(job_id, st)
            if other is not None:
                duplicates.append((job_id, other))
                continue
            status = listing.peek_status(self.root.incoming / job_id)
            if status is not None and status != Status.QUEUED:
                # in-progress (crash after claim step 3) or terminal (crash after a commit
                # wrote job.json, before its move): never remembered, looked at until it moves
                suspects.append(job_id)
            elif status is not None and now - st.st_mtime > _RACY_S:
                seen[job_id] = key
        if len(seen) > len(present):
            for gone in set(seen) - present:
                del seen[gone]
        return suspects, duplicates

    def _elsewhere(self, job_id: str, st: os.stat_result) -> Path | None:
        """active/ or done/ holding another directory of this id (two cheap lstats)."""
        for q in ("active", "done"):
            candidate = self.root.path / q / job_id
            try:
                cst = os.lstat(candidate)
            except FileNotFoundError:
                continue
            if (cst.st_dev, cst.st_ino) != (st.st_dev, st.st_ino):
                return candidate
        return None

    def _quarantine_duplicate(self, job_id: str, other: Path, report: SweepReport) -> None:
        """A copy in incoming/ of an id that active/ or done/ holds (put back by hand, say)
        would run that job again and then find its place taken: it is put aside, never run."""
        path = self.root.incoming / job_id
        try:
            dfd = fs.open_dir(path)
        except FileNotFoundError:
            return  # gone meanwhile
        try:
            with job.commit_lock(dfd):
                if job.where(self.root, job_id, dfd) != path:
                    return  # moved meanwhile
                if job.duplicate_of(self.root, job_id, dfd) is None:
                    return
                why = (
                    f"job id {job_id} exists already in {other.parent.name}/: "
                    "this copy in incoming/ is never run"
                )
                quarantine(self.root, path, why)
        finally:
            os.close(dfd)
        report.quarantined.append((job_id, why))
        log.warning("job %s: %s; moved to quarantine/", job_id, why)

    # ------------------------------------------------------------ one job

    def _check(self, path: Path, job_id: str, now: float, report: SweepReport) -> None:
        try:
            env = job.load(self.root, str(path))
        except (FarroError, OSError):
            return  # gone or unreadable: fsck's business, not ours
        lc = env.lifecycle
        if lc.status is not Status.IN_PROGRESS and path.parent.name != QUEUE_DIR[lc.status]:
            self._move_misplaced(path, env)
            return
        if lc.status is Status.IN_PROGRESS:
            reason = self._stale_reason(env, now)
            if reason is None:
                return
            marked = self._commit(env, Status.STALE, Actor.WATCHDOG, reason)
            if marked is None:
                return
            env = marked
            report.stale.append((job_id, reason))
            log.warning("job %s stale: %s", job_id, reason)
        if env.status is Status.STALE and self.settings.auto_requeue_stale:
            self._maybe_requeue(env, report)

    def _stale_reason(self, env: Envelope, now: float) -> str | None:
        lc = env.lifecycle
        path = env.runtime.path
        if job.claim_is_free(self.root, path, env.id, lc.attempt):
            return "worker gone"
        # file-system clock only: the claim touched its claim lock, so that lock's mtime
        # (or a legacy heartbeat file's; else the claim's job.json write) is the last sign
        # of life; claimed_at is the claimer's clock and never compared with ours (fsclock.py)
        silent = job.heartbeat_age(path, lc.attempt, now)
        if silent is None:
            try:
                silent = now - os.stat(path / job.JOB, follow_symlinks=False).st_mtime
            except OSError:
                return None  # moved meanwhile
        if silent > self.settings.stale_after_s:
            who = f" (worker {lc.claim.worker})" if lc.claim else ""
            return f"no heartbeat for {silent:.0f}s{who}"
        return None

    def _maybe_requeue(self, env: Envelope, report: SweepReport) -> None:
        """auto_requeue_stale: only when the worker is gone and attempts remain."""
        lc = env.lifecycle
        if not job.claim_is_free(self.root, env.runtime.path, env.id, lc.attempt):
            return  # hung but alive: an operator decides
        if lc.attempts_left(env.prompt.max_attempts) <= 0:
            return
        new = self._commit(
            env,
            Status.QUEUED,
            Actor.MANAGER,
            f"requeued by the manager after: {lc.reason}",
            claim=None,
            not_before=None,
        )
        if new is not None:
            report.requeued.append(env.id)
            log.info("job %s requeued (auto_requeue_stale)", env.id)

    def _move_misplaced(self, path: Path, env: Envelope) -> None:
        """A crash between a commit's job.json write and its move left the job in the wrong
        queue dir (e.g. queued in active/, where no worker looks): finish the move, as fsck
        would, and audit the revision the crash kept out of the log."""
        lc = env.lifecycle
        try:
            moved = job.move_misplaced(
                self.root, path, lc, lambda now: audit.recovered(self.root, now, "watchdog")
            )
        except (FarroError, OSError) as exc:
            # reported by the sweep, naming the job; the other jobs are still looked at
            raise FarroError(f"could not move it to {QUEUE_DIR[lc.status]}/: {exc}") from exc
        if moved is None:
            return  # gone, moved on meanwhile, or the commit we raced finished its own move
        where = f"{path.parent.name}/"
        log.warning(
            "job %s was %s in %s: moved to %s/", env.id, lc.status, where, QUEUE_DIR[lc.status]
        )

    def _commit(
        self, env: Envelope, to: Status, actor: Actor, reason: str, **changes: Any
    ) -> Envelope | None:
        try:
            return job.commit(env, to, actor, reason, **changes)
        except (Conflict, NotFound, IllegalTransition):
            return None  # it moved on meanwhile: whoever moved it was right
        except (FarroError, OSError) as exc:
            raise FarroError(f"could not mark it {to}: {exc}") from exc
