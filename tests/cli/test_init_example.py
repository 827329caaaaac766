"""``farro init --example DIR`` never puts the example repository inside a FARRO root."""

from __future__ import annotations

from pathlib import Path

import pytest

from farro_core.root import Root

from .helpers import farro, one_error


@pytest.mark.parametrize("where", ["incoming/myrepo", "done/x/myrepo", "."])
def test_an_example_inside_another_root_is_refused_and_nothing_is_made(
    root: Root, tmp_path: Path, where: str
) -> None:
    before = sorted(p.name for p in root.incoming.iterdir())
    new_root = tmp_path / "new-root"
    repo = root.path / where
    r = farro("init", "--root", str(new_root), "--example", str(repo))
    assert r.code == 2 and r.out == ""
    assert f"inside the FARRO root {root.path}" in one_error(r)
    assert not new_root.exists()  # refused before the new root was made
    assert sorted(p.name for p in root.incoming.iterdir()) == before
    assert not (root.path / "done" / "x").exists()


def test_an_example_inside_a_symlink_to_another_root_is_refused(root: Root, tmp_path: Path) -> None:
    (tmp_path / "alias").symlink_to(root.path)
    r = farro(
        "init", "--root", str(tmp_path / "new"), "--example", str(tmp_path / "alias/incoming/r")
    )
    assert r.code == 2 and "inside the FARRO root" in one_error(r)
    assert list(root.incoming.iterdir()) == []


def test_an_example_beside_the_root_is_made(tmp_path: Path) -> None:
    r = farro("init", "--root", str(tmp_path / "root"), "--example", str(tmp_path / "myrepo"))
    assert r.code == 0, r.err
    assert (tmp_path / "myrepo" / ".git").exists()


@pytest.mark.parametrize("made", [False, True], ids=["new", "existing"])
def test_an_example_inside_the_root_given_as_a_symlink_is_refused(
    tmp_path: Path, made: bool
) -> None:
    """The root is resolved through its link (`~/.farro` -> /data/farro): the example is
    compared with the real root, not with the link's path."""
    real = tmp_path / "real"
    if made:
        real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    r = farro("init", "--root", str(tmp_path / "link"), "--example", str(real / "ex"))
    assert r.code == 2 and r.out == ""
    assert "inside the root; a workspace must be outside it" in one_error(r)
    assert real.exists() is made and (not made or list(real.iterdir()) == [])
