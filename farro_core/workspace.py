"""Where an attempt runs, and which paths it changed (docs/spec.md §6.3, §6.4).

Three kinds of workspace:

* ``prompt.workspace`` is the top of a git work tree: the attempt runs in the
  worker's pooled worktree of that repository under ``ROOT/worktrees/``
  (:mod:`farro_core.pool`), reset to the base, HEAD detached; its work is
  committed on branch ``farro/<id>``. Not inside the job directory, because a
  job directory moves between queues and git records a worktree's path. The base
  commit (the repo's HEAD at the first attempt) is kept as ``refs/farro/<id>/base``
  and in the job's result, so every attempt is judged against the same base, and
  every attempt starts from that base on a clean tree; each attempt's work stays
  reachable as ``refs/farro/<id>/attempt-N``.
* any other directory outside every git work tree: the agent runs in place, judged
  by a before/after snapshot. A subdirectory of a work tree is refused (the
  agent would write, and run git in, the operator's checkout): give its top.
* none: the job's own ``work/`` directory, also judged by a snapshot.

The agent can run git in its worktree, so nothing git keeps there is trusted while
judging: changes are the work tree's files compared with the base commit's tree
(never the agent's index, so no skip-worktree or assume-unchanged bit can hide an
edit; FARRO's own index of a pooled worktree only spares hashing the files whose
stat data, ctime included, are as FARRO's checkout left them and whose recorded
ctime and mtime are older than the second that index was written in: never stat
data alone when an edit in the same second could match them), ignored
paths follow the base commit's ``.gitignore`` files only, and FARRO's own git runs
with every configurable command (hooks, fsmonitor, filters, pagers, helpers) off.

Why one file of ~1,400 lines: preparing a workspace and judging what changed in it
must agree on every git setting and ignore rule; the snapshot kind (a plain
directory) is the small tail.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from farro_core import fs, locks, pool
from farro_core.envelope import Envelope, JobSpec
from farro_core.errors import BadInput, FarroError, Refused, RootError
from farro_core.root import Root
from farro_core.work import MAX_LISTED, AttemptCommit, Change, Ignored, IgnoredTop, Work

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

GIT_TIMEOUT_S = 120.0
#: config that would make git run a command, or change what FARRO sees, overridden on
#: every call: the repo's config is writable by every agent that runs in a worktree
_GIT_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "core.fileMode=true",
    "core.checkStat=default",
    "core.trustctime=true",
    "core.ignoreStat=false",
    "core.autocrlf=false",
    "core.safecrlf=false",
    "core.sparseCheckout=false",
    "core.splitIndex=false",
    "index.sparse=false",
    "index.version=2",  # the version FARRO reads its own index in (pool.index_facts)
    "index.skipHash=false",
    "feature.manyFiles=false",
    "core.pager=cat",
    "core.editor=true",
    "core.askPass=true",
    "core.sshCommand=false",
    "core.excludesFile=/dev/null",
    "core.attributesFile=/dev/null",
    "credential.helper=",
    "diff.external=",
    "gc.auto=0",
    "maintenance.auto=false",
    "commit.gpgSign=false",
    "submodule.recurse=false",
    "protocol.allow=never",
    "user.name=farro",
    "user.email=farro@localhost",
)
#: the operator's and the system's config are not read, nor any GIT_* variable of ours
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_ATTR_NOSYSTEM": "1",
    "GIT_NO_REPLACE_OBJECTS": "1",  # a planted replace ref must not rewrite the base
    "GIT_PAGER": "cat",
    "GIT_EDITOR": "true",
    "GIT_ASKPASS": "true",
    "GIT_OPTIONAL_LOCKS": "0",
}
_FILTER_KEYS = ("clean", "smudge", "process")

#: more paths than this are not passed to git as arguments
_MAX_PATH_ARGS = 1000
#: type, size, mtime_ns, mode, symlink target
Entry = tuple[str, int, int, int, str | None]
Snapshot = dict[str, Entry]


class WorkspaceError(FarroError):
    """The workspace cannot be used. ``retriable`` says whether another attempt may help."""

    def __init__(self, message: str, *, retriable: bool = False, transient: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable
        self.transient = transient  # another git process held a lock or was mid-write


#: what git says when another git process holds a lock or is halfway through a write:
#: a workspace step that failed so is run again at once, up to three times, no attempt spent
_TRANSIENT = re.compile(
    rb"index\.lock|config\.lock|\.lock'?: File exists|unable to create .*\.lock"
    rb"|cannot lock ref|failed to read .*/(commondir|gitdir|HEAD)",
    re.IGNORECASE,
)
TRANSIENT_DELAYS_S = (0.2, 1.0, 3.0)  # between tries: room for the other git to finish


@dataclass
class Workspace:
    path: Path
    kind: str  # "worktree", "dir" or "work"
    base_commit: str | None = None
    base_branch: str | None = None  # the repo's branch whose tip the base was
    repo: Path | None = None
    branch: str | None = None
    git_dir: Path | None = None  # the worktree's own git dir, found before the agent ran
    dotgit: bytes | None = None  # the worktree's .git file as FARRO wrote it
    notes: list[str] = field(default_factory=list)  # lines for the attempt's log
    before: Snapshot | None = None
    skip: str | None = None  # a subtree left out of snapshots (a FARRO root inside the dir)
    ignore: GitIgnoreSpec | None = None  # a plain directory's ignore file, read beforehand
    ignore_rules: str = ""
    work: Work | None = None  # filled in by the judging, for the job's result
    filters_off: tuple[str, ...] = ()  # read again when judging: the agent may add filters
    slot: pool.Slot | None = None  # the pooled worktree, held until the worker lets go


@dataclass
class Changes:
    """What an attempt changed. ``judged`` is what allowed_paths must cover."""

    judged: list[str]
    ignored: Ignored
    kinds: dict[str, str]  # path -> A, M, D or T, for every changed path (ignored too)
    ignored_paths: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- git


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_GIT_ENV)
    return env


def _run_git(
    cwd: Path,
    args: tuple[str, ...],
    config: tuple[str, ...],
    stdin: bytes | None,
    env: dict[str, str],
) -> subprocess.CompletedProcess[bytes]:
    argv = ["git", "-C", str(cwd), "--no-pager"]
    for item in (*_GIT_CONFIG, *config):
        argv += ["-c", item]
    try:
        return subprocess.run(
            [*argv, *args],
            capture_output=True,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            env=env,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise WorkspaceError("git is not installed, but the workspace is a git repo") from None
    except subprocess.TimeoutExpired:
        raise WorkspaceError(
            f"git {args[0]} took over {GIT_TIMEOUT_S:g}s", retriable=True
        ) from None


def git_bytes(
    cwd: Path,
    *args: str,
    check: bool = True,
    config: tuple[str, ...] = (),
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run git in ``cwd`` hardened; a failure raises a retriable :class:`WorkspaceError`."""
    full_env = _git_env()
    full_env.update(env or {})
    proc = _run_git(cwd, args, config, stdin, full_env)
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        # git's own line, not the advice it prints after it ("remove the file manually ...")
        msg = [m for m in msg if m.startswith(("fatal:", "error:"))][-1:] or msg
        raise WorkspaceError(
            f"git {' '.join([a for a in args if not a.startswith('--')][:2])} failed in {cwd}: "
            f"{msg[-1] if msg else proc.returncode}",
            retriable=True,
            transient=bool(_TRANSIENT.search(proc.stderr or b"")),
        )
    return proc


