"""``farro fsck``: reconcile the queue directories with what each job.json says.

Like Postfix's start-up, recovery is a plain pass over the tree, not a special
mode: the same checks run whether or not anything crashed, and while workers
run. Jobs move while the pass looks at them, so every repair is decided again
under the job's commit lock (moves and job.json writes happen only under it)
against what is on disk then; a job that moved on meanwhile is left alone.

Without ``repair`` it only reports. With it, it moves misplaced jobs to the directory their status
names, marks in-progress jobs whose worker is gone as stale, quarantines what it
cannot read (never deleting), writes ``recovered`` audit lines for revisions
a crash kept out of the log, and ends the agents a worker killed with -9 left
running on this host (in the worktree the next worker takes over).
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from farro_core import audit, fs, job, procs, publish
from farro_core.envelope import Lifecycle, load_prompt
from farro_core.errors import Conflict, Corrupt, FarroError, Refused
from farro_core.ids import ID_PATTERN
from farro_core.quarantine import quarantine
from farro_core.root import QUEUES, Root
from farro_core.transitions import QUEUE_DIR, Actor, Status

TMP_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class Finding:
    #: misplaced, stale, corrupt, duplicate, leftover, symlink, unaudited, tmp, orphan, error
    kind: str
    path: str  # relative to the root
    detail: str
    action: str  # what repair did (or would do)
    repaired: bool = False


def fsck(root: Root, *, repair: bool = False, now: float | None = None) -> list[Finding]:
    """Every finding; a job that cannot be handled is an ``error`` finding naming it,
    never the end of the pass."""
    now = time.time() if now is None else now
    out: list[Finding] = []
    out += _check_tmp(root, repair, now)
    jobs = _check_queues(root, repair, out, _audit_index(root, _known_ids(root))[0])
    out += _check_audit(root, repair, jobs)
    out += _check_orphans(root, repair)
    return out


def _check_orphans(root: Root, repair: bool) -> list[Finding]:
    """Agents and checks of this root's jobs whose worker died (``kill -9``) and that
    still run on this host, writing in a worktree the next worker will take over."""
    tops = {os.path.realpath(root.path) + os.sep, str(root.path).rstrip(os.sep) + os.sep}
    out = []
    for orphan in procs.orphans():
        env = orphan.farro_env
        where = env.get("FARRO_WORKSPACE", "")
        if not any(where.startswith(t) for t in tops):
            where = env.get("FARRO_JOB_DIR", "")
            if not any(where.startswith(t) for t in tops):
                continue  # another root's
        rel = os.path.relpath(where, root.path)
        pids = ", ".join(str(p) for p in orphan.pids[:10])
        more = f" … {len(orphan.pids) - 10} more" if len(orphan.pids) > 10 else ""
        detail = (
            f"job {env.get('FARRO_JOB_ID', '?')}: processes {pids}{more} of a dead worker "
            f"still running (unit {orphan.token})"
        )
        if repair:
            left = procs.end_orphan(orphan)
            if left:
                alive = ", ".join(str(p) for p in left[:10])
                out.append(Finding("orphan", rel, detail, f"killed, but {alive} still run"))
            else:
                out.append(Finding("orphan", rel, detail, "ended", True))
        else:
            out.append(Finding("orphan", rel, detail, "would end them"))
    return out


def _rel(root: Root, path: Path) -> str:
    return os.path.relpath(path, root.path)


def _quarantine(root: Root, path: Path, kind: str, detail: str, repair: bool) -> Finding:
    if repair:
        dest = quarantine(root, path, detail)
        return Finding(kind, _rel(root, path), detail, f"moved to {_rel(root, dest)}", True)
    return Finding(kind, _rel(root, path), detail, "would move to quarantine/")


def _check_tmp(root: Root, repair: bool, now: float) -> list[Finding]:
    out = []
    if repair:
        for job_id in publish.finish_batches(root):
            detail = "its batch's creator died while publishing it"
            out.append(Finding("batch", f"incoming/{job_id}", detail, "published", True))
    else:
        out += [
            Finding(
                "batch",
                f"tmp/{name}",
                "a batch interrupted while publishing",
                "would publish the rest",
            )
            for name in publish.unfinished_batches(root)
        ]
    for path, detail in tmp_leftovers(root, now):
        try:
            out.append(_quarantine(root, path, "tmp", detail, repair))
        except Exception as exc:
            out.append(_failed(root, path, exc, repair))
    return out


def tmp_leftovers(root: Root, now: float) -> list[tuple[Path, str]]:
    """tmp/ entries older than :data:`TMP_MAX_AGE_S` (creates that never finished), with
    why each is one: what fsck and the manager's tmp/ sweep quarantine."""
    out = []
    with os.scandir(root.tmp) as it:
        entries = list(it)
    for entry in entries:
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # a create published it meanwhile
        if age > TMP_MAX_AGE_S:
            detail = f"staging leftover, {age / 3600:.1f} h old (a create that never finished)"
            out.append((Path(entry.path), detail))
    return out


