"""``farro-tui --demo --readonly``: watches an earlier demo, seeds nothing, writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from farro_core import demo
from farro_core.root import Root

from .helpers import farro_tui, one_error

pytestmark = pytest.mark.slow  # each runs farro-tui as a process


def tree(path: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(path)), p.lstat().st_size) for p in path.rglob("*"))


def test_without_root_it_is_refused_and_makes_no_temporary_root(tmp_path: Path) -> None:
    r = farro_tui("--demo", "--readonly", env={"TMPDIR": str(tmp_path)})  # a demo root's place
    assert r.code == 2
    assert "seeds nothing" in one_error(r, "farro-tui")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("made", [False, True], ids=["missing", "empty"])
def test_a_root_with_no_demo_is_refused_and_left_as_it_was(tmp_path: Path, made: bool) -> None:
    path = tmp_path / "demo"
    if made:
        path.mkdir()
    r = farro_tui("--demo", "--readonly", "--root", str(path))
    assert r.code == 2
    assert "no demo there" in one_error(r, "farro-tui")
    assert path.exists() is made and (not made or list(path.iterdir()) == [])


def test_a_real_root_is_refused_with_the_way_to_watch_it(root: Root) -> None:
    before = tree(root.path)
    r = farro_tui("--demo", "--readonly", "--root", str(root.path))
    assert r.code == 2
    assert "leave out --demo" in one_error(r, "farro-tui")
    assert tree(root.path) == before


def test_an_earlier_demo_is_recognised(tmp_path: Path) -> None:
    path = tmp_path / "demo"
    demo.seed(Root.init(path))
    assert demo.is_demo_root(path)
    demo.refuse_readonly(path)  # accepted: the console opens it read-only, unseeded


@pytest.mark.parametrize("demo_flags", [["--readonly"], []], ids=["readonly", "seeding"])
def test_a_fifo_farro_toml_is_not_a_demo_and_never_blocks_the_check(
    tmp_path: Path, demo_flags: list[str]
) -> None:
    """A FIFO with no writer would block an open() forever: it is read as fs reads."""
    path = tmp_path / "demo"
    path.mkdir()
    os.mkfifo(path / "farro.toml")
    assert not demo.is_demo_root(path)
    r = farro_tui("--demo", *demo_flags, "--root", str(path))  # 60 s: the failure bound
    assert r.code == 2
    assert "not a demo root" in one_error(r, "farro-tui")
    assert [p.name for p in path.iterdir()] == ["farro.toml"]
