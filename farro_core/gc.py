"""``farro gc``: remove what FARRO made and no longer needs, and say what it freed.

What it removes, and only that:

* pooled worktrees no live worker holds (:mod:`farro_core.pool`; the slot's
  lock is taken first, so no worker can start using it meanwhile), and the
  per-job worktrees ``ROOT/worktrees/<id>/`` older versions made, of jobs that
  are finished or gone;
* the ``farro/<id>`` branch and ``refs/farro/<id>/*`` refs of selected finished
  jobs. By default every finished job but the succeeded ones (their branch is the
  work) unless a landing is recorded; ``--status succeeded`` names them explicitly;
* attempt logs of selected finished jobs beyond the latest ``gc_keep_logs``;
* with ``--archive``, the selected finished jobs older than ``--older-than``
  move to ``ROOT/archive/`` (under their commit lock), where ``show``,
  ``history`` and ``logs`` still find them; no transition moves them again.

Queued, running and stale jobs are never selected, nor the refs of a job whose work
one of them continues (``farro retry --from-work``). A job marked kept (``farro
keep``) is left as it is whatever the selection: its branch, refs, logs, its old
per-job worktree, and its directory (never archived: the mark could not be taken
back there, and gc never looks at an archived job again). Refs are removed only where
the job's own record (its branch in the result) says FARRO made them, and a
``farro/<id>`` branch only while it is where FARRO left it (the base or an
attempt's work commit) and checked out nowhere: once the operator checks it out
or commits on it, it is theirs. Every removal is one audit line (``event: gc``).
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from farro_core import audit, fs, locks, pool, workspace
from farro_core.clock import utcnow
from farro_core.envelope import Envelope
from farro_core.errors import BadInput, FarroError, NotFound, Refused
from farro_core.ids import ID_PATTERN
from farro_core.job import load, read_lifecycle, where
from farro_core.locks import COMMIT_LOCK
from farro_core.operations import select
from farro_core.root import Root

FINISHED = ("succeeded", "failed", "killed")
_LOG = re.compile(r"^attempt-([0-9]+)\.")


@dataclass
class Report:
    """What a run freed (or, dry, would free)."""

    dry_run: bool
    files: int = 0
    bytes: int = 0
    branches: int = 0
    refs: int = 0
    worktrees: int = 0
    logs: int = 0
    archived: int = 0
    #: selected jobs left as they are, marked kept (``farro keep``)
    marked: int = 0
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would free" if self.dry_run else "freed"
        return (
            f"{verb} {self.files} file{'' if self.files == 1 else 's'} "
            f"({_size(self.bytes)}) in {self.worktrees} worktree"
            f"{'' if self.worktrees == 1 else 's'} and {self.logs} log"
            f"{'' if self.logs == 1 else 's'}, {self.branches} branch"
            f"{'' if self.branches == 1 else 'es'} and {self.refs} other ref"
            f"{'' if self.refs == 1 else 's'}"
            + (
                f"; {'would move' if self.dry_run else 'moved'} {self.archived} job"
                f"{'' if self.archived == 1 else 's'} to archive/"
                if self.archived
                else ""
            )
            + (
                f"; left {self.marked} job{'' if self.marked == 1 else 's'} marked kept as "
                f"{'it is' if self.marked == 1 else 'they are'}"
                if self.marked
                else ""
            )
        )


_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d|w)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` or bare seconds; anything else is bad input."""
    m = _DURATION.fullmatch(text.strip().lower())
    if m is None:
        raise BadInput(f"--older-than {text!r}: expected a number with s, m, h, d or w (e.g. 30d)")
    return float(m.group(1)) * _UNIT_S[m.group(2) or "s"]


_DRY = {"removed": "remove", "moved": "move"}


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


def _usage(path: Path) -> tuple[int, int]:
    """Files and bytes under ``path``, never following a symlink."""
    files = size = 0
    stack = [str(path)]
    while stack:
        top = stack.pop()
        try:
            it = os.scandir(top)
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                else:
                    files += 1
                    size += st.st_blocks * 512
    return files, size


def _audit(root: Root, report: Report, job: str | None, what: str) -> None:
    """One removal: said, and (unless dry) written to the audit log."""
    if report.dry_run:
        verb, _, rest = what.partition(" ")
        report.lines.append(f"would {_DRY.get(verb, verb)} {rest}")
        return
    report.lines.append(what)
    audit.append(
        root,
        {
            "ts": utcnow().isoformat().replace("+00:00", "Z"),
            "event": "gc",
            "job": job,
            "actor": "gc",
            "reason": what,
        },
    )


