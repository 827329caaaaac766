"""bounded.py: every limit refuses with one line naming where, and nothing recurses."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from farro_core import bounded, fs
from farro_core.bounded import Unbounded


def nested(depth: int) -> Any:
    """A list nested ``depth`` deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_depth_is_counted_from_the_top_and_refused_past_the_limit() -> None:
    bounded.check(nested(31))
    with pytest.raises(Unbounded, match="nested deeper than 32"):
        bounded.check(nested(32))


def test_a_python_tree_100000_deep_is_refused_without_recursing() -> None:
    with pytest.raises(Unbounded, match="nested deeper"):
        bounded.check(nested(100_000))  # a recursive walk would raise RecursionError


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 1000 + "]" * 1000, "nested deeper than 32"),
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 32"),
        ('{"t": 1e309}', "number 1e309 is not finite"),
        ('{"t": [-1e400]}', "number -1e400 is not finite"),
        ('{"t": 1' + "0" * 400 + ".5}", "is not finite"),
        ('{"t": NaN}', "NaN is not valid JSON"),
        ('{"t": Infinity}', "Infinity is not valid JSON"),
        ('{"labels": {"k": "\\ud800"}}', "labels.k: a string holds a lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
        ("[" + "0," * 20 + "0]", "more than 10 items"),
    ],
)
def test_json_beyond_bounds_is_one_line_of_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("[", r"\[")) as info:
        bounded.loads_json(text, max_items=10)
    assert "\n" not in str(info.value)


def test_a_pair_of_surrogates_is_text_and_passes() -> None:
    assert bounded.loads_json('"\\ud83d\\ude00"') == "\U0001f600"


def test_a_python_tree_is_named_where_it_breaks_a_bound() -> None:
    with pytest.raises(Unbounded, match=r"^labels\.k: number inf is not finite$"):
        bounded.check({"labels": {"k": float("inf")}})
    with pytest.raises(Unbounded, match=r"^agent\.1: a string holds a lone surrogate"):
        bounded.check({"agent": ["run", "\udc80"]})


def test_encoded_surrogates_in_bytes_are_not_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        bounded.loads_json(b'"\xed\xa0\x80"')  # CPython's json would pass this through


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("x = " + "[" * 1000 + "]" * 1000, "nested deeper"),
        (".".join(["a"] * 1000) + " = 1", "nested deeper"),
        ("x = " + "{a = " * 1000 + "1" + "}" * 1000, "nested deeper"),
        ("t = inf", "t: number inf is not finite"),
        ("t = -inf", "not finite"),
        ("t = nan", "not finite"),
        ("[" + ".".join(["a"] * 1000) + "]", "nested deeper"),
    ],
)
def test_toml_bombs_are_refused(text: str, reason: str) -> None:
    with pytest.raises(Unbounded, match=reason):
        bounded.loads_toml(text)


def test_toml_surrogate_escapes_are_not_toml() -> None:
    with pytest.raises(tomllib.TOMLDecodeError):
        bounded.loads_toml('x = "\\ud800"')


def test_fs_read_json_applies_the_bounds_and_a_tighter_depth(tmp_path: Any) -> None:
    (tmp_path / "r.json").write_text('{"a": ' * 20 + "1" + "}" * 20)
    assert fs.read_json(tmp_path / "r.json") is not None
    with pytest.raises(ValueError, match="nested deeper than 16"):
        fs.read_json(tmp_path / "r.json", max_depth=16)
    (tmp_path / "bad.json").write_bytes(b'{"a": "\xff"}')
    with pytest.raises(ValueError, match="not UTF-8"):
        fs.read_json(tmp_path / "bad.json")
