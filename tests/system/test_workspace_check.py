"""Workspaces are checked when a job is requested, not when a worker claims it.

A workspace that does not exist, is not a directory, is a git repository with
no commit, or is inside a git repository without being its top would fail the
job's first attempt; ``farro submit`` refuses it (exit 2, one line) and the
manager's inbox rejects the request file with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import wait_until

from farro_core.root import Root
from farro_core.system import System

from .helpers import PYTHON, child_env, make_root


def git_repo(path: Path, *, commit: bool) -> Path:
    path.mkdir(parents=True)
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    if commit:
        (path / "README").write_text("hello\n")
        subprocess.run([*git, "add", "README"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    return path


def _bad_workspaces(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    plain_file = tmp_path / "a-file"
    plain_file.write_text("not a directory\n")
    return {
        "missing": (tmp_path / "nope", "does not exist"),
        "file": (plain_file, "is not a directory"),
        "empty-repo": (git_repo(tmp_path / "empty", commit=False), "git repository with no commit"),
        "repo-subdir": (_subdir(git_repo(tmp_path / "outer", commit=True)), "inside the git repo"),
    }


def _subdir(repo: Path) -> Path:
    (repo / "sub").mkdir()
    return repo / "sub"


def _farro(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "farro_core.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )


def _jobs(root: Root) -> list[str]:
    return [i for q in ("incoming", "active", "done") for i in root.ids(q)]


def test_farro_submit_refuses_an_unusable_workspace(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    for what, (ws, reason) in _bad_workspaces(tmp_path).items():
        p = _farro("submit", "--root", str(root.path), "-p", "x", "--workspace", str(ws))
        assert p.returncode == 2, (what, p.stderr)
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("farro: --prompt: workspace ")
        assert reason in p.stderr, (what, p.stderr)
    # a spec file: the bad job is named, and none of the file's jobs is created
    good = git_repo(tmp_path / "good", commit=True)
    specs = tmp_path / "batch.json"
    specs.write_text(
        json.dumps(
            {"jobs": [{"prompt": "a", "workspace": "good"}, {"prompt": "b", "workspace": "nope"}]}
        )
    )
    p = _farro("submit", "--root", str(root.path), str(specs))
    assert (
        p.returncode == 2
        and f"{specs}: jobs[1]: workspace {tmp_path / 'nope'} does not exist" in p.stderr
    )
    assert _jobs(root) == [] and os.listdir(root.tmp) == []
    ok = _farro("submit", "--root", str(root.path), "-p", "x", "--workspace", str(good))
    plain = _farro("submit", "--root", str(root.path), "-p", "y", "--workspace", str(tmp_path))
    assert (ok.returncode, plain.returncode) == (0, 0), ok.stderr + plain.stderr
    assert len(_jobs(root)) == 2


def test_the_inbox_rejects_an_unusable_workspace_with_its_reason(
    tmp_path: Path, systems: list[System]
) -> None:
    root = make_root(tmp_path / "root")
    bad = _bad_workspaces(tmp_path)
    good = git_repo(tmp_path / "good", commit=True)
    requests: dict[str, object] = {
        f"{what}.json": {"prompt": "x", "workspace": str(ws)} for what, (ws, _) in bad.items()
    }
    requests["goal.json"] = {
        "goal": "- one\n- two",
        "defaults": {"workspace": str(bad["missing"][0])},
    }
    requests["good.json"] = {"jobs": [{"prompt": "in a repo", "workspace": str(good)}]}
    for name, body in requests.items():
        tmp = root.inbox / f".{name}.tmp"
        tmp.write_text(json.dumps(body))
        os.rename(tmp, root.inbox / name)
    system = System(root, workers=0)  # the manager alone ingests the inbox
    systems.append(system)
    system.start()
    wait_until(
        lambda: set(requests) <= {*os.listdir(root.accepted), *os.listdir(root.rejected)},
        "every request file ingested",
    )

    assert sorted(os.listdir(root.accepted)) == ["good.json"]
    reasons = dict(bad.items())
    reasons["goal"] = (bad["missing"][0], "jobs[0]: workspace")
    for what, (_, reason) in reasons.items():
        error = (root.rejected / f"{what}.json.error.txt").read_text()
        assert reason in error and error.startswith(f"{what}.json: "), error
    [only] = _jobs(root)  # the good file's job, and nothing of the bad ones
    assert only in root.ids("incoming")


def test_a_batch_checks_each_workspace_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10,000 jobs on one repository run git as often as one job does (git is spied, real)."""
    from farro_core import workspace
    from farro_core.envelope import JobSpec
    from farro_core.errors import BadInput

    root = make_root(tmp_path / "root")
    repo = git_repo(tmp_path / "repo", commit=True)
    sub = _subdir(git_repo(tmp_path / "outer", commit=True))
    calls: list[tuple[str, ...]] = []
    real_git = workspace.git

    def spy(cwd: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return real_git(cwd, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(workspace, "git", spy)
    workspace.check_specs(root, [JobSpec(prompt="p", workspace=str(repo))], "one")
    once = len(calls)
    assert once >= 1
    calls.clear()
    specs = [JobSpec(prompt=f"p{i}", workspace=str(repo)) for i in range(200)]
    workspace.check_specs(root, specs, "batch")
    assert len(calls) == once
    calls.clear()
    bad = [JobSpec(prompt="ok", workspace=str(repo))] * 3 + [
        JobSpec(prompt="x", workspace=str(sub))
    ]
    with pytest.raises(BadInput, match=r"mixed: jobs\[3\]: workspace .* inside the git repository"):
        workspace.check_specs(root, bad, "mixed")  # the refusal still names its spec