def git(
    cwd: Path, *args: str, check: bool = True, config: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """:func:`git_bytes` with text output."""
    proc = git_bytes(cwd, *args, check=check, config=config)
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="surrogateescape"),
        proc.stderr.decode(errors="replace"),
    )


def filters_off(cwd: Path, git_dir: Path | None = None) -> tuple[str, ...]:
    """Config that empties every filter driver the repo's config names.

    A ``filter`` attribute in a tracked ``.gitattributes`` makes checkout and
    staging run the driver's command, and the driver is defined in config an
    agent can write; an emptied driver is no driver. Read on every judging,
    because the agent may have added one during its run.
    """
    pre = (f"--git-dir={git_dir}",) if git_dir is not None else ()
    proc = git(
        cwd, *pre, "config", "--includes", "--name-only", "--get-regexp", "^filter[.]", check=False
    )
    names = set()
    for key in proc.stdout.splitlines():
        section, _, rest = key.partition(".")
        name, _, _var = rest.rpartition(".")
        if section.lower() == "filter" and name:
            names.add(name)
    out: list[str] = []
    for name in sorted(names):
        out += [f"filter.{name}.{k}=" for k in _FILTER_KEYS]
        out.append(f"filter.{name}.required=false")
    return tuple(out)


def _toplevel(path: Path) -> Path | None:
    try:
        proc = git(path, "rev-parse", "--show-toplevel", check=False)
    except WorkspaceError:
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return Path(os.path.realpath(proc.stdout.strip()))


def _enclosing_repo(path: Path) -> Path | None:
    """The top of the git work tree ``path`` is a subdirectory of (None: it is the top,
    or in no work tree). Git runs only when a parent holds ``.git``."""
    if not any(os.path.lexists(p / ".git") for p in path.parents):
        return None
    top = _toplevel(path)
    return top if top is not None and top != path else None


def _inside_repo(given: str, path: Path, top: Path) -> str:
    """Why a subdirectory of a repository is refused: run in place, its agent would
    write (and run git in) the operator's own checkout, with no base commit to judge by."""
    rel = path.relative_to(top).as_posix() if top in path.parents else None
    keep = f" (with --allow '{rel}/**' to keep the job to {rel}/)" if rel else ""
    return (
        f"workspace {given} is inside the git repository {top}: give {top} itself{keep}, "
        "or a directory outside any git repository"
    )


def _common_dir(path: Path) -> Path:
    out = git(path, "rev-parse", "--git-common-dir").stdout.strip()
    return Path(os.path.realpath(path / out))


# ---------------------------------------------------------------- prepare


def resolve(root: Root, env: Envelope) -> tuple[Path | None, list[str]]:
    """The real workspace directory a prompt names (None: the job's work/), and notes.

    A symlink is resolved and the resolution said in the log, never used silently;
    a workspace inside the FARRO root is refused (agents must not write the queue).
    """
    given = env.prompt.workspace
    if given is None:
        return None, []
    return resolve_path(root, given)


def resolve_path(root: Root, given: str) -> tuple[Path, list[str]]:
    """:func:`resolve` for a workspace path as given in a spec."""
    expanded = os.path.expanduser(given)
    if not os.path.isabs(expanded):
        raise WorkspaceError(f"workspace {given!r} is not an absolute path")
    real = Path(os.path.realpath(expanded))
    notes = []
    if str(real) != os.path.normpath(expanded):
        notes.append(f"workspace {given} is a symlink (or under one): resolved to {real}")
    root_real = Path(os.path.realpath(root.path))
    if real == root_real or root_real in real.parents:
        raise WorkspaceError(f"workspace {given} resolves to {real}, inside the FARRO root")
    try:
        is_dir = stat.S_ISDIR(os.stat(real).st_mode)
    except FileNotFoundError:
        raise WorkspaceError(f"workspace {given} does not exist") from None
    except OSError as exc:
        raise WorkspaceError(f"workspace {given}: {exc.strerror or exc}") from None
    if not is_dir:
        raise WorkspaceError(f"workspace {given} is not a directory")
    return real, notes


def check_specs(root: Root, specs: Sequence[JobSpec], name: str) -> None:
    """Refuse, as bad input naming the spec, a request whose workspace is :func:`unusable`.

    Each workspace is checked once: a batch of 10,000 jobs on one repository runs
    git as often as one job does, not 20,000 times.
    """
    said: dict[str, str | None] = {}
    for i, spec in enumerate(specs):
        if spec.workspace is None:
            continue
        if spec.workspace not in said:
            said[spec.workspace] = unusable(root, spec.workspace)
        why = said[spec.workspace]
        if why is not None:
            where = name if len(specs) == 1 else f"{name}: jobs[{i}]"
            raise BadInput(f"{where}: {why}")


