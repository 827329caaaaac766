"""Quarantine moves bad things aside with a reason file; it never deletes, never
overwrites and never follows a symlink."""

from __future__ import annotations

import os
from pathlib import Path

from farro_core.quarantine import quarantine
from farro_core.root import Root


def test_directory_moved_with_reason(root: Root) -> None:
    bad = root.incoming / "badjob-0001"
    bad.mkdir()
    (bad / "job.json").write_bytes(b"{")
    dest = quarantine(root, bad, "job.json is truncated")
    assert dest == root.quarantine / "badjob-0001"
    assert not bad.exists() and (dest / "job.json").read_bytes() == b"{"
    note = (root.quarantine / "badjob-0001.reason.txt").read_text()
    assert "from: incoming/badjob-0001" in note
    assert "reason: job.json is truncated" in note and "at: " in note


def test_same_name_twice_never_overwrites(root: Root) -> None:
    dests = []
    for n in range(3):
        p = root.done / "again-0001"
        p.mkdir()
        (p / "n").write_text(str(n))
        dests.append(quarantine(root, p, f"round {n}"))
    assert len(set(dests)) == 3
    assert sorted((d / "n").read_text() for d in dests) == ["0", "1", "2"]
    for n, d in enumerate(dests):
        assert f"reason: round {n}" in Path(f"{d}.reason.txt").read_text()


def test_symlink_moved_not_followed(root: Root, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("keep")
    link = root.active / "linked-0001"
    link.symlink_to(target)
    dest = quarantine(root, link, "a symlink")
    assert dest.is_symlink() and os.readlink(dest) == str(target)
    assert (target / "keep").read_text() == "keep"


def test_dotfile_gets_a_visible_name(root: Root) -> None:
    f = root.incoming / ".sneaky"
    f.write_text("x")
    dest = quarantine(root, f, "hidden")
    assert dest.name == "_.sneaky" and dest.read_text() == "x"


def test_file_moved(root: Root) -> None:
    f = root.tmp / "half.tmp.1"
    f.write_bytes(b"partial")
    dest = quarantine(root, f, "leftover")
    assert dest.read_bytes() == b"partial" and os.listdir(root.tmp) == []