def _check_queues(
    root: Root, repair: bool, out: list[Finding], audited: dict[str, int]
) -> dict[str, Lifecycle]:
    seen: dict[str, tuple[Path, Lifecycle, tuple[int, int]]] = {}
    for q in QUEUES:
        for entry in list(os.scandir(root.path / q)):
            path = Path(entry.path)
            try:
                _check_entry(root, path, repair, out, seen)
            except Exception as exc:
                out.append(_failed(root, path, exc, repair))
    jobs: dict[str, Lifecycle] = {}
    for job_id, (path, lc, _) in seen.items():
        if not repair or os.path.lexists(path):
            try:
                jobs[job_id] = _check_job(root, path, lc, repair, out, audited)
            except Exception as exc:
                out.append(_failed(root, path, exc, repair))
                jobs[job_id] = lc
    return jobs


def _failed(root: Root, path: Path, exc: Exception, repair: bool) -> Finding:
    """A job fsck could not handle (a directory it cannot write, say): named, and the
    pass goes on with the others."""
    why = " ".join((str(exc) or type(exc).__name__).split())[:500]
    action = "not repaired" if repair else "not fully checked"
    return Finding("error", _rel(root, path), f"could not be handled: {why}", action)


def _check_entry(
    root: Root,
    path: Path,
    repair: bool,
    out: list[Finding],
    seen: dict[str, tuple[Path, Lifecycle, tuple[int, int]]],
) -> None:
    """One entry of a queue directory: quarantined when it is no readable job, else noted
    in ``seen`` (the lower revision of two directories of one id is quarantined)."""
    name = path.name
    if not ID_PATTERN.fullmatch(name):
        out.append(_quarantine(root, path, "corrupt", "name is not a job id", repair))
        return
    try:
        lc, ident = _read_job(path)
    except _Moved:
        return  # a live job moved on between the listing and the read
    except Corrupt as exc:
        out.append(_quarantine(root, path, "corrupt", str(exc), repair))
        return
    out += _leftovers(root, path, repair)
    if name in seen:
        other_path, other, other_ident = seen[name]
        if other_ident == ident:
            # one directory seen in two queues: it moved during the pass (a live
            # job), it is no duplicate. The later sighting is the newer one.
            seen[name] = (path, lc, ident)
            return
        # queues are scanned incoming/, active/, done/: on a tie the later queue is kept,
        # as the watchdog does (a copy put back into incoming/ must never run again)
        loser, keep = (other_path, path) if lc.revision >= other.revision else (path, other_path)
        detail = f"also in {_rel(root, keep)}; keeping the higher revision (or the later queue)"
        if loser == other_path:
            seen[name] = (path, lc, ident)
        out.append(_quarantine(root, loser, "duplicate", detail, repair))
        return
    seen[name] = (path, lc, ident)


class _Moved(Exception):
    """The entry left its queue directory between the listing and the open."""


def _read_job(path: Path) -> tuple[Lifecycle, tuple[int, int]]:
    """job.json of the directory at ``path``, and that directory's identity (dev, inode)."""
    try:
        dfd = fs.open_dir(path)
    except FileNotFoundError:
        raise _Moved(path.name) from None
    except OSError:
        raise Corrupt(f"{path.name} is not a real directory (symlink or file)") from None
    try:
        st = os.fstat(dfd)
        job.check_private_dir(dfd, path.name)
        lc = job.read_lifecycle(dfd, path.name)
        # from disk, not the per-process prompt cache: the file itself is what is checked
        prompt = load_prompt(job._read(dfd, job.PROMPT, path.name), f"{path.name}/{job.PROMPT}")
        if prompt.id != path.name:
            raise Corrupt(f"{path.name}/{job.PROMPT} names job {prompt.id}")
        return lc, (st.st_dev, st.st_ino)
    finally:
        os.close(dfd)


def _leftovers(root: Root, path: Path, repair: bool) -> list[Finding]:
    """Temp files of interrupted writes, and symlinks planted in the job dir (never followed)."""
    found = _suspects(path)
    out = [_put_aside(root, path, s, repair) for s in found if s[1] != "leftover"]
    if len(out) < len(found):
        out += _temp_leftovers(root, path, repair)
    return [f for f in out if f is not None]


