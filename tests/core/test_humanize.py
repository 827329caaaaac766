from __future__ import annotations

import pytest

from farro_core.humanize import duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (-3, "0s"),
        (0.9, "0s"),
        (42, "42s"),
        (192, "3m12s"),
        (3600, "1h00m"),
        (7500, "2h05m"),
        (86400 * 4 + 3 * 3600 + 59, "4d03h"),
    ],
)
def test_duration_in_the_two_largest_units(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_missing_text_is_the_callers() -> None:
    assert duration(None, missing="-") == "-"
