"""``farro fsck``: reconcile the queue directories with what each job.json says.

Like Postfix's start-up, recovery is a plain pass over the tree, not a special
mode: the same checks run whether or not anything crashed. Without ``repair``
it only reports. With it, it moves misplaced jobs to the directory their status
names, marks in-progress jobs whose worker is gone as stale, quarantines what it
cannot read (never deleting), and writes ``recovered`` audit lines for revisions
a crash kept out of the log.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from farro_core import audit, fs, job
from farro_core.envelope import Lifecycle, load_prompt
from farro_core.errors import Conflict, Corrupt, FarroError
from farro_core.ids import ID_PATTERN
from farro_core.quarantine import quarantine
from farro_core.root import QUEUES, Root
from farro_core.transitions import QUEUE_DIR, Actor, Status

TMP_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class Finding:
    kind: str  # misplaced, stale, corrupt, duplicate, leftover, symlink, unaudited, tmp
    path: str  # relative to the root
    detail: str
    action: str  # what repair did (or would do)
    repaired: bool = False


def fsck(root: Root, *, repair: bool = False, now: float | None = None) -> list[Finding]:
    now = time.time() if now is None else now
    out: list[Finding] = []
    out += _check_tmp(root, repair, now)
    jobs = _check_queues(root, repair, out, _audited(root))
    out += _check_audit(root, repair, jobs)
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
    for entry in os.scandir(root.tmp):
        age = now - entry.stat(follow_symlinks=False).st_mtime
        if age > TMP_MAX_AGE_S:
            detail = f"staging leftover, {age / 3600:.1f} h old (a create that never finished)"
            out.append(_quarantine(root, Path(entry.path), "tmp", detail, repair))
    return out


def _check_queues(
    root: Root, repair: bool, out: list[Finding], audited: dict[str, int]
) -> dict[str, Lifecycle]:
    seen: dict[str, tuple[Path, Lifecycle]] = {}
    for q in QUEUES:
        for entry in list(os.scandir(root.path / q)):
            path = Path(entry.path)
            if not ID_PATTERN.fullmatch(entry.name):
                out.append(_quarantine(root, path, "corrupt", "name is not a job id", repair))
                continue
            try:
                lc = _read_job(root, path)
            except Corrupt as exc:
                out.append(_quarantine(root, path, "corrupt", str(exc), repair))
                continue
            out += _leftovers(root, path, repair)
            if entry.name in seen:
                other_path, other = seen[entry.name]
                loser, keep = (
                    (path, other_path) if lc.revision <= other.revision else (other_path, path)
                )
                detail = f"also in {_rel(root, keep)}; keeping the higher revision"
                out.append(_quarantine(root, loser, "duplicate", detail, repair))
                if loser == other_path:
                    seen[entry.name] = (path, lc)
                continue
            seen[entry.name] = (path, lc)
    jobs: dict[str, Lifecycle] = {}
    for job_id, (path, lc) in seen.items():
        if not repair or os.path.lexists(path):
            jobs[job_id] = _check_job(root, path, lc, repair, out, audited)
    return jobs


def _read_job(root: Root, path: Path) -> Lifecycle:
    try:
        dfd = fs.open_dir(path)
    except OSError:
        raise Corrupt(f"{path.name} is not a real directory (symlink or file)") from None
    try:
        job.check_private_dir(dfd, path.name)
        lc = job.read_lifecycle(dfd, path.name)
        # from disk, not the per-process prompt cache: the file itself is what is checked
        prompt = load_prompt(job._read(dfd, job.PROMPT, path.name), f"{path.name}/{job.PROMPT}")
        if prompt.id != path.name:
            raise Corrupt(f"{path.name}/{job.PROMPT} names job {prompt.id}")
        return lc
    finally:
        os.close(dfd)


def _leftovers(root: Root, path: Path, repair: bool) -> list[Finding]:
    """Temp files of interrupted writes, and symlinks planted in the job dir (never followed)."""
    out = []
    for entry_path, kind, detail in _suspects(path):
        rel = _rel(root, entry_path)
        if repair:
            dest = quarantine_leftover(root, path, entry_path, detail)
            out.append(Finding(kind, rel, detail, f"moved to {dest}", True))
        else:
            out.append(Finding(kind, rel, detail, "would move to quarantine/"))
    return out


_PLANTED = "a symlink planted in a job directory (FARRO never follows one)"


def _suspects(path: Path) -> list[tuple[Path, str, str]]:
    found = []
    for entry in os.scandir(path):
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
                _move_locked(root, path, lc)
                out.append(Finding("misplaced", rel, detail, f"moved to {_rel(root, want)}", True))
                path = want
            except FarroError as exc:
                out.append(Finding("misplaced", rel, detail, f"not moved: {exc}"))
        else:
            out.append(Finding("misplaced", rel, detail, f"would move to {QUEUE_DIR[lc.status]}/"))
    if lc.status is Status.IN_PROGRESS and job.claim_is_free(root, path, path.name, lc.attempt):
        detail = f"in-progress but the claim lock of attempt {lc.attempt} is free (worker gone)"
        if repair:
            # A claim that crashed before its audit line: log that revision now, before
            # the stale commit supersedes it (the audit check below sees only the last).
            if lc.revision > audited.get(path.name, 0):
                out.append(_recover(root, path.name, lc, audited.get(path.name, 0)))
            try:
                env = job.load(root, path.name)
                env = job.commit(env, Status.STALE, Actor.WATCHDOG, "worker gone (found by fsck)")
                lc = env.lifecycle
                out.append(Finding("stale", rel, detail, "marked stale", True))
            except (Conflict, FarroError) as exc:
                out.append(Finding("stale", rel, detail, f"not marked: {exc}"))
        else:
            out.append(Finding("stale", rel, detail, "would mark stale"))
    return lc


def _move_locked(root: Root, path: Path, lc: Lifecycle) -> None:
    dfd = fs.open_dir(path)
    try:
        with job._commit_lock(dfd):
            here = job.where(root, path.name, dfd)
            now = job.read_lifecycle(dfd, path.name)
            if here is None or now.status is not lc.status:
                raise Conflict(f"job {path.name} moved on meanwhile")
            fs.move(here, root.path / QUEUE_DIR[now.status] / path.name)
    finally:
        os.close(dfd)


def _audited(root: Root) -> dict[str, int]:
    """The highest revision the audit log records for each job."""
    audited: dict[str, int] = {}
    for rec in audit.read(root):
        jid, rev = rec.get("job"), rec.get("revision")
        if isinstance(jid, str) and isinstance(rev, int):
            audited[jid] = max(audited.get(jid, 0), rev)
    return audited


def _audited_revisions(root: Root) -> dict[str, set[int]]:
    """Every revision the audit log records, per job."""
    revs: dict[str, set[int]] = {}
    for rec in audit.read(root):
        jid, rev = rec.get("job"), rec.get("revision")
        if isinstance(jid, str) and isinstance(rev, int):
            revs.setdefault(jid, set()).add(rev)
    return revs


def _check_audit(root: Root, repair: bool, jobs: dict[str, Lifecycle]) -> list[Finding]:
    audited = _audited(root)  # again: repairs above appended lines
    revisions = _audited_revisions(root)
    out = []
    for jid, lc in sorted(jobs.items()):
        # A crash between job.json and the audit log, then a later commit (the watchdog's,
        # say): the lost revision is no longer the newest, and its state is gone with it.
        for rev in sorted(set(range(1, lc.revision)) - revisions.get(jid, set())):
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
                out.append(_recover(root, jid, lc, have))
            else:
                detail = _unaudited(lc, have)
                out.append(Finding("unaudited", jid, detail, "would add a recovered line"))
    return out


def _unaudited(lc: Lifecycle, have: int) -> str:
    last = have or "none"
    return f"revision {lc.revision} ({lc.status}) is not in the audit log (last: {last})"


def _recover(root: Root, jid: str, lc: Lifecycle, have: int) -> Finding:
    """Append a ``recovered`` line for the job's current, unaudited revision."""
    audit.append(
        root,
        audit.record(
            job=jid,
            frm=None,
            to=lc.status,
            actor="fsck",
            worker=None,
            attempt=lc.attempt,
            revision=lc.revision,
            reason=f"recovered: {lc.reason}",
            event="recovered",
        ),
    )
    return Finding("unaudited", jid, _unaudited(lc, have), "added a recovered line", True)
