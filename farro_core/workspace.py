"""Where an attempt runs, and which paths it changed (SPEC section 6).

Three kinds of workspace:

* ``prompt.workspace`` is the top of a git work tree: the job gets its own git
  worktree on branch ``farro/<id>`` under ``ROOT/worktrees/<id>/``. Not inside the
  job directory, because a job directory moves between queues and git records
  a worktree's path. The base commit (the repo's HEAD at the first attempt) is
  kept as ``refs/farro/<id>/base`` so every attempt is judged against the same
  base, and every attempt starts from that base on a clean tree; the previous
  attempt's work stays reachable as ``refs/farro/<id>/attempt-N``.
* any other directory: the agent runs in place, judged by a before/after snapshot.
* none: the job's own ``work/`` directory, also judged by a snapshot.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from farro_core import fs
from farro_core.envelope import Envelope, JobSpec
from farro_core.errors import BadInput, FarroError, RootError
from farro_core.root import Root

GIT_TIMEOUT_S = 120.0
# FARRO's own git calls run no hooks of the repo (a post-checkout hook could run
# anything), and see mode changes even where the repo's config turned fileMode off:
# the worktree lives under the root, on a file system with real modes.
_GIT_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fileMode=true")
_GIT_ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_PREFIX")

#: type, size, mtime_ns, mode, symlink target
Entry = tuple[str, int, int, int, str | None]
Snapshot = dict[str, Entry]


class WorkspaceError(FarroError):
    """The workspace cannot be used. ``retriable`` says whether another attempt may help."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


@dataclass
class Workspace:
    path: Path
    kind: str  # "worktree", "dir" or "work"
    base_commit: str | None = None
    repo: Path | None = None
    notes: list[str] = field(default_factory=list)  # lines for the attempt's log
    before: Snapshot | None = None
    skip: str | None = None  # a subtree left out of snapshots (a FARRO root inside the dir)


# ---------------------------------------------------------------- git


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run git in ``cwd``; a failure raises a retriable :class:`WorkspaceError`."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(cwd), *_GIT_CONFIG, *args],
            capture_output=True,
            text=True,
            env=_git_env(),
            stdin=subprocess.DEVNULL,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise WorkspaceError("git is not installed, but the workspace is a git repo") from None
    except subprocess.TimeoutExpired:
        raise WorkspaceError(
            f"git {args[0]} took over {GIT_TIMEOUT_S:g}s", retriable=True
        ) from None
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise WorkspaceError(
            f"git {' '.join(args[:2])} failed in {cwd}: {msg[-1] if msg else proc.returncode}",
            retriable=True,
        )
    return proc


def _toplevel(path: Path) -> Path | None:
    try:
        proc = git(path, "rev-parse", "--show-toplevel", check=False)
    except WorkspaceError:
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return Path(os.path.realpath(proc.stdout.strip()))


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
    """Refuse, as bad input naming the spec, a request whose workspace is :func:`unusable`."""
    for i, spec in enumerate(specs):
        if spec.workspace is None:
            continue
        why = unusable(root, spec.workspace)
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
        return None
    head = git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    if head.returncode != 0 or not head.stdout.strip():
        return (
            f"workspace {given} is a git repository with no commit yet: each job's "
            "worktree branches from HEAD, so commit something first"
        )
    return None


def prepare(root: Root, env: Envelope) -> Workspace:
    """Make the attempt's workspace ready and take whatever the judging needs beforehand."""
    path, notes = resolve(root, env)
    if path is None:
        work = env.path / "work"
        try:
            fs.make_private_dir(work)
        except RootError as exc:
            raise WorkspaceError(f"the job's work/ directory: {exc}") from None
        ws = Workspace(path=work, kind="work", notes=notes)
    elif _toplevel(path) == path:
        ws = _prepare_worktree(root, env, path)
        ws.notes[:0] = notes
        return ws
    else:
        ws = Workspace(path=path, kind="dir", notes=notes)
        root_real = Path(os.path.realpath(root.path))
        if path in root_real.parents:
            ws.skip = root_real.relative_to(path).as_posix()
            ws.notes.append(f"the FARRO root {ws.skip}/ inside the workspace is not judged")
    ws.before = snapshot(ws.path, skip=ws.skip)
    return ws


