"""Many workers on one repository: git's own races never cost a job its attempt.

Parallel ``git worktree add`` calls on one repository race in git itself (a half-made
``.git/worktrees/<other>`` makes the next add fail), so FARRO takes turns per repository
and runs a git step again at once when another git process held a lock.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from farro_core.api import submit
from farro_core.envelope import Envelope
from farro_core.root import Root
from farro_core.transitions import TERMINAL, Status

from .helpers import Headless, load, make_root, wait_until

#: what a failed git step looks like in a reason or a log ("git worktree add failed in ...")
GIT_FAILED = re.compile(r"git [\w-]+( [\w-]+)? failed|fatal:|commondir")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _repo(path: Path) -> Path:
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "t@example.com")
    _git(path, "config", "user.name", "t")
    (path / "README.md").write_text("readme\n")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "initial")
    return path


def _submit_editors(root: Root, repo: Path, n: int) -> list[tuple[Envelope, str]]:
    """``n`` jobs, each writing its own file and allowed only that one, one attempt each."""
    out = []
    for i in range(n):
        name = f"f{i}.txt"
        agent = ["/bin/sh", "-c", f"echo job {i} > {name}"]
        env = submit(
            root,
            f"write {name}",
            agent=agent,
            workspace=str(repo),
            allowed_paths=[name],
            max_attempts=1,
        )
        out.append((env, name))
    return out


def _all_done(root: Root, ids: list[str]) -> bool:
    return all((e := load(root, i)) is not None and e.status in TERMINAL for i in ids)


def _states(root: Root, ids: list[str]) -> str:
    return json.dumps({i: str(e.status) if (e := load(root, i)) else None for i in ids})


def _check(root: Root, repo: Path, jobs: list[tuple[Envelope, str]]) -> None:
    base = _git(repo, "rev-parse", "main")
    for submitted, name in jobs:
        env = load(root, submitted.id)
        assert env is not None
        logs = "".join(p.read_text(errors="replace") for p in (env.path / "logs").glob("*.log"))
        assert env.status is Status.SUCCEEDED, (env.lifecycle.reason, logs)
        assert env.lifecycle.attempt == 1, logs
        assert not GIT_FAILED.search(env.lifecycle.reason or ""), env.lifecycle.reason
        assert not GIT_FAILED.search(logs), logs
        branch = f"farro/{env.id}"
        assert _git(repo, "rev-parse", f"{branch}^") == base  # one work commit on the base
        changed = _git(repo, "diff", "--name-only", base, branch).splitlines()
        assert changed == [name]
        assert _git(repo, "show", f"{branch}:{name}") == f"job {name[1:-4]}"


def test_eight_workers_on_one_repo_all_succeed_at_attempt_one(
    tmp_path: Path, procs: list[Headless]
) -> None:
    root = make_root(tmp_path / "root", agent="true")
    repo = _repo(tmp_path / "repo")
    jobs = _submit_editors(root, repo, 8)
    procs.append(Headless(root, tmp_path / "a.log", "--workers", "8"))
    ids = [e.id for e, _ in jobs]
    wait_until(
        lambda: _all_done(root, ids), "all 8 jobs ended", 120, diagnose=lambda: _states(root, ids)
    )
    _check(root, repo, jobs)


def test_three_systems_of_four_workers_on_one_repo_all_succeed(
    tmp_path: Path, procs: list[Headless]
) -> None:
    root = make_root(tmp_path / "root", agent="true")
    repo = _repo(tmp_path / "repo")
    jobs = _submit_editors(root, repo, 24)
    for k in range(3):
        procs.append(Headless(root, tmp_path / f"{k}.log", "--workers", "4"))
    ids = [e.id for e, _ in jobs]
    wait_until(
        lambda: _all_done(root, ids), "all 24 jobs ended", 240, diagnose=lambda: _states(root, ids)
    )
    _check(root, repo, jobs)


def test_a_ref_lock_held_by_another_git_is_waited_out_without_spending_the_attempt(
    tmp_path: Path, procs: list[Headless]
) -> None:
    root = make_root(tmp_path / "root", agent="true")
    repo = _repo(tmp_path / "repo")
    [(env, name)] = _submit_editors(root, repo, 1)
    # another git process is halfway through updating the job's branch: its lock file is there
    lock = repo / ".git" / "refs" / "heads" / "farro" / f"{env.id}.lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"")
    procs.append(Headless(root, tmp_path / "a.log", "--workers", "1"))

    def log_text() -> str:
        now = load(root, env.id)  # the job's directory moves as its status does
        log = now.path / "logs" / "attempt-1.log" if now is not None else None
        return log.read_text(errors="replace") if log is not None and log.exists() else ""

    def retried() -> bool:
        return "another git was busy" in log_text()

    wait_until(
        retried,
        "the worker to say it tries the git step again",
        diagnose=log_text,
    )
    os.unlink(lock)  # the other git is done
    wait_until(lambda: _all_done(root, [env.id]), "the job to end")
    done = load(root, env.id)
    assert done is not None
    text = log_text()
    assert done.status is Status.SUCCEEDED, (done.lifecycle.reason, text)
    assert done.lifecycle.attempt == 1, text
    assert f"{env.id}.lock" in text.split("another git was busy")[0]  # names what git said
    assert _git(repo, "diff", "--name-only", "main", f"farro/{env.id}") == name
