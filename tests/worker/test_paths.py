"""Allowed paths in a git worktree and in a plain directory, and the workspaces themselves."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farro_core.envelope import Envelope
from farro_core.root import Root

from .helpers import git, make_plain, make_repo, make_worker, pooled_worktrees, sh, submit

ALLOW = ["src/**"]

# (name, agent script, expected violations)
CASES = [
    ("in_scope", "echo more >> src/a.py; echo 1 > src/b.py; mkdir -p src/d; echo 2 > src/d/e", []),
    ("modify_out_of_scope", "echo x >> src/a.py; echo x >> README.md", ["README.md"]),
    ("rename_out_of_scope", "mv docs/guide.md docs/guide2.md", ["docs/guide.md", "docs/guide2.md"]),
    ("rename_out_of_src", "mv src/a.py lib.py", ["lib.py"]),
    ("rename_into_src", "mv README.md src/README.md", ["README.md"]),
    ("untracked_new", "echo 1 > notes.txt; mkdir -p d/e; echo 2 > d/e/f", ["d/e/f", "notes.txt"]),
    ("deletion", "rm docs/guide.md", ["docs/guide.md"]),
    ("chmod_only", "chmod +x README.md", ["README.md"]),
    ("new_symlink", "ln -s /etc/passwd link", ["link"]),
    ("file_to_symlink", "rm README.md; ln -s src/a.py README.md", ["README.md"]),
    ("symlink_in_scope", "ln -s ../README.md src/readme-link", []),
]  # fmt: skip


def run(root: Root, agent: str, workspace: Path, **kw: object) -> Envelope:
    submit(root, "edit", agent=sh(agent), workspace=str(workspace), allowed_paths=ALLOW, **kw)
    out = make_worker(root).run_once()
    assert out is not None
    return out


@pytest.mark.parametrize(("name", "agent", "expected"), CASES, ids=[c[0] for c in CASES])
def test_git_worktree(
    wroot: Root, tmp_path: Path, name: str, agent: str, expected: list[str]
) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    out = run(wroot, agent, repo)
    res = out.lifecycle.result
    assert res is not None and res.base_commit == head
    assert res.violations == expected
    if expected:
        assert out.status == "failed" and out.lifecycle.attempt == 1  # never retried
        assert "outside allowed_paths" in out.lifecycle.reason
        assert expected[0] in out.lifecycle.reason
    else:
        assert out.status == "succeeded", out.lifecycle.reason
    # the user's checkout is untouched; the work is on branch farro/<id>
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "HEAD") == head
    branch = f"farro/{out.id}"
    assert git(repo, "log", "-1", "--format=%s", branch) == f"farro: job {out.id} attempt 1"
    assert git(repo, "rev-parse", f"{branch}~1") == head
    assert len(pooled_worktrees(wroot)) == 1
    assert oct(os.stat(wroot.path / "worktrees").st_mode & 0o777) == "0o700"


@pytest.mark.parametrize(("name", "agent", "expected"), CASES, ids=[c[0] for c in CASES])
def test_plain_directory(
    wroot: Root, tmp_path: Path, name: str, agent: str, expected: list[str]
) -> None:
    ws = make_plain(tmp_path / "plain")
    out = run(wroot, agent, ws)
    res = out.lifecycle.result
    assert res is not None and res.base_commit is None
    assert res.violations == expected
    assert out.status == ("failed" if expected else "succeeded"), out.lifecycle.reason
    assert res.violations == [] or out.lifecycle.attempt == 1


def test_git_ignored_file_is_recorded_not_judged(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    out = run(wroot, "echo x > debug.log; mkdir cache; echo y > src/ok.py", repo)
    res = out.lifecycle.result
    assert res is not None and res.violations == [] and out.status == "succeeded"
    assert res.work is not None and res.work.ignored.files == 1
    assert [(t.path, t.files) for t in res.work.ignored.top] == [("debug.log", 1)]


def test_git_ignored_file_is_judged_when_asked(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    out = run(wroot, "echo x > debug.log; echo y > src/ok.py", repo, judge_ignored=True)
    res = out.lifecycle.result
    assert res is not None and res.violations == ["debug.log"] and out.status == "failed"
    assert res.work is not None and res.work.ignored.judged and res.work.ignored.files == 1


def test_git_agent_commits_and_resets_are_still_seen(wroot: Root, tmp_path: Path) -> None:
    """Changes are taken against the base commit, whatever the agent did to HEAD."""
    repo = make_repo(tmp_path / "repo")
    out = run(
        wroot,
        "echo x >> README.md; git add -A; git -c user.name=a -c user.email=a@b commit -qm sneaky",
        repo,
    )
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == ["README.md"]


def test_default_work_dir_snapshot(wroot: Root) -> None:
    submit(
        wroot, "x", agent=sh("echo a > ok.txt; mkdir bad; echo b > bad/x"), allowed_paths=["ok.txt"]
    )
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed"
    assert out.lifecycle.result is not None and out.lifecycle.result.violations == ["bad/x"]
    assert (out.path / "work" / "ok.txt").read_text() == "a\n"


def test_later_attempt_starts_clean_from_the_base(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = (
        'if [ "$FARRO_ATTEMPT" = 1 ]; then echo half > src/half.py; exit 1; fi; '
        "test ! -e src/half.py || exit 9; echo whole > src/whole.py"
    )
    submit(wroot, "x", agent=sh(agent), workspace=str(repo), allowed_paths=ALLOW, max_attempts=2)
    w = make_worker(wroot, retry_backoff_s=0)
    first = w.run_once()
    assert first is not None and first.status == "queued"
    second = w.run_once()
    assert second is not None and second.status == "succeeded", second.lifecycle.reason
    res1, res2 = first.lifecycle.result, second.lifecycle.result
    assert res1 is not None and res2 is not None and res1.base_commit == res2.base_commit
    branch = f"farro/{second.id}"
    files = git(repo, "ls-tree", "-r", "--name-only", branch).split()
    assert "src/whole.py" in files and "src/half.py" not in files
    # the first attempt's work is kept under a ref
    kept = git(repo, "ls-tree", "-r", "--name-only", f"refs/farro/{second.id}/attempt-1").split()
    assert "src/half.py" in kept


def test_symlinked_workspace_is_resolved_and_said(wroot: Root, tmp_path: Path) -> None:
    real = make_plain(tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    out = run(wroot, "echo x > src/n.py; pwd -P > src/where", link)
    assert out.status == "succeeded", out.lifecycle.reason
    assert (real / "src" / "where").read_text().strip() == str(real)
    log = (out.path / "logs" / "attempt-1.log").read_text()
    assert f"is a symlink (or under one): resolved to {real}" in log


def test_workspace_inside_the_root_is_refused(wroot: Root, tmp_path: Path) -> None:
    link = tmp_path / "sneaky"
    link.symlink_to(wroot.path / "incoming")
    for ws in (wroot.path / "done", link):
        submit(wroot, "x", agent=["true"], workspace=str(ws))
        out = make_worker(wroot).run_once()
        assert out is not None and out.status == "failed"  # no retry can fix it
        res = out.lifecycle.result
        assert res is not None and res.error is not None and "inside the FARRO root" in res.error
        assert out.lifecycle.attempt == 1


def test_missing_workspace(wroot: Root, tmp_path: Path) -> None:
    submit(wroot, "x", agent=["true"], workspace=str(tmp_path / "nope"), max_attempts=3)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed" and out.lifecycle.attempt == 1
    res = out.lifecycle.result
    assert res is not None and "does not exist" in (res.error or "")


def test_repo_without_commits_is_refused(wroot: Root, tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    submit(wroot, "x", agent=["true"], workspace=str(repo))
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed"
    assert "no commit" in (out.lifecycle.result.error or "")  # type: ignore[union-attr]


def test_subdirectory_of_a_repo_fails_without_running_in_place(wroot: Root, tmp_path: Path) -> None:
    """Run in place it would write, and run git in, the operator's own checkout."""
    repo = make_repo(tmp_path / "repo")
    submit(wroot, "x", agent=sh("echo y > z.py"), workspace=str(repo / "src"))
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed"
    assert f"inside the git repository {repo.resolve()}" in (out.lifecycle.reason or "")
    assert out.lifecycle.attempt == 1  # no retry: the workspace will not change by itself
    assert not (repo / "src" / "z.py").exists()


def test_root_inside_a_plain_workspace_is_left_out(wroot: Root) -> None:
    """The queue's own files change during the attempt; they are not the agent's work."""
    ws = wroot.path.parent
    out = run(wroot, "mkdir -p src; echo x > src/new.py", ws)
    assert out.status == "succeeded", out.lifecycle.reason
    assert out.lifecycle.result is not None and out.lifecycle.result.violations == []
    assert (
        "the FARRO root root/ inside the workspace is not judged"
        in (out.path / "logs" / "attempt-1.log").read_text()
    )


def test_repo_hooks_do_not_run_and_file_mode_is_always_seen(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "config", "core.fileMode", "false")
    marker = tmp_path / "hook-ran"
    for hook in ("post-checkout", "pre-commit", "post-commit"):
        h = repo / ".git" / "hooks" / hook
        h.write_text(f"#!/bin/sh\ntouch {marker}\n")
        h.chmod(0o755)
    out = run(wroot, "chmod +x README.md; echo x > src/n.py", repo)
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == ["README.md"]
    assert not marker.exists()