def run(
    root: Root,
    *,
    dry_run: bool = False,
    older_than_s: float | None = None,
    statuses: Collection[str] | None = None,
    labels: Mapping[str, str] | None = None,
    keep_logs: int | None = None,
    archive: bool = False,
) -> Report:
    """One collection; ``statuses`` None is the default selection (see the module).

    ``archive`` moves the selected finished jobs (``older_than_s`` is then required)
    into ``ROOT/archive/``, where show, history and logs still find them.
    """
    if archive and older_than_s is None:
        raise BadInput("--archive needs --older-than: which finished jobs are old enough")
    report = Report(dry_run=dry_run)
    keep = root.settings.gc_keep_logs if keep_logs is None else keep_logs
    _worktrees(root, report)
    explicit = statuses is not None
    wanted = [s for s in (statuses if statuses is not None else FINISHED) if s in FINISHED]
    cutoff = time.time() - older_than_s if older_than_s is not None else None
    continued: dict[str, str] | None = None  # read once, and only when refs may go
    for job_id in select(root, wanted, labels).ids:
        try:
            env = load(root, job_id)
        except FarroError:
            continue
        if env.status not in FINISHED:
            continue
        if cutoff is not None and env.lifecycle.updated_at.timestamp() > cutoff:
            continue
        if env.lifecycle.kept is not None:
            report.marked += 1
            report.lines.append(_kept_line(env))
            continue
        refs = env.status != "succeeded" or explicit or _landed(env)
        if refs:
            continued = _continued(root) if continued is None else continued
            if job_id in continued:
                refs = False
                report.lines.append(
                    f"kept the refs of {job_id}: job {continued[job_id]} starts from its work"
                )
        _collect(root, env, keep, report, refs=refs, archive=archive)
    return report


def _kept_line(env: Envelope) -> str:
    assert env.lifecycle.kept is not None
    return (
        f"kept job {env.id} as it is (branch, refs, logs): marked kept {env.lifecycle.kept.text()}"
    )


def _continued(root: Root) -> dict[str, str]:
    """Parent id -> a queued, running or stale follow-up that starts from the parent's
    work (``farro retry --from-work``): until it runs, only the parent's refs hold
    that commit."""
    out: dict[str, str] = {}
    for job_id in select(root, ("queued", "in-progress", "stale")).ids:
        try:
            lineage = load(root, job_id).prompt.lineage
        except FarroError:
            continue
        if lineage is not None and lineage.from_work:
            out.setdefault(lineage.parent, job_id)
    return out


def _collect(
    root: Root, env: Envelope, keep: int, report: Report, *, refs: bool, archive: bool
) -> None:
    """A finished job's old logs, its refs (``refs``), then (``archive``) its directory to
    ``ROOT/archive/``: all under its commit lock, as the job is now. A job that moved on
    since it was selected (requeued, landed, marked kept) is left to the next run."""
    if archive and not report.dry_run:
        fs.make_private_dir(root.archive)
    try:
        dfd = fs.open_dir(env.runtime.path)
    except OSError:
        return  # it moved meanwhile (requeued?): not ours to collect now
    try:
        try:
            held = locks.lock(dfd, COMMIT_LOCK, timeout=10.0)
        except Refused:
            return
        try:
            here = where(root, env.id, dfd)
            if here is None:
                return
            try:
                lc = read_lifecycle(dfd, env.id)
            except FarroError:
                return
            if lc.revision != env.lifecycle.revision:
                if lc.kept is not None:  # marked meanwhile: said as if marked before
                    report.marked += 1
                    report.lines.append(_kept_line(env.model_copy(update={"lifecycle": lc})))
                return
            _logs(root, env, keep, report)
            if refs:
                _refs(root, env, report)
            if archive:
                if not report.dry_run:
                    fs.move(here, root.archive / env.id)
                report.archived += 1
                _audit(root, report, env.id, f"moved {here} to {root.archive / env.id}")
        finally:
            held.release()
    finally:
        os.close(dfd)


def _landed(env: Envelope) -> bool:
    """Whatever landing mark the job's record carries (``farro land``)."""
    for holder in (env.lifecycle, env.lifecycle.result):
        if holder is not None and getattr(holder, "landed", None):
            return True
    return False


def _worktrees(root: Root, report: Report) -> None:
    for info in pool.scan(root):
        slot_dir = info.key_dir / f"slot-{info.number}"
        if info.in_use or not os.path.lexists(slot_dir):
            continue
        dir_fd = fs.open_dir(info.key_dir)
        try:
            held = locks.try_lock(dir_fd, f"slot-{info.number}.lock")
        finally:
            os.close(dir_fd)
        if held is None:  # a worker took it meanwhile
            continue
        try:
            files, size = _usage(slot_dir)
            beside = [info.key_dir / f"slot-{info.number}{sfx}" for sfx in (".json", ".index")]
            for path in beside:  # FARRO's record and index of the slot go with it
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                files += 1
                size += st.st_blocks * 512
            if not report.dry_run:
                workspace.discard_slot(root, slot_dir, info.meta)
                for path in beside:
                    path.unlink(missing_ok=True)
            report.files += files
            report.bytes += size
            report.worktrees += 1
            _audit(root, report, None, f"removed worktree {slot_dir} (no worker holds it)")
        finally:
            held.release()
    _legacy_worktrees(root, report)


