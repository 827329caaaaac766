"""A root given as a symlink (``~/.farro`` -> ``/data/farro``) is resolved once, and said."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farro_core.root import Root

from .helpers import farro, one_error


def test_every_command_works_through_a_symlinked_root(root: Root, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(root.path)
    r = farro("submit", "--root", str(link), "-p", "through the link")
    assert r.code == 0, r.err
    jid = r.out.strip()
    assert (root.incoming / jid).is_dir()  # in the real root, not a second one
    r = farro("ls", "--root", str(link))
    assert r.code == 0 and jid in r.out
    r = farro("stats", "--root", str(link))
    assert r.code == 0
    assert f"root      {root.path} (given as the symlink {link})" in r.out
    assert Root.open(link).path == root.path == Root.open(link).path.resolve()


def test_a_symlink_to_a_directory_that_is_no_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "plain")
    r = farro("ls", "--root", str(tmp_path / "link"))
    assert r.code == 2
    assert f"{tmp_path / 'plain'} is not an initialised FARRO root" in one_error(r)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a symlink to another user")
def test_a_symlink_someone_else_owns_is_refused(root: Root, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(root.path)
    os.lchown(link, 12345, 12345)
    r = farro("ls", "--root", str(link))
    assert r.code == 2
    assert "is a symlink owned by uid 12345, not by you" in one_error(r)