def _put_aside(
    root: Root, path: Path, suspect: tuple[Path, str, str], repair: bool
) -> Finding | None:
    entry_path, kind, detail = suspect
    rel = _rel(root, entry_path)
    if not repair:
        return Finding(kind, rel, detail, "would move to quarantine/")
    try:
        dest = quarantine_leftover(root, path, entry_path, detail)
    except FileNotFoundError:
        return None  # the job moved on meanwhile
    return Finding(kind, rel, detail, f"moved to {dest}", True)


def _temp_leftovers(root: Root, path: Path, repair: bool) -> list[Finding | None]:
    """Temp files of writes that no live process can still be making.

    A temp file may be a write in flight: job.json is written only under the
    commit lock, and a worker writes its other files (prompt.txt) only while it
    holds its claim. So repair decides under the commit lock, and leaves temp files
    alone while the job's current attempt is claimed by a live worker.
    """
    try:
        dfd = fs.open_dir(path)
    except FileNotFoundError:
        return []  # the job moved on meanwhile
    try:
        if not repair:
            if _claim_held(root, path, dfd):
                return []
            return [_put_aside(root, path, s, False) for s in _suspects(path) if s[1] == "leftover"]
        with job.commit_lock(dfd):
            if job.where(root, path.name, dfd) != path:
                return []  # moved on: looked at in its new place, or by the next fsck
            if _claim_held(root, path, dfd):
                return []
            return [_put_aside(root, path, s, True) for s in _suspects(path) if s[1] == "leftover"]
    except (Refused, OSError) as exc:  # the commit lock is held for long, or not a lock
        return [Finding("leftover", _rel(root, path), str(exc), "not looked at")]
    finally:
        os.close(dfd)


def _claim_held(root: Root, path: Path, dfd: int) -> bool:
    """Whether the job's current attempt is in progress with its worker alive."""
    try:
        lc = job.read_lifecycle(dfd, path.name)
    except Corrupt:
        return False
    return lc.status is Status.IN_PROGRESS and not job.claim_is_free(
        root, path, path.name, lc.attempt
    )


_PLANTED = "a symlink planted in a job directory (FARRO never follows one)"


def _suspects(path: Path) -> list[tuple[Path, str, str]]:
    found = []
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return []  # the job moved on meanwhile
    for entry in entries:
        if entry.is_symlink():
            found.append((Path(entry.path), "symlink", _PLANTED))
        elif ".tmp." in entry.name:
            detail = "temp file of an interrupted write (the real file is intact)"
            found.append((Path(entry.path), "leftover", detail))
        elif entry.name in ("logs", "control") and entry.is_dir(follow_symlinks=False):
            for sub in os.scandir(entry.path):
                if sub.is_symlink():
                    found.append((Path(sub.path), "symlink", _PLANTED))
    return found


def quarantine_leftover(root: Root, job_dir: Path, path: Path, detail: str) -> str:
    named = path.with_name(f"{job_dir.name}.{path.name}")
    os.rename(path, named)  # same directory: atomic, then moved out whole
    return _rel(root, quarantine(root, named, detail))


def _check_job(
    root: Root,
    path: Path,
    lc: Lifecycle,
    repair: bool,
    out: list[Finding],
    audited: dict[str, int],
) -> Lifecycle:
    rel = _rel(root, path)
    want = root.path / QUEUE_DIR[lc.status] / path.name
    if want != path:
        detail = f"status {lc.status} belongs in {QUEUE_DIR[lc.status]}/"
        if repair:
            try:
                if job.move_misplaced(root, path, lc) is None:
                    return lc  # it moved on meanwhile (a live job): nothing to repair
                out.append(Finding("misplaced", rel, detail, f"moved to {_rel(root, want)}", True))
                path = want
            except FarroError as exc:
                out.append(Finding("misplaced", rel, detail, f"not moved: {exc}"))
        else:
            out.append(Finding("misplaced", rel, detail, f"would move to {QUEUE_DIR[lc.status]}/"))
    if lc.status is Status.IN_PROGRESS and job.claim_is_free(root, path, path.name, lc.attempt):
        detail = f"in-progress but the claim lock of attempt {lc.attempt} is free (worker gone)"
        if repair:
            try:
                env = job.load(root, path.name)
                if env.lifecycle.revision != lc.revision:
                    # the lock checked was that of the job as read: it moved on since
                    return lc
                # A claim that crashed before its audit line: log that revision now, before
                # the stale commit supersedes it (the audit check below sees only the last).
                if lc.revision > audited.get(path.name, 0):
                    have = _audited_now(root, path.name)
                    if lc.revision > have:
                        out.append(_recover(root, path.name, lc, have))
                env = job.commit(env, Status.STALE, Actor.WATCHDOG, "worker gone (found by fsck)")
                lc = env.lifecycle
                out.append(Finding("stale", rel, detail, "marked stale", True))
            except (Conflict, FarroError) as exc:
                out.append(Finding("stale", rel, detail, f"not marked: {exc}"))
        else:
            out.append(Finding("stale", rel, detail, "would mark stale"))
    return lc


