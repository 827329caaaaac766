"""A skew over a small ``clock_skew_warn_s`` is shown with the decimals that tell them apart."""

from __future__ import annotations

import pytest

from farro_core import fsclock
from farro_core.humanize import skew
from farro_core.root import Root

from .helpers import farro


@pytest.mark.parametrize(
    ("recorded", "shown"),
    [
        (0.034, "+0.03s over clock_skew_warn_s (0.01s)"),
        (0.014, "+0.014s over clock_skew_warn_s (0.01s)"),
    ],
)
def test_stats_shows_a_small_skew_over_a_small_threshold(
    root: Root, recorded: float, shown: str
) -> None:
    (root.path / "farro.toml").write_text("clock_skew_warn_s = 0.01\n")
    fsclock.record(root, recorded)
    r = farro("stats", "--root", str(root.path))
    assert r.code == 0, r.err
    assert shown in r.out, r.out
    assert "0.0s over" not in r.out


def test_the_default_threshold_keeps_one_decimal() -> None:
    assert skew(0.2, 5, sign=True) == "+0.2s"
    assert skew(-7.25, 5, sign=True) == "-7.2s"
    assert skew(5.04, 5) == "5.04s"  # over 5.0s, so never shown as 5.0s
    assert skew(0.0, 0.25) == "0.00s"
