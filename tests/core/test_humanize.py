from __future__ import annotations

from datetime import UTC, datetime

import pytest

from farro_core.humanize import duration, parse_ts, run_time, timestamp


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


@pytest.mark.parametrize(
    ("seconds", "text"), [(59, "59s"), (192, "3m"), (7500, "2h"), (86400 * 4 + 3600, "4d")]
)
def test_one_unit_for_narrow_columns(seconds: float, text: str) -> None:
    """The console's AGE column: the same spans as the CLI, in the largest unit only."""
    assert duration(seconds, parts=1) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.05, "0.05s"), (0.4, "0.4s"), (12.5, "12.5s"), (300, "5m"), (7200, "2h"), (192, "3m12s")],
)
def test_run_time(seconds: float, text: str) -> None:
    assert run_time(seconds) == text


def test_timestamp_and_parse_ts_agree_for_cli_and_console() -> None:
    when = datetime(2026, 11, 25, 17, 4, 25, 123456, tzinfo=UTC)
    assert timestamp(when) == "2026-11-25 17:04:25Z"
    assert timestamp(when.isoformat()) == "2026-11-25 17:04:25Z"
    assert timestamp("2026-11-25T17:04:25.123456Z") == "2026-11-25 17:04:25Z"
    assert timestamp(None) == "-" and timestamp(None, missing="—") == "—"
    assert parse_ts("2026-11-25T17:04:25Z") == when.replace(microsecond=0)
    assert parse_ts("not a time") is None and parse_ts(None) is None
