"""FARRO's git calls touch only its own worktree of the operator's repo.

A worktree of the operator's whose directory is missing for now (a removable
disk, a network mount) keeps its registration: ``git worktree prune`` would
drop it (with its index and HEAD) for every such worktree at once. Only the
job's own stale registration is removed when its directory is gone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from farro_core.root import Root

from .helpers import git, make_repo, make_worker, sh, submit


def _registered(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


def test_a_missing_worktree_of_the_operator_is_not_pruned(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    mine = tmp_path / "mounted" / "feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(mine))
    shutil.move(str(tmp_path / "mounted"), str(tmp_path / "unmounted"))  # the disk is away
    assert str(mine) in _registered(repo)

    script = 'echo "$FARRO_ATTEMPT" >> src/a.py; test "$FARRO_ATTEMPT" = 2'
    submit(wroot, "edit", agent=sh(script), workspace=str(repo), max_attempts=2)
    w = make_worker(wroot, retry_backoff_s=0)
    out = w.run_once()
    assert out is not None and out.status == "queued", out.lifecycle.reason
    assert str(mine) in _registered(repo), "the operator's worktree registration was pruned"

    # the worker's worktree directory removed by hand: the next attempt makes it again
    slot = next(iter(w.pool.slots.values()))
    wt = slot.path
    shutil.rmtree(wt)
    out = w.run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert wt.is_dir() and str(wt) in _registered(repo)
    assert str(mine) in _registered(repo), "the operator's worktree registration was pruned"