def unusable(root: Root, given: str) -> str | None:
    """Why a job with this workspace would fail at its first attempt, or None.

    Checked at submit and in the inbox, so a workspace that does not exist, is not
    a directory, or is a git repository with no commit is refused with its reason
    then, not found out when a worker claims the job. Git runs only for a directory
    that holds ``.git``; the worker decides the same way (:func:`prepare`).
    """
    try:
        path, _ = resolve_path(root, given)
    except WorkspaceError as exc:
        return str(exc)
    if not os.path.lexists(path / ".git") or _toplevel(path) != path:
        top = _enclosing_repo(path)
        return None if top is None else _inside_repo(given, path, top)
    head = git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if head.returncode != 0 or not head.stdout.strip():
        return (
            f"workspace {given} is a git repository with no commit yet: each job's "
            "worktree branches from HEAD, so commit something first"
        )
    return None


def prepare(
    root: Root,
    env: Envelope,
    *,
    known_base: str | None = None,
    ignore_file: str | None = None,
    slots: pool.Pool | None = None,
    reuse: pool.Reuse = "clean",
    known_branch: str | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> Workspace:
    """Make the attempt's workspace ready and take whatever the judging needs beforehand.

    ``known_base`` is the base commit an earlier attempt recorded in job.json: it
    wins over the ref in the repo, which an agent could have moved. ``ignore_file``
    names a plain directory's ignore rules (relative to the workspace). A git
    workspace runs in the worker's pooled worktree of that repository, taken from
    ``slots`` (:mod:`farro_core.pool`) and reset per ``reuse``. ``known_branch`` is
    the base branch an earlier attempt recorded with that base. A git step that
    failed because another git process held a lock is run again at once (each
    retry told to ``on_retry``), without spending the job's attempt.
    """
    path, notes = resolve(root, env)
    if path is None:
        work = env.path / "work"
        try:
            fs.make_private_dir(work)
        except RootError as exc:
            raise WorkspaceError(f"the job's work/ directory: {exc}") from None
        ws = Workspace(path=work, kind="work", notes=notes)
    elif _toplevel(path) == path:
        if slots is None:  # the caller keeps no pool: this workspace holds its slot
            slots = pool.Pool(root)
        for delay in (*TRANSIENT_DELAYS_S, None):
            try:
                ws = _prepare_worktree(root, env, path, known_base, known_branch, slots, reuse)
                break
            except WorkspaceError as exc:
                if not exc.transient or delay is None:
                    raise
                line = f"workspace: {exc} (another git was busy): trying again"
                (on_retry or notes.append)(line)
                time.sleep(delay)
        ws.notes[:0] = notes
        return ws
    else:
        top = _enclosing_repo(path)
        if top is not None:
            raise WorkspaceError(_inside_repo(env.prompt.workspace or str(path), path, top))
        ws = Workspace(path=path, kind="dir", notes=notes)
        root_real = Path(os.path.realpath(root.path))
        if path in root_real.parents:
            ws.skip = root_real.relative_to(path).as_posix()
            ws.notes.append(f"the FARRO root {ws.skip}/ inside the workspace is not judged")
    if ignore_file is not None:
        _read_ignore_file(ws, ignore_file)
    ws.before = snapshot(ws.path, skip=ws.skip)
    return ws


def _read_ignore_file(ws: Workspace, name: str) -> None:
    """Read the ignore rules before the agent runs, so it cannot widen them."""
    path = Path(os.path.expanduser(name))
    if not path.is_absolute():
        path = ws.path / path
    try:
        raw = fs.read_file(path, limit=1 << 20)
    except FileNotFoundError:
        ws.notes.append(f"ignore file {path} does not exist: every changed path is judged")
        return
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"ignore file {path}: {exc}") from None
    try:
        from pathspec import GitIgnoreSpec  # judging a plain directory only: light submit

        ws.ignore = GitIgnoreSpec.from_lines(raw.decode(errors="surrogateescape").splitlines())
    except ValueError as exc:
        raise WorkspaceError(f"ignore file {path}: {exc}") from None
    ws.ignore_rules = f"ignore file {path}"
    ws.notes.append(f"ignore rules read from {path}")


def _base_branch(repo: Path, base: str) -> str | None:
    """The repo's checked-out branch when its tip is ``base`` (None: detached, or moved)."""
    proc = git(repo, "symbolic-ref", "-q", "HEAD", check=False)
    ref = proc.stdout.strip()
    if proc.returncode != 0 or not ref.startswith("refs/heads/"):
        return None
    tip = git(repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}", check=False)
    return ref.removeprefix("refs/heads/") if tip.stdout.strip() == base else None


def _prepare_worktree(
    root: Root,
    env: Envelope,
    repo: Path,
    known_base: str | None,
    known_branch: str | None,
    slots: pool.Pool,
    reuse: pool.Reuse,
) -> Workspace:
    job_id = env.id
    branch = f"farro/{job_id}"
    base_ref = f"refs/farro/{job_id}/base"
    notes = []
    proc = git(repo, "rev-parse", "--verify", "--quiet", base_ref + "^{commit}", check=False)
    base = proc.stdout.strip() if proc.returncode == 0 else ""
    if known_base:
        if base != known_base:
            git(repo, "update-ref", base_ref, known_base)
            if base:
                notes.append(f"{base_ref} had moved to {base[:12]}: set back to {known_base[:12]}")
        base = known_base
    base_branch = known_branch if known_base else None
    lineage = env.prompt.lineage
    from_work = lineage.from_work if lineage is not None else None
    if not base and from_work:
        # a follow-up that continues its parent's work: that commit is its base
        found = git(repo, "rev-parse", "--verify", "--quiet", from_work + "^{commit}", check=False)
        if found.returncode != 0 or found.stdout.strip() != from_work:
            raise WorkspaceError(
                f"the parent's work commit {from_work[:12]} is not in {repo} any more"
            )
        base = from_work
        base_branch = lineage.base_branch if lineage is not None else None
        git(repo, "update-ref", base_ref, base)
        notes.append(f"starting from job {lineage.parent if lineage else '?'}'s work {base[:12]}")
    if not base:
        head = git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        base = head.stdout.strip()
        if head.returncode != 0 or not base:
            raise WorkspaceError(f"git repo {repo} has no commit yet: nothing to branch from")
        git(repo, "update-ref", base_ref, base)
    if base_branch is None and not known_base and not from_work:
        base_branch = _base_branch(repo, base)
    # every attempt starts its branch from the base; its work moves it (commit_work)
    git(repo, "update-ref", f"refs/heads/{branch}", base)
    common = _common_dir(repo)
    off = filters_off(repo)
    slot = slots.slot(common)
    try:
        notes.append(_reset_slot(root, slot, repo, common, base, off, reuse))
    except (WorkspaceError, OSError) as exc:
        notes.append(f"worktree {slot.path} could not be reset ({exc}): made anew")
        notes.append(_create_slot(root, slot, repo, common, base, off))
    meta = slot.meta()
    if meta is None:
        raise WorkspaceError(f"{slot.meta_file} is unreadable", retriable=True)
    wt = slot.path
    try:
        dotgit = fs.read_file(wt / ".git", limit=1 << 16)
    except (OSError, ValueError) as exc:
        raise WorkspaceError(f"{wt}/.git: {exc}", retriable=True) from None
    return Workspace(
        path=wt,
        kind="worktree",
        base_commit=base,
        base_branch=base_branch,
        repo=repo,
        branch=branch,
        git_dir=Path(meta["git_dir"]),
        dotgit=dotgit,
        notes=notes,
        slot=slot,
    )


