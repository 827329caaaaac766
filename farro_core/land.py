"""``farro land``: bring a job's work commit into a branch of its repository.

Everything that can refuse is checked before anything is written: the job's
status, its work commit, the target branch, whether the work applies to the
branch's tip, and whether the branch is checked out in a dirty work tree. Only
then is the resulting commit made and the branch moved, with a compare-and-swap
on its old tip (``git update-ref NEW OLD``), so a branch that moved meanwhile is
never overwritten. A work tree that has the branch checked out is brought along
with ``read-tree -m -u``, which refuses rather than overwrite a file.

The work applies when its patch (base..work) applies to the branch's tip, with a
three-way fallback per file; the merged tree is built in a temporary index, so
the operator's index and files are not touched to find out. FARRO's hardened
git runs every command: no hook, filter or fsmonitor of the repository runs.

Landing is a record, not a transition: the job stays succeeded and its result
gains ``landed`` (when, into what, the resulting commit), with a ``landed`` line
in the audit log.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from farro_core import job
from farro_core.clock import utcnow
from farro_core.diff import OID
from farro_core.envelope import Envelope, Landing, Lifecycle
from farro_core.errors import BadInput, NotFound, Refused
from farro_core.root import Root, archived
from farro_core.transitions import Status
from farro_core.visible import visible
from farro_core.workspace import WorkspaceError, filters_off, git_bytes

Mode = Literal["squash", "merge", "ff-only"]
MODES: tuple[Mode, ...] = ("squash", "merge", "ff-only")


class LandRefused(Refused):
    """One job could not be landed; nothing of it was written."""


class LandStopped(Refused):
    """Landing several jobs stopped at one that did not land; the earlier ones did."""

    def __init__(self, message: str, done: list[Landing], stopped_at: str) -> None:
        super().__init__(message)
        self.done = done
        self.stopped_at = stopped_at


@dataclass(frozen=True)
class Plan:
    """What landing one job will do, every check passed."""

    job_id: str
    repo: Path
    into: str
    mode: Mode
    attempt: int
    base: str
    work: str
    tip: str  # the branch's tip now
    tree: str  # the tree the landed commit will have
    checked_out: Path | None  # a work tree with the branch checked out (clean)


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None,
         config: tuple[str, ...] = ()) -> tuple[int, str, str]:  # fmt: skip
    try:
        proc = git_bytes(repo, *args, check=False, env=env, stdin=stdin, config=config)
    except WorkspaceError as exc:
        raise LandRefused(str(exc)) from None
    return (
        proc.returncode,
        proc.stdout.decode(errors="surrogateescape").strip(),
        proc.stderr.decode(errors="replace").strip(),
    )


def _must(repo: Path, *args: str, env: dict[str, str] | None = None,
          stdin: bytes | None = None, config: tuple[str, ...] = ()) -> str:  # fmt: skip
    code, out, err = _git(repo, *args, env=env, stdin=stdin, config=config)
    if code != 0:
        last = err.splitlines()[-1] if err else f"exit {code}"
        raise LandRefused(f"git {args[0]} failed in {repo}: {last}")
    return out


def _rev(repo: Path, name: str) -> str | None:
    code, out, _ = _git(repo, "rev-parse", "--verify", "--quiet", name + "^{commit}")
    return out if code == 0 and out else None


def check_branch_name(name: str) -> str:
    """A branch name git accepts, else :class:`BadInput` (exit 2)."""
    if not name or name.startswith("-") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise BadInput(f"--into {visible(name)!r} is not a branch name")
    name = name.removeprefix("refs/heads/")
    code, _, _ = _git(Path("/"), "check-ref-format", f"refs/heads/{name}")
    if code != 0:
        raise BadInput(f"--into {visible(name)!r} is not a valid git branch name")
    return name


def _checked_out(repo: Path, ref: str) -> Path | None:
    """The work tree (of any worktree of ``repo``) that has ``ref`` checked out."""
    out = _must(repo, "worktree", "list", "--porcelain", "-z")
    path: str | None = None
    for field in out.split("\0"):
        if field.startswith("worktree "):
            path = field[len("worktree ") :]
        elif field == f"branch {ref}" and path is not None:
            return Path(path)
    return None


def _dirty(tree: Path) -> list[str]:
    """Tracked paths with changes, staged or not, in the work tree ``tree``."""
    off = filters_off(tree)
    args = ("status", "--porcelain=v1", "-z", "--untracked-files=no", "--ignore-submodules=none")
    try:
        proc = git_bytes(tree, *args, config=off)
    except WorkspaceError as exc:
        raise LandRefused(str(exc)) from None
    out = proc.stdout.decode(errors="surrogateescape")  # "XY path": never strip the X
    return [rec[3:] for rec in out.split("\0") if len(rec) > 3]


def _patch_base(repo: Path, base: str, work: str, tip: str) -> str:
    """Where the change to land starts: the job's base when the branch has it; else
    (a follow-up that started from its parent's unlanded work) where the branch and
    the work meet, so the parent's change comes along."""
    code, _, _ = _git(repo, "merge-base", "--is-ancestor", base, tip)
    if code == 0:
        return base
    code, out, _ = _git(repo, "merge-base", tip, work)
    return out if code == 0 and out else base


def _apply_failure(err: str) -> str:
    """The line of ``git apply --3way``'s stderr that says what does not apply: a
    conflict, else the last ``patch does not apply`` error (its last line may be
    ``Falling back to direct application...``, which names nothing)."""
    lines = [ln.strip() for ln in err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    why = next(
        (ln for ln in lines if "conflict" in ln.lower()),
        next(
            (ln for ln in reversed(errors) if "does not apply" in ln),
            errors[-1] if errors else lines[-1] if lines else "",
        ),
    )
    return why.removeprefix("error: ")


def _merged_tree(repo: Path, base: str, work: str, tip: str) -> tuple[str | None, str]:
    """The tip's tree with base..work applied (None, why: it does not apply cleanly)."""
    if tip == base:
        return _must(repo, "rev-parse", f"{work}^{{tree}}"), ""
    patch = git_bytes(
        repo, "diff-tree", "-p", "--binary", "--full-index", "--no-renames",
        "--no-ext-diff", "--no-textconv", "--no-color", base, work, check=False,
    ).stdout  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="farro-land-"))
    try:
        idx = {"GIT_INDEX_FILE": str(tmp / "index")}
        _must(repo, "read-tree", tip, env=idx)
        code, _out, err = _git(repo, "apply", "--cached", "--3way", env=idx, stdin=patch)
        if code != 0:
            return None, _apply_failure(err)
        return _must(repo, "write-tree", env=idx), ""
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _archived(jid: str) -> LandRefused:
    return LandRefused(
        f"job {jid} is archived (farro gc --archive), where its record is read-only: "
        f"bring its work in with git (git merge farro/{jid})"
    )