#: revisions above this are not tracked one by one (no real job gets near it)
_MAX_TRACKED_REVISION = 100_000


def _audit_index(root: Root, known: Collection[str]) -> tuple[dict[str, int], dict[str, int]]:
    """For each job in ``known``: the highest revision the audit log records, and a bit
    mask of every revision it records. One streaming pass; memory grows with the jobs
    under the root, never with the size of the log."""
    highest: dict[str, int] = {}
    masks: dict[str, int] = {}
    for rec in audit.read(root):
        jid, rev = rec.get("job"), rec.get("revision")
        if jid not in known or type(rev) is not int or rev < 1:
            continue
        assert isinstance(jid, str)
        highest[jid] = max(highest.get(jid, 0), rev)
        if rev <= _MAX_TRACKED_REVISION:
            masks[jid] = masks.get(jid, 0) | (1 << rev)
    return highest, masks


def _known_ids(root: Root) -> set[str]:
    return {job_id for q in QUEUES for job_id in root.ids(q)}


def _check_audit(root: Root, repair: bool, jobs: dict[str, Lifecycle]) -> list[Finding]:
    audited, revisions = _audit_index(root, jobs)  # again: repairs above appended lines
    out: list[Finding] = []
    for jid, lc in sorted(jobs.items()):
        try:
            out += _check_audit_of(root, repair, jid, lc, audited, revisions)
        except Exception as exc:
            out.append(_failed(root, root.path / jid, exc, repair))
    return out


def _check_audit_of(
    root: Root,
    repair: bool,
    jid: str,
    lc: Lifecycle,
    audited: dict[str, int],
    revisions: dict[str, int],
) -> list[Finding]:
    out = []
    # A crash between job.json and the audit log, then a later commit (the watchdog's,
    # say): the lost revision is no longer the newest, and its state is gone with it.
    mask = revisions.get(jid, 0)
    for rev in range(1, min(lc.revision, _MAX_TRACKED_REVISION + 1)):
        if mask >> rev & 1:
            continue
        detail = f"revision {rev} is not in the audit log (a later one is)"
        if repair:
            audit.append(
                root,
                audit.record(
                    job=jid,
                    frm=None,
                    to=None,
                    actor="fsck",
                    worker=None,
                    attempt=None,
                    revision=rev,
                    reason=f"recovered: revision {rev} left no audit line; "
                    "its state is no longer known",
                    event="recovered",
                ),
            )
            out.append(Finding("unaudited", jid, detail, "added a recovered line", True))
        else:
            out.append(Finding("unaudited", jid, detail, "would add a recovered line"))
    have = audited.get(jid, 0)
    if lc.revision > have:
        if repair:
            found = _recover_locked(root, jid, lc)
            if found is not None:
                out.append(found)
        else:
            detail = _unaudited(lc, have)
            out.append(Finding("unaudited", jid, detail, "would add a recovered line"))
    return out


def _audited_now(root: Root, jid: str) -> int:
    """The highest revision the audit log records for one job, read now."""
    revs = (r.get("revision") for r in audit.read(root, jid) if r.get("job") == jid)
    return max((r for r in revs if type(r) is int), default=0)


def _recover_locked(root: Root, jid: str, lc: Lifecycle) -> Finding | None:
    """Recover the current revision only if it is still current and still unaudited.

    A live commit appends its audit line before it releases the commit lock, so under
    that lock an unaudited current revision is one whose writer crashed.
    """
    try:
        dfd = fs.open_dir(root.locate(jid))
    except (FarroError, OSError):
        return None  # gone meanwhile
    try:
        with job.commit_lock(dfd):
            if job.read_lifecycle(dfd, jid).revision != lc.revision:
                return None  # moved on: that commit audited itself (or the next fsck sees a gap)
            have = _audited_now(root, jid)
            if lc.revision <= have:
                return None
            return _recover(root, jid, lc, have)
    except FarroError:
        return None  # commit lock held for long (a stopped process) or unreadable now
    finally:
        os.close(dfd)


def _unaudited(lc: Lifecycle, have: int) -> str:
    last = have or "none"
    return f"revision {lc.revision} ({lc.status}) is not in the audit log (last: {last})"


def _recover(root: Root, jid: str, lc: Lifecycle, have: int) -> Finding:
    """Append a ``recovered`` line for the job's current, unaudited revision."""
    audit.recovered(root, lc, "fsck")
    return Finding("unaudited", jid, _unaudited(lc, have), "added a recovered line", True)