def _create_slot(
    root: Root, slot: pool.Slot, repo: Path, common: Path, base: str, off: tuple[str, ...]
) -> str:
    """A new worktree for the slot (whatever was there is removed first)."""
    slot.trusted = None
    with repo_lock(root, common):
        _discard_locked(slot.path, slot.meta(), common)
        # a lock a FARRO git killed mid-reset left would fail every later reset
        lock = slot.index_file.with_name(slot.index_file.name + ".lock")
        for f in (slot.meta_file, slot.index_file, lock):
            f.unlink(missing_ok=True)
        # forget our own registration if its directory is gone; never `worktree prune`,
        # which would also drop the operator's worktrees that are missing for now
        git(repo, "worktree", "remove", "--force", "--force", str(slot.path), check=False)
        git(repo, "worktree", "add", "-q", "-f", "--detach", str(slot.path), base, config=off)
    git_dir = Path(git(slot.path, "rev-parse", "--absolute-git-dir").stdout.strip())
    fs.write_json(
        slot.meta_file,
        {"common_dir": str(common), "git_dir": str(git_dir), "repo": str(repo)},
        durable=False,
    )
    shutil.copy2(git_dir / "index", slot.index_file)  # its mtime too: git's racy rule
    slot.trust_index()
    return f"worktree {slot.path} created at base {base[:12]}"


class _RepoLock:
    def __init__(self, root: Root, common: Path) -> None:
        self.root, self.common = root, common
        self.held: locks.Flock | None = None

    def __enter__(self) -> None:
        try:
            self.held = pool.git_lock(self.root, self.common)
        except Refused as exc:
            raise WorkspaceError(str(exc), retriable=True) from None

    def __exit__(self, *_exc: object) -> None:
        if self.held is not None:
            self.held.release()


def repo_lock(root: Root, common: Path) -> _RepoLock:
    """Around worktree add and remove: concurrent ones race in git itself."""
    return _RepoLock(root, common)


def _discard_locked(path: Path, meta: dict[str, str] | None, common: Path) -> None:
    """Remove a slot's worktree and its registration in the repo (repo lock held).

    The registration is removed only when it is the one FARRO recorded and its
    ``gitdir`` file still names this path: never another worktree's.
    """
    if meta is not None:
        git_dir = Path(meta["git_dir"])
        if git_dir.parent == common / "worktrees" and _registered_here(git_dir, path):
            pool.remove_tree(git_dir)
    pool.remove_tree(path)


def _registered_here(git_dir: Path, path: Path) -> bool:
    """Whether the worktree registration ``git_dir`` names ``path`` (its ``gitdir`` file)."""
    try:
        link = fs.read_file(git_dir / "gitdir", limit=1 << 16).decode().strip()
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return os.path.realpath(link) == os.path.realpath(path / ".git")


def discard_slot(root: Root, slot_dir: Path, meta: dict[str, str] | None) -> None:
    """Remove a pooled worktree whose slot lock the caller holds (``farro gc``)."""
    common = Path(meta["common_dir"]) if meta else None
    if common is None:
        pool.remove_tree(slot_dir)
        return
    with repo_lock(root, common):
        _discard_locked(slot_dir, meta, common)


def _put_dotgit(wt: Path, git_dir: Path) -> None:
    """The worktree's ``.git`` file as git writes it: the agent may have changed it."""
    want = f"gitdir: {git_dir}\n".encode()
    try:
        now = fs.read_file(wt / ".git", limit=1 << 16)
    except (OSError, ValueError):
        now = None
    if now != want:
        pool.remove_tree(wt / ".git")
        fs.write_file(wt / ".git", want, 0o644, durable=False)


#: what a worktree's own git dir needs; the rest is what the last job's git left there
_GIT_DIR_KEEP = frozenset({"HEAD", "commondir", "gitdir", "index"})


def _clear_git_dir(git_dir: Path) -> None:
    """Remove all but :data:`_GIT_DIR_KEEP` from the slot's own git dir: a lock the
    last agent's git left (killed mid-commit, every later ``git add`` fails), a
    merge, rebase or bisect under way, ``config.worktree``, ORIG_HEAD, the reflog."""
    if os.path.islink(git_dir):
        raise WorkspaceError(f"its git dir {git_dir} is a symlink")
    for name in os.listdir(git_dir):
        if name not in _GIT_DIR_KEEP:
            pool.remove_tree(git_dir / name)


