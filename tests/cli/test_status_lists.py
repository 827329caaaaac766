"""``--status`` lists: an empty item is said plainly, in one line, exit 2."""

from __future__ import annotations

import pytest

from farro_core.root import Root

from .helpers import farro, one_error


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("queued,,failed", "has an empty item (item 2)"),
        ("queued,", "has an empty item (item 2)"),
        (",failed", "has an empty item (item 1)"),
        ("", "is empty"),
        (" ", "is empty"),
    ],
)
def test_an_empty_status_item_is_named(root: Root, given: str, said: str) -> None:
    r = farro("ls", "--root", str(root.path), "--status", given)
    assert r.code == 2 and r.out == ""
    line = one_error(r)
    assert f"--status {given!r} {said}" in line
    assert "e.g. --status queued,failed" in line


def test_a_valid_list_still_lists(root: Root) -> None:
    assert farro("submit", "--root", str(root.path), "-p", "one").code == 0
    r = farro("ls", "--root", str(root.path), "--status", "queued, failed")
    assert r.code == 0, r.err
    assert "queued" in r.out