def worktree_path(root: Root, job_id: str) -> Path:
    return root.path / "worktrees" / job_id


def _prepare_worktree(root: Root, env: Envelope, repo: Path) -> Workspace:
    job_id = env.id
    branch = f"farro/{job_id}"
    base_ref = f"refs/farro/{job_id}/base"
    proc = git(repo, "rev-parse", "--verify", "--quiet", base_ref + "^{commit}", check=False)
    base = proc.stdout.strip() if proc.returncode == 0 else ""
    if not base:
        head = git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
        base = head.stdout.strip()
        if head.returncode != 0 or not base:
            raise WorkspaceError(f"git repo {repo} has no commit yet: nothing to branch from")
        git(repo, "update-ref", base_ref, base)
    fs.make_private_dir(root.path / "worktrees")
    wt = worktree_path(root, job_id)
    notes = []
    if os.path.lexists(wt):
        if (
            wt.is_symlink()
            or _toplevel(wt) != Path(os.path.realpath(wt))
            or _common_dir(wt) != _common_dir(repo)
        ):
            raise WorkspaceError(f"{wt} exists but is not a git worktree of {repo}: move it away")
        git(wt, "checkout", "-q", "-f", "-B", branch, base)
        git(wt, "clean", "-q", "-ffdx")
        notes.append(f"worktree {wt} reset to base {base[:12]} on branch {branch}")
    else:
        # forget our own registration if its directory is gone; never `worktree prune`,
        # which would also drop the operator's worktrees that are missing for now
        git(repo, "worktree", "remove", "--force", str(wt), check=False)
        git(repo, "worktree", "add", "-q", "-f", "-B", branch, str(wt), base)
        notes.append(f"worktree {wt} created on branch {branch} at base {base[:12]}")
    return Workspace(path=wt, kind="worktree", base_commit=base, repo=repo, notes=notes)


# ---------------------------------------------------------------- changes


def changed_paths(ws: Workspace) -> list[str]:
    """Every path the attempt created, modified, deleted, renamed (both names),
    re-moded or turned into a symlink, relative to the workspace, sorted."""
    if ws.kind == "worktree":
        return _git_changes(ws)
    assert ws.before is not None
    return diff(ws.before, snapshot(ws.path, skip=ws.skip))


def _git_changes(ws: Workspace) -> list[str]:
    assert ws.base_commit is not None
    git(ws.path, "add", "-A")
    out = git(ws.path, "diff", "--cached", "--name-status", "-z", "-M", ws.base_commit)
    paths: set[str] = set()
    fields = out.stdout.split("\0")
    i = 0
    while i < len(fields) and fields[i]:
        code = fields[i]
        n = 2 if code[:1] in ("R", "C") else 1
        paths.update(fields[i + 1 : i + 1 + n])
        i += 1 + n
    # ignored files are not staged, but this attempt made them (the tree started clean)
    ignored = git(
        ws.path, "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"
    )
    paths.update(p.rstrip("/") for p in ignored.stdout.split("\0") if p)
    return sorted(paths)


def commit_work(ws: Workspace, job_id: str, attempt: int) -> str | None:
    """Commit the staged work on ``farro/<id>`` so the operator finds it there.

    Returns the new commit, or None when the attempt left nothing to commit.
    Called after :func:`changed_paths` (which staged everything).
    """
    if ws.kind != "worktree":
        return None
    if git(ws.path, "diff", "--cached", "--quiet", check=False).returncode == 0:
        return None
    git(
        ws.path,
        "-c",
        "user.name=farro",
        "-c",
        "user.email=farro@localhost",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-q",
        "--no-verify",
        "-m",
        f"farro: job {job_id} attempt {attempt}",
    )
    head = git(ws.path, "rev-parse", "HEAD").stdout.strip()
    git(ws.path, "update-ref", f"refs/farro/{job_id}/attempt-{attempt}", head)
    return head


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