def _reset_slot(
    root: Root,
    slot: pool.Slot,
    repo: Path,
    common: Path,
    base: str,
    off: tuple[str, ...],
    reuse: pool.Reuse,
) -> str:
    """Reset a slot's worktree to ``base``: tracked files as in base, nothing else left."""
    meta = slot.meta()
    if (
        meta is None
        or meta["common_dir"] != str(common)
        or not os.path.isdir(slot.path)
        or os.path.islink(slot.path)
    ):
        return _create_slot(root, slot, repo, common, base, off)
    git_dir = Path(meta["git_dir"])
    if git_dir.parent != common / "worktrees" or not git_dir.is_dir():
        raise WorkspaceError(f"its git dir {git_dir} is gone")
    if not _registered_here(git_dir, slot.path):
        # slot-N.json is writable by an agent: never adopt another worktree's registration
        raise WorkspaceError(f"{git_dir} is not the registration of {slot.path}")
    _put_dotgit(slot.path, git_dir)
    _clear_git_dir(git_dir)
    fs.write_file(git_dir / "gitdir", f"{slot.path}/.git\n".encode(), 0o644, durable=False)
    idx = {"GIT_INDEX_FILE": str(slot.index_file)}
    trusted = slot.index_trusted()
    slot.trusted = None

    def g(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return git_bytes(
            slot.path,
            f"--git-dir={git_dir}",
            f"--work-tree={slot.path}",
            *args,
            config=off,
            env=idx,
            stdin=stdin,
        )

    for rel in nested_dotgits(slot.path):  # git would not list them, nor what is around them
        pool.remove_tree(slot.path / rel)
    if not trusted:  # no stat data: every file is compared and written again
        slot.index_file.unlink(missing_ok=True)
        g("read-tree", base)
    else:
        # what may have changed within the second its stat data were taken in is
        # hashed, and removed unless it is the index's, so the checkout writes it
        # again whatever its stat data say; kept, it is recorded in a later second
        # by the checkout's new index, and is not racy any more
        assert slot.facts is not None
        stale = [
            p
            for p, (mode, oid) in sorted(slot.facts.racy.items())
            if not _is_entry(slot.path, p, mode, oid)
        ]
        stuck = [p for p in stale if not _unlink_below(slot.path, p)]
        if stuck:  # not a plain file under plain directories: out of the index instead
            stdin = b"".join(os.fsencode(p) + b"\0" for p in stuck)
            g("update-index", "-z", "--force-remove", "--stdin", stdin=stdin)
    g("checkout", "-q", "-f", "--no-recurse-submodules", "--detach", base)
    out = g("ls-files", "-z", "--others", "--directory").stdout
    left = [os.fsdecode(p) for p in out.split(b"\0") if p]
    kept = 0
    if reuse == "keep-ignored" and left:
        probe = Workspace(path=slot.path, kind="worktree", base_commit=base, git_dir=git_dir)
        probe.filters_off = off
        scratch = _scratch_ignores(probe)
        if scratch is not None:
            try:
                keep = _check_ignore(scratch, left)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            kept = len(keep)
            left = [p for p in left if p not in keep]
    for rel in left:
        pool.remove_tree(slot.path / rel.rstrip("/"))
    shutil.copy2(slot.index_file, git_dir / "index")  # mtime kept: git's racy rule
    slot.trust_index()
    how = "" if trusted else " (every file checked: the slot was not this worker's)"
    keep_note = f", {kept} ignored entr{'y' if kept == 1 else 'ies'} kept" if kept else ""
    return (
        f"worktree {slot.path} reused: reset to base {base[:12]}{how}, "
        f"{len(left)} untracked entr{'y' if len(left) == 1 else 'ies'} removed{keep_note}"
    )


def _parent_fd(top: Path, rel: str) -> int:
    """The directory holding ``top/rel``, opened never through a symlink or a
    non-directory on the way (an agent may have put one there); OSError if not."""
    fd = fs.open_dir(top)
    try:
        for part in rel.split("/")[:-1]:
            nfd = fs.open_dir(part, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlink_below(top: Path, rel: str) -> bool:
    """Remove the non-directory ``top/rel`` (see :func:`_parent_fd`). True: it is gone."""
    try:
        fd = _parent_fd(top, rel)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        os.unlink(rel.rsplit("/", 1)[-1], dir_fd=fd)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _is_entry(top: Path, rel: str, mode: str, oid: str) -> bool:
    """Whether ``top/rel`` holds exactly the index entry ``mode``/``oid``: a regular
    file with that executable bit and those bytes, or a symlink to that target."""
    algo = "sha1" if len(oid) == 40 else "sha256"
    name = rel.rsplit("/", 1)[-1]
    try:
        fd = _parent_fd(top, rel)
    except OSError:
        return False
    try:
        st = os.lstat(name, dir_fd=fd)
        if mode == "120000":
            return (
                stat.S_ISLNK(st.st_mode)
                and _blob_of_bytes(algo, os.fsencode(os.readlink(name, dir_fd=fd))) == oid
            )
        if mode not in ("100644", "100755") or not stat.S_ISREG(st.st_mode):
            return False
        if (mode == "100755") != bool(st.st_mode & stat.S_IXUSR):
            return False
        return _blob_of_file(algo, name, dir_fd=fd) == oid
    except OSError:
        return False
    finally:
        os.close(fd)


# ---------------------------------------------------------------- changes


def changes(ws: Workspace, *, judge_ignored: bool = False) -> Changes:
    """What the attempt changed, file by file, with the ignored writes apart."""
    if ws.kind == "worktree":
        ws.filters_off = filters_off(ws.path, ws.git_dir)
        kinds, new = _git_kinds(ws)
        ignored, ignored_dirs = _base_ignored(ws, sorted(new))
        rules = "the base commit's .gitignore files"
        tops = _tops(ignored, ignored_dirs)
    else:
        assert ws.before is not None
        after = snapshot(ws.path, skip=ws.skip)
        kinds = {}
        for p in diff(ws.before, after):
            kinds[p] = "A" if p not in ws.before else "D" if p not in after else "M"
        spec = ws.ignore
        ignored = sorted(p for p in kinds if spec is not None and spec.match_file(p))
        rules = ws.ignore_rules
        tops = _ignored_tops_spec(spec, ignored) if spec is not None else {}
    ignored_set = set(ignored)
    judged = sorted(p for p in kinds if judge_ignored or p not in ignored_set)
    top = [
        IgnoredTop(path=p, files=n) for p, n in sorted(tops.items(), key=lambda t: (-t[1], t[0]))
    ]
    return Changes(
        judged=judged,
        ignored=Ignored(
            files=len(ignored),
            top=top[:MAX_LISTED],
            judged=judge_ignored,
            rules=rules if ignored else "",
        ),
        kinds=kinds,
        ignored_paths=ignored,
    )


def _wt(
    ws: Workspace,
    *args: str,
    check: bool = True,
    config: tuple[str, ...] = (),
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """git on the worktree through the git dir found before the agent ran.

    Never through the worktree's ``.git`` file, which the agent could point elsewhere.
    """
    assert ws.git_dir is not None
    return git_bytes(
        ws.path,
        f"--git-dir={ws.git_dir}",
        f"--work-tree={ws.path}",
        *args,
        check=check,
        config=ws.filters_off + config,
        stdin=stdin,
        env=env,
    )


def _base_tree(ws: Workspace, paths: Sequence[str] = ()) -> dict[str, tuple[str, str]]:
    """The base commit's tree (only ``paths``, when given): path -> (mode, object id)."""
    assert ws.base_commit is not None
    lit = ("--literal-pathspecs",) if paths else ()
    args = ("ls-tree", "-r", "-z", "--full-tree", ws.base_commit, "--", *paths)
    out = _wt(ws, *lit, *args).stdout
    tree: dict[str, tuple[str, str]] = {}
    for rec in out.split(b"\0"):
        if not rec:
            continue
        meta, _, name = rec.partition(b"\t")
        mode, _type, oid = meta.decode().split(" ")
        tree[os.fsdecode(name)] = (mode, oid)
    return tree


def _object_hash(ws: Workspace) -> str:
    """The repo's object hash, told by the base commit's id (git printed it in full)."""
    assert ws.base_commit is not None
    return "sha256" if len(ws.base_commit) == 64 else "sha1"


def _blob_of_bytes(algo: str, data: bytes) -> str:
    h = hashlib.new(algo)
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def _blob_of_file(algo: str, path: Path | str, dir_fd: int | None = None) -> str:
    """The id git would give the file's bytes ("" when it is not a regular file any more,
    or changed while being read: either way not the base's)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ""
        h = hashlib.new(algo)
        h.update(b"blob %d\0" % st.st_size)
        left = st.st_size
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            h.update(chunk)
            left -= len(chunk)
        if left or os.read(fd, 1):
            return ""
    finally:
        os.close(fd)
    return h.hexdigest()


def _git_kinds(ws: Workspace) -> tuple[dict[str, str], set[str]]:
    """Every changed path (A/M/D/T) against the base tree, and the paths that are new.

    The work tree is read directly and each file hashed as git would store it;
    the agent's index is not consulted, so no flag set in it can hide a change.
    With FARRO's own index of a pooled worktree intact (:func:`_scan_trusted`),
    only the paths git's stat check flags are looked at.
    """
    kinds: dict[str, str] = {}
    if _dotgit_changed(ws):
        kinds[".git"] = "M"  # the worktree's link to its repo: never the agent's to change
    scanned = _scan_trusted(ws)
    if scanned is None:
        base = _base_tree(ws)
        files = snapshot(ws.path)
        files.pop(".git", None)
        new = {p for p in files if p not in base}
    else:
        dirty, new = scanned
        if len(dirty) > _MAX_PATH_ARGS:  # racy after a big checkout: not on one command line
            base = {p: e for p, e in _base_tree(ws).items() if p in dirty}
        else:
            base = _base_tree(ws, sorted(dirty)) if dirty else {}
        files = {}
        for p in dirty:
            entry = _entry(ws.path, p)
            if entry is not None:
                files[p] = entry
    algo = _object_hash(ws)
    suspects: list[str] = []  # raw bytes differ: maybe only eol conversion (attributes)
    for path, (mode, oid) in base.items():
        entry = files.get(path)
        if mode == "160000":  # a submodule: its directory is not checked out
            if entry is not None:
                kinds[path] = "T"
            continue
        if entry is None:
            kinds[path] = "D"
            continue
        kind, _size, _mtime, st_mode, target = entry
        if mode == "120000":
            if kind != "l" or target is None:
                kinds[path] = "T"
            elif _blob_of_bytes(algo, os.fsencode(target)) != oid:
                kinds[path] = "M"
            continue
        if kind != "f":
            kinds[path] = "T"
            continue
        if (mode == "100755") != bool(st_mode & stat.S_IXUSR):
            kinds[path] = "T"
            continue
        try:
            same = _blob_of_file(algo, ws.path / path) == oid
        except OSError:
            same = False
        if not same:
            suspects.append(path)
    if suspects and _has_attributes(ws, base if scanned is None else None):
        # a checkout may convert line endings; what git would store is what counts
        stdin = b"".join(os.fsencode(p) + b"\n" for p in suspects if "\n" not in p)
        proc = _wt(ws, "hash-object", "--stdin-paths", stdin=stdin, check=False)
        got = proc.stdout.decode().split() if proc.returncode == 0 else []
        same_ids = {
            p
            for p, o in zip((p for p in suspects if "\n" not in p), got, strict=False)
            if o == base[p][1]
        }
        suspects = [p for p in suspects if p not in same_ids]
    for p in suspects:
        kinds[p] = "M"
    for p in new:
        kinds[p] = "A"
    return kinds, new


def _dotgit_changed(ws: Workspace) -> bool:
    """Whether the worktree's ``.git`` is other than the file FARRO wrote."""
    try:
        st = os.lstat(ws.path / ".git")
    except FileNotFoundError:
        return ws.dotgit is not None
    except OSError:
        return True
    if not stat.S_ISREG(st.st_mode):
        return True
    try:
        now = fs.read_file(ws.path / ".git", limit=1 << 16)
    except (OSError, ValueError):
        return True
    return now != ws.dotgit


def _entry(top: Path, rel: str) -> Entry | None:
    """One path's snapshot entry (None: no file there), never following a symlink."""
    try:
        st = os.lstat(top / rel)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISDIR(st.st_mode):
        return None  # a directory where a file was: the file is gone, as in a snapshot
    target = None
    kind = "f" if stat.S_ISREG(st.st_mode) else "o"
    if stat.S_ISLNK(st.st_mode):
        kind = "l"
        try:
            target = os.readlink(top / rel)
        except OSError:
            target = None
    return (kind, st.st_size, st.st_mtime_ns, st.st_mode, target)


def nested_dotgits(top: Path) -> list[str]:
    """Every entry named ``.git`` below ``top`` (its own ``.git`` aside).

    Git lists none of them, nor what a directory holding one contains, as
    untracked; so they are looked for here, by name (no stat: the walk is cheap).
    """
    found: list[str] = []
    base = os.fspath(top)
    cut = len(base) + 1
    stack = [base]
    while stack:
        here = stack.pop()
        try:
            it = os.scandir(here)
        except OSError:
            continue
        with it:
            for entry in it:
                if entry.name == ".git":
                    if here != base:
                        found.append(entry.path[cut:])
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                except OSError:
                    continue
    return found


def _has_attributes(ws: Workspace, base: dict[str, tuple[str, str]] | None) -> bool:
    """Whether the base commit holds a .gitattributes file anywhere."""
    if base is not None:
        return any(p.rsplit("/", 1)[-1] == ".gitattributes" for p in base)
    return bool(_base_files_named(ws, ".gitattributes"))


def _base_files_named(ws: Workspace, name: str) -> list[tuple[str, str, str]]:
    """(path, mode, oid) of the base's files called ``name``: from FARRO's own index of
    the slot when it is intact (the base's tree exactly), else from the base tree."""
    slot = ws.slot
    if slot is not None and slot.facts is not None and slot.index_trusted():
        return [f for f in slot.facts.named if f[0].rsplit("/", 1)[-1] == name]
    return [
        (p, mode, oid) for p, (mode, oid) in _base_tree(ws).items() if p.rsplit("/", 1)[-1] == name
    ]


def _scan_trusted(ws: Workspace) -> tuple[set[str], set[str]] | None:
    """The base paths git's stat check flags, and every new path, from one ``ls-files``
    against FARRO's own index of the slot; None when that index cannot be trusted or
    the base has submodules (their directories hide what is inside from git).

    That index was written by FARRO's checkout at the base, before the agent ran,
    and is used only while its bytes are what FARRO wrote. Git's stat check
    includes the ctime, which a write changes and no agent can set back; every
    entry whose recorded ctime or mtime is not older than the index's own second is
    a candidate too (``Slot.facts.racy``): git's own racy rule reads the mtime only.
    Untracked entries are listed with no ignore rule at all; a nested repository
    shows as a directory and is walked here, as a snapshot would be; an entry
    named ``.git`` below the top (git lists neither it nor what is around it)
    sends the judging the slow way.
    """
    slot = ws.slot
    if slot is None or slot.facts is None or slot.gitlinks or not slot.index_trusted():
        return None
    if _dotgit_changed(ws) or nested_dotgits(ws.path):  # what git hides: read every file
        return None
    idx = {"GIT_INDEX_FILE": str(slot.index_file)}
    proc = _wt(ws, "ls-files", "-z", "-t", "-m", "-d", "-o", env=idx, check=False)
    if proc.returncode != 0 or not slot.index_trusted():
        return None
    dirty: set[str] = set(slot.facts.racy)
    new: set[str] = set()
    for rec in proc.stdout.split(b"\0"):
        if len(rec) < 3:
            continue
        tag, path = rec[:1], os.fsdecode(rec[2:])
        if tag != b"?":
            dirty.add(path)
        elif path.endswith("/"):
            sub = path.rstrip("/")
            new.update(f"{sub}/{p}" for p in snapshot(ws.path / sub))
        elif path != ".git":
            new.add(path)
    return dirty, new


def _scratch_ignores(ws: Workspace) -> Path | None:
    """A scratch repo holding only the base commit's .gitignore files (None: there are none)."""
    assert ws.base_commit is not None
    wanted = [
        (p, oid)
        for p, mode, oid in _base_files_named(ws, ".gitignore")
        if mode in ("100644", "100755")
    ]
    if not wanted:
        return None
    stdin = b"".join(oid.encode() + b"\n" for _p, oid in wanted)
    out = _wt(ws, "cat-file", "--batch", stdin=stdin).stdout
    scratch = Path(tempfile.mkdtemp(prefix="farro-ignore-"))
    try:
        git(scratch, "init", "-q", "--template=", "--initial-branch=x", ".")
        pos = 0
        for p, _oid in wanted:
            nl = out.index(b"\n", pos)
            header = out[pos:nl].split(b" ")
            size = int(header[2])
            data = out[nl + 1 : nl + 1 + size]
            pos = nl + 1 + size + 1
            target = scratch / p
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch


def _check_ignore(scratch: Path, paths: list[str]) -> set[str]:
    """Which of ``paths`` git's own rules ignore in ``scratch`` (a trailing / marks a directory).

    Every path goes in as ``./path``: a name starting with ``:`` would otherwise be
    read as pathspec magic, and ``:(top).ruff_cache`` judged as ``.ruff_cache``.
    """
    if not paths:
        return set()
    stdin = b"".join(b"./" + os.fsencode(p) + b"\0" for p in paths)
    proc = git_bytes(
        scratch, "check-ignore", "-z", "--stdin", "--no-index", stdin=stdin, check=False
    )
    if proc.returncode not in (0, 1):
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise WorkspaceError(
            f"git check-ignore failed: {msg[-1] if msg else proc.returncode}", retriable=True
        )
    return {os.fsdecode(r[2:]) for r in proc.stdout.split(b"\0") if r.startswith(b"./")}


def _base_ignored(ws: Workspace, new: list[str]) -> tuple[list[str], set[str]]:
    """The new paths the base commit's .gitignore files ignore (tracked paths never are),
    and the ignored directories above them."""
    new = [p for p in new if p.split("/", 1)[0] != ".git"]  # a .git directory is no file of ours
    if not new:
        return [], set()
    scratch = _scratch_ignores(ws)
    if scratch is None:
        return [], set()
    try:
        ignored = sorted(_check_ignore(scratch, new))
        dirs = _check_ignore(scratch, [d + "/" for d in _ancestor_dirs(ignored)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return ignored, {d.rstrip("/") for d in dirs}


def _ancestor_dirs(paths: list[str]) -> list[str]:
    dirs: set[str] = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs)


def _tops(paths: list[str], ignored_dirs: set[str]) -> dict[str, int]:
    """Count files under the highest ignored directory of each (or the file itself)."""
    counts: Counter[str] = Counter()
    for p in paths:
        parts = p.split("/")
        top = p
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d in ignored_dirs:
                top = d + "/"
                break
        counts[top] += 1
    return dict(counts)


def _ignored_tops_spec(spec: GitIgnoreSpec, ignored: list[str]) -> dict[str, int]:
    dirs = {d for d in _ancestor_dirs(ignored) if spec.match_file(d + "/")}
    return _tops(ignored, dirs)


def commit_work(ws: Workspace, job_id: str, attempt: int, found: Changes) -> str | None:
    """Commit the attempt's judged work on ``farro/<id>`` so the operator finds it there.

    The commit is built in a temporary index from the base tree plus exactly the
    changed paths that are not ignored, and its parent is the base commit, whatever
    the agent did to the branch. Returns it, or None when there is nothing to commit.
    """
    if ws.kind != "worktree":
        return None
    assert ws.base_commit is not None and ws.branch is not None and ws.git_dir is not None
    ignored = set(found.ignored_paths)
    paths = [
        p
        for p in found.kinds
        if p not in ignored and p != ".git" and ".git" not in p.split("/") and "\n" not in p
    ]
    if not paths:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="farro-index-"))
    try:
        index = tmp / "index"
        idx = {"GIT_INDEX_FILE": str(index)}
        if not _copy_trusted_index(ws, index):
            _wt(ws, "read-tree", ws.base_commit, env=idx)
        stdin = b"".join(os.fsencode(p) + b"\0" for p in paths)
        # out of the index first: update-index would keep an entry whose stat data
        # match (a same-size edit within the checkout's tick) and never hash the file
        _wt(ws, "update-index", "-z", "--force-remove", "--stdin", stdin=stdin, env=idx)
        _wt(ws, "update-index", "-z", "--add", "--remove", "--stdin", stdin=stdin, env=idx)
        tree = _wt(ws, "write-tree", env=idx).stdout.decode().strip()
        base_tree = _wt(ws, "rev-parse", ws.base_commit + "^{tree}").stdout.decode().strip()
        if tree == base_tree:
            return None
        msg = f"farro: job {job_id} attempt {attempt}".encode()
        head = _wt(ws, "commit-tree", tree, "-p", ws.base_commit, stdin=msg).stdout.decode().strip()
        # detached: a pooled worktree never holds the branch checked out, so the
        # operator can check it out, land it or delete it anywhere
        refs = (
            f"update refs/heads/{ws.branch}\0{head}\0\0"
            f"update refs/farro/{job_id}/attempt-{attempt}\0{head}\0\0"
            f"option no-deref\0update HEAD\0{head}\0\0"
        )
        _wt(ws, "update-ref", "-z", "--stdin", stdin=refs.encode())
        # the worktree's index matches its new HEAD (with stat data, when FARRO's
        # own index was the start, so a rubric's git status need not hash every file)
        shutil.copy2(index, ws.git_dir / "index")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return head


def _copy_trusted_index(ws: Workspace, dest: Path) -> bool:
    """Copy FARRO's own index of the slot (the base's tree, with stat data) to ``dest``,
    when it is still what FARRO wrote; False: start from the base with ``read-tree``."""
    slot = ws.slot
    data = slot.trusted_bytes() if slot is not None else None
    if slot is None or data is None:
        return False
    fs.write_file(dest, data, 0o600, durable=False)
    os.utime(dest, ns=(slot.written_ns, slot.written_ns))  # git's racy rule reads it
    return True


def diffstat(ws: Workspace, head: str | None, found: Changes) -> list[Change]:
    """Each changed path with its line counts (git only, where there is a commit)."""
    counts: dict[str, tuple[int | None, int | None]] = {}
    if ws.kind == "worktree" and head is not None and ws.base_commit is not None:
        out = _wt(
            ws,
            "diff-tree",
            "-r",
            "-z",
            "--numstat",
            "--no-renames",
            "--no-ext-diff",
            "--no-textconv",
            ws.base_commit,
            head,
        ).stdout
        for rec in out.split(b"\0"):
            if not rec:
                continue
            added, deleted, name = rec.split(b"\t", 2)
            counts[os.fsdecode(name)] = (
                int(added) if added != b"-" else None,
                int(deleted) if deleted != b"-" else None,
            )
    ignored = set(found.ignored_paths)
    out_list = []
    for p in sorted(found.kinds):
        if p in ignored:
            continue
        ins, dels = counts.get(p, (None, None))
        out_list.append(Change(path=p, change=found.kinds[p], insertions=ins, deletions=dels))
    return out_list


def record(
    ws: Workspace, found: Changes, head: str | None, attempt: int, previous: Work | None
) -> Work:
    """The attempt's work as kept in the job's result: earlier attempts' commits carried on."""
    listed = diffstat(ws, head, found)
    commits = [c for c in (previous.commits if previous else []) if c.attempt < attempt]
    if ws.kind == "worktree":
        commits.append(AttemptCommit(attempt=attempt, commit=head))
    return Work(
        branch=ws.branch,
        base_branch=ws.base_branch,
        commits=commits,
        changed=listed[:MAX_LISTED],
        changed_count=len(listed),
        insertions=sum(c.insertions or 0 for c in listed),
        deletions=sum(c.deletions or 0 for c in listed),
        ignored=found.ignored,
    )


def ignored_note(ignored: Ignored) -> str | None:
    """One log line about the ignored writes (None when there were none)."""
    if not ignored.files:
        return None
    tops = ", ".join(f"{t.path} ({t.files})" for t in ignored.top[:10])
    more = f", … {len(ignored.top) - 10} more" if len(ignored.top) > 10 else ""
    how = "judged like any other" if ignored.judged else "not judged"
    n = ignored.files
    return f"{n} ignored path{'' if n == 1 else 's'} ({ignored.rules}), {how}: {tops}{more}"


# ---------------------------------------------------------------- snapshots


def snapshot(top: Path, skip: str | None = None) -> Snapshot:
    """Every non-directory entry below ``top``, never following a symlink.

    Directories are left out, as git leaves them out: a directory's mtime changes
    whenever a file in it does, which would report ``src`` for an allowed ``src/a.py``.
    """
    out: Snapshot = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            it = os.scandir(top / rel if rel else top)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with it:
            for entry in it:
                name = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    if name != skip:
                        stack.append(name)
                    continue
                target = None
                kind = "f" if stat.S_ISREG(st.st_mode) else "o"
                if stat.S_ISLNK(st.st_mode):
                    kind = "l"
                    try:
                        target = os.readlink(entry.path)
                    except OSError:
                        target = None
                out[name] = (kind, st.st_size, st.st_mtime_ns, st.st_mode, target)
    return out


def diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Created, modified (type, size, mtime, mode or target) and deleted paths, sorted."""
    changed = {p for p in before.keys() ^ after.keys()}
    changed.update(p for p in before.keys() & after.keys() if before[p] != after[p])
    return sorted(changed)
