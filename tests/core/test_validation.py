"""nul_at: one NUL finder for every parser of outside input (specs, request files)."""

from __future__ import annotations

import pytest

from farro_core.validation import nul_at


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("a\0b", ("", False)),
        ({"prompt": "ok", "labels": {"k": "v\0"}}, ("labels.k", False)),
        ({"agent": ["echo", "a\0"]}, ("agent.1", False)),
        ({"labels": {"k\0": "v"}}, ("labels", True)),
        ({"k\0": 1}, ("", True)),
        ({"jobs": ({"title": "\0"},)}, ("jobs.0.title", False)),
    ],
)
def test_names_where_the_nul_is(value: object, where: tuple[str, bool]) -> None:
    assert nul_at(value) == where


def test_none_in_clean_data() -> None:
    assert nul_at({"prompt": "x", "n": 3, "list": [1, "two", {"k": None}]}) is None