def plan(env: Envelope, *, into: str | None = None, mode: Mode = "squash",
         force: bool = False) -> Plan:  # fmt: skip
    """Every check landing makes, in order; raises :class:`LandRefused` on the first."""
    if mode not in MODES:
        raise BadInput(f"unknown landing mode {mode!r}: one of {', '.join(MODES)}")
    jid = env.id
    res = env.lifecycle.result
    if res is None:  # --force would not help: say so rather than suggest it
        raise LandRefused(
            f"job {jid} is {env.status} and has not finished an attempt: nothing to land"
        )
    if archived(env.path):  # refused before the branch moves: the record could not follow
        raise _archived(jid)
    if env.status is not Status.SUCCEEDED and not force:
        raise LandRefused(f"job {jid} is {env.status}, not succeeded: --force lands it anyway")
    if res is not None and res.landed is not None and not force:
        ld = res.landed
        raise LandRefused(
            f"job {jid} was landed into {ld.into} already ({ld.commit[:12]} at "
            f"{ld.at.isoformat(timespec='seconds')}): --force lands it again"
        )
    work = res.work if res is not None else None
    commit = None
    if work is not None and res is not None:
        commit = next((c.commit for c in work.commits if c.attempt == res.attempt), None)
    if res is None or work is None or not work.commits or not res.base_commit:
        raise LandRefused(f"job {jid} has no work commit to land: its workspace is not a git repo")
    if commit is None:
        raise LandRefused(f"job {jid} has nothing to land: attempt {res.attempt} changed nothing")
    for oid in (res.base_commit, commit):
        if not OID.fullmatch(oid):
            raise LandRefused(f"job {jid}: job.json names {oid[:60]!r}, not a commit id")
    assert env.prompt.workspace is not None
    repo = Path(os.path.realpath(env.prompt.workspace))
    if not repo.is_dir():
        raise LandRefused(f"job {jid}: its repository {repo} is gone")
    branch = check_branch_name(into) if into is not None else work.base_branch
    if branch is None:
        raise LandRefused(
            f"job {jid} did not start on a branch (a detached HEAD): say which with --into BRANCH"
        )
    ref = f"refs/heads/{branch}"
    tip = _rev(repo, ref)
    if tip is None:
        raise LandRefused(f"branch {visible(branch)} does not exist in {repo}")
    for what, oid in (("base", res.base_commit), ("work", commit)):
        if _rev(repo, oid) is None:
            raise LandRefused(f"job {jid}: its {what} commit {oid[:12]} is not in {repo} any more")
    if mode == "ff-only":
        code, _, _ = _git(repo, "merge-base", "--is-ancestor", tip, commit)
        if code != 0:
            raise LandRefused(
                f"job {jid}: {visible(branch)} has moved since the job's base "
                f"({res.base_commit[:12]} -> {tip[:12]}): not a fast-forward "
                "(--squash or --merge applies the work on top)"
            )
        tree = _must(repo, "rev-parse", f"{commit}^{{tree}}")
    else:
        found, why = _merged_tree(
            repo, _patch_base(repo, res.base_commit, commit, tip), commit, tip
        )
        if found is None:
            raise LandRefused(
                f"job {jid}: its work does not apply cleanly to {visible(branch)}, which moved "
                f"since the job's base ({res.base_commit[:12]} -> {tip[:12]}): {visible(why)}"
            )
        tree = found
        if tree == _must(repo, "rev-parse", f"{tip}^{{tree}}"):
            raise LandRefused(
                f"job {jid}: nothing to land, {visible(branch)} already has its change"
            )
    where = _checked_out(repo, ref)
    if where is not None:
        dirty = _dirty(where)
        if dirty:
            more = f" and {len(dirty) - 1} more" if len(dirty) > 1 else ""
            raise LandRefused(
                f"job {jid}: {visible(branch)} is checked out in {where} with uncommitted "
                f"changes ({visible(dirty[0])}{more}): commit or stash them first"
            )
    return Plan(
        job_id=jid, repo=repo, into=branch, mode=mode, attempt=res.attempt,
        base=res.base_commit, work=commit, tip=tip, tree=tree, checked_out=where,
    )  # fmt: skip


