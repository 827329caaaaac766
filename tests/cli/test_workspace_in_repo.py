"""A workspace that is a subdirectory of a git repository is refused when submitted."""

from __future__ import annotations

import subprocess
from pathlib import Path

from farro_core.root import Root

from .helpers import farro, one_error


def _repo(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "sub" / "a.py").write_text("a = 1\n")
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "init"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=path, check=True
        )
    return path


def test_submit_refuses_a_subdirectory_of_a_repository_naming_its_top(
    root: Root, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "repo")
    r = farro("submit", "--root", str(root.path), "-p", "edit", "--workspace", str(repo / "sub"))
    assert r.code == 2 and r.out == ""
    line = one_error(r)
    assert f"inside the git repository {repo.resolve()}" in line
    assert "--allow 'sub/**'" in line
    assert list(root.incoming.iterdir()) == []  # nothing half-made


def test_the_top_of_the_repository_and_a_plain_directory_are_accepted(
    root: Root, tmp_path: Path
) -> None:
    repo = _repo(tmp_path / "repo")
    plain = tmp_path / "plain"
    plain.mkdir()
    for ws in (repo, plain):
        r = farro("submit", "--root", str(root.path), "-p", "edit", "--workspace", str(ws))
        assert r.code == 0, r.err