def _legacy_worktrees(root: Root, report: Report) -> None:
    """``ROOT/worktrees/<id>/`` of finished or vanished jobs (FARRO before pooling)."""
    top = pool.pool_dir(root)
    try:
        names = sorted(os.listdir(top))
    except FileNotFoundError:
        return
    for name in names:
        path = top / name
        if not ID_PATTERN.fullmatch(name) or not _is_legacy_worktree(path):
            continue
        try:
            env: Envelope | None = load(root, name)
        except NotFound:
            env = None
        except FarroError:
            continue
        if env is not None and env.status not in FINISHED:
            continue
        if env is not None and env.lifecycle.kept is not None:
            report.lines.append(f"kept worktree {path}: its job is marked kept (farro keep)")
            continue
        files, size = _usage(path)
        if not report.dry_run:
            _remove_legacy(root, path)
        report.files += files
        report.bytes += size
        report.worktrees += 1
        _audit(root, report, name, f"removed worktree {path} (its job is finished or gone)")


def _is_legacy_worktree(path: Path) -> bool:
    """A directory holding a worktree's ``.git`` file, as ``git worktree add`` writes it
    (a pool's directory holds slots and lock files, never that)."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        text = fs.read_file(path / ".git", limit=1 << 12).decode()
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return text.startswith("gitdir: ") and "/worktrees/" in text


def _remove_legacy(root: Root, path: Path) -> None:
    try:
        common = Path(
            os.path.realpath(
                path / workspace.git(path, "rev-parse", "--git-common-dir").stdout.strip()
            )
        )
    except workspace.WorkspaceError:
        pool.remove_tree(path)
        return
    with workspace.repo_lock(root, common):
        workspace.git(
            path,
            f"--git-dir={common}",
            "worktree",
            "remove",
            "--force",
            "--force",
            str(path),
            check=False,
        )
    pool.remove_tree(path)


def _logs(root: Root, env: Envelope, keep: int, report: Report) -> None:
    logs = env.path / "logs"
    try:
        names = os.listdir(logs)
    except OSError:
        return
    attempts = sorted({int(m.group(1)) for n in names if (m := _LOG.match(n))})
    old = set(attempts[:-keep]) if keep > 0 else set(attempts)
    for n in sorted(old):
        gone = [x for x in names if (m := _LOG.match(x)) and int(m.group(1)) == n]
        for name in gone:
            p = logs / name
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if not report.dry_run:
                p.unlink(missing_ok=True)
            report.files += 1
            report.bytes += st.st_blocks * 512
        report.logs += 1
        _audit(root, report, env.id, f"{_logs_removed(n)}(keeping the last {keep})")


def _logs_removed(attempt: int) -> str:
    """How gc's audit line of an attempt's removed logs starts (:func:`removed_logs`)."""
    return f"removed the logs of attempt {attempt} "


def removed_logs(root: Root, job_id: str, attempt: int) -> dict[str, Any] | None:
    """gc's audit record of removing the logs of ``attempt`` (the last, should a job of
    that id have come back), or None: gc did not remove them."""
    said = _logs_removed(attempt)
    found = None
    for rec in audit.read(root, job_id):
        if (
            rec.get("job") == job_id
            and rec.get("event") == "gc"
            and str(rec.get("reason", "")).startswith(said)
        ):
            found = rec
    return found


def _refs(root: Root, env: Envelope, report: Report) -> None:
    res = env.lifecycle.result
    if res is None or res.work is None or res.work.branch != f"farro/{env.id}":
        return  # no branch on record: nothing FARRO made
    if env.prompt.workspace is None:
        return
    branch = f"refs/heads/farro/{env.id}"
    try:
        repo, _ = workspace.resolve_path(root, env.prompt.workspace)
        listed = workspace.git(
            repo,
            "for-each-ref",
            "--format=%(refname)%00%(objectname)%00%(worktreepath)",
            branch,
            f"refs/farro/{env.id}/",
        )
    except workspace.WorkspaceError:
        return
    rows = [[*line.split("\0"), "", ""][:3] for line in listed.stdout.splitlines()]
    # what FARRO left the branch at: the base, or an attempt's work commit (recorded, or
    # kept by its attempt ref when the worker died before recording it)
    ours = {res.base_commit} | {c.commit for c in res.work.commits}
    ours |= {oid for ref, oid, _ in rows if ref.startswith(f"refs/farro/{env.id}/attempt-")}
    for ref, oid, checked_out in rows:
        if ref != branch and not ref.startswith(f"refs/farro/{env.id}/"):
            continue
        if ref == branch and (checked_out or oid not in ours):
            # the operator's now: deleting it would leave their worktree on an
            # unborn branch, or drop commits FARRO did not make
            why = f"checked out in {checked_out}" if checked_out else "moved past FARRO's work"
            report.lines.append(f"kept {ref} in {repo}: {why}")
            continue
        if not report.dry_run:
            # only at the value seen: a branch moved meanwhile is not deleted
            proc = workspace.git(repo, "update-ref", "-d", ref, oid, check=False)
            if proc.returncode != 0:
                report.lines.append(f"could not remove {ref} in {repo}: {proc.stderr.strip()}")
                continue
        if ref == branch:
            report.branches += 1
        else:
            report.refs += 1
        _audit(root, report, env.id, f"removed {ref} in {repo}")