def _message(env: Envelope, p: Plan, by: str) -> bytes:
    title = " ".join(visible(env.prompt.title).split()) or f"job {env.id}"
    return (
        f"{title}\n\nfarro job {env.id}, attempt {p.attempt}, work {p.work}\n"
        f"Landed-by: {visible(by)}\n"
    ).encode()


def execute(env: Envelope, p: Plan, *, by: str) -> Landing:
    """Make the landed commit, then move the branch (and its work tree) and record it
    under the job's commit lock: gc's archive, a requeue or another landing cannot
    come between the move and its record, and a job that left since :func:`plan`
    (archived, quarantined, requeued, landed) is refused with the branch untouched."""
    if p.mode == "ff-only":
        new = p.work
    else:  # an object nothing names yet: made before the lock, which it does not need
        parents = ["-p", p.tip] + (["-p", p.work] if p.mode == "merge" else [])
        new = _must(p.repo, "commit-tree", p.tree, *parents, stdin=_message(env, p, by))
    landing = Landing(
        at=utcnow(), by=by, into=p.into, mode=p.mode, attempt=p.attempt,
        work_commit=p.work, onto=p.tip, commit=new,
    )  # fmt: skip
    assert env.lifecycle.result is not None
    planned = env.lifecycle.result.landed

    def move_branch(now: Lifecycle) -> None:
        landed = now.result.landed if now.result is not None else None
        if landed != planned:  # another `farro land` of this job recorded first
            raise LandRefused(
                f"job {env.id} was landed meanwhile (into {landed.into if landed else '?'}): "
                "the branch is left as it was"
            )
        _move_branch(env, p, new)

    try:
        job.annotate(
            env,
            by,
            f"landed into {p.into} as {new[:12]} ({p.mode})",
            event="landed",
            result=env.lifecycle.result.model_copy(update={"landed": landing}),
            before=move_branch,
        )
    except NotFound:  # it left the queues since plan(): nothing moved
        try:
            gone_to = Root(env.runtime.root).locate(env.id)
        except NotFound:
            gone_to = None
        if gone_to is not None and archived(gone_to):
            raise _archived(env.id) from None
        raise LandRefused(
            f"job {env.id} left the queue while landing (quarantined?): "
            "the branch is left as it was"
        ) from None
    return landing


def _move_branch(env: Envelope, p: Plan, new: str) -> None:
    """Compare-and-swap the branch from the plan's tip to ``new``, bringing a work
    tree that has it checked out along (and back, if the swap fails)."""
    ref = f"refs/heads/{p.into}"
    reflog = f"farro land {env.id} ({p.mode})"
    if p.checked_out is not None:
        off = filters_off(p.checked_out)
        code, _, err = _git(p.checked_out, "read-tree", "-m", "-u", p.tip, new, config=off)
        if code != 0:
            last = err.splitlines()[-1] if err else f"exit {code}"
            raise LandRefused(
                f"job {env.id}: {p.checked_out} cannot be updated to the landed commit "
                f"({visible(last)}); the branch is left as it was"
            )
        code, _, err = _git(p.repo, "update-ref", "-m", reflog, ref, new, p.tip)
        if code != 0:  # the branch moved under us: put the files back as they were
            _git(p.checked_out, "read-tree", "-m", "-u", new, p.tip, config=off)
            raise LandRefused(f"job {env.id}: {p.into} moved while landing; try again")
    else:
        code, _, err = _git(p.repo, "update-ref", "-m", reflog, ref, new, p.tip)
        if code != 0:
            raise LandRefused(f"job {env.id}: {p.into} moved while landing; try again")


def land(root: Root, job_id: str, *, into: str | None = None, mode: Mode = "squash",
         force: bool = False, by: str = "operator") -> Landing:  # fmt: skip
    env = job.load(root, job_id)
    return execute(env, plan(env, into=into, mode=mode, force=force), by=by)


def land_all(root: Root, ids: list[str], *, into: str | None = None, mode: Mode = "squash",
             force: bool = False, by: str = "operator") -> list[Landing]:  # fmt: skip
    """Land ``ids`` in order, each on the tip the previous one left; stop at the first
    that does not land (:class:`LandStopped` says which, and which were landed)."""
    done: list[Landing] = []
    for n, job_id in enumerate(ids):
        try:
            done.append(land(root, job_id, into=into, mode=mode, force=force, by=by))
        except Refused as exc:
            if len(ids) == 1:
                raise
            left = ids[n + 1 :]
            rest = f"; not tried: {', '.join(left)}" if left else ""
            raise LandStopped(
                f"stopped at job {job_id} ({len(done)} of {len(ids)} landed): {exc}{rest}",
                done,
                job_id,
            ) from None
    return done
