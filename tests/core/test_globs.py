"""Allowed-path globs: validation refuses escapes; matching follows the documented rules."""

from __future__ import annotations

import pytest

from farro_core.globs import MAX_GLOB, check_glob, matches, violations


@pytest.mark.parametrize("good", ["**", "src", "src/**/*.py", "a/b?c", "[ab].txt", "x/./y"])
def test_check_glob_accepts(good: str) -> None:
    assert check_glob(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("/etc", "absolute"),
        ("~/x", "absolute"),
        ("C:\\x", "absolute"),
        ("c:/x", "absolute"),
        ("..", "'..'"),
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("a\\..\\b", "'..'"),
        ("a/..", "'..'"),
        ("a\0b", "NUL"),
        ("a" * (MAX_GLOB + 1), "exceed"),
    ],
)
def test_check_glob_refuses(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_glob(bad)


def test_dotdot_inside_a_name_is_fine() -> None:
    assert check_glob("a..b/c..") == "a..b/c.."


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("anything/at/all", "**", True),
        ("a.py", "*.py", True),
        ("src/a.py", "*.py", False),  # * stays in one segment
        ("src/a.py", "**/*.py", True),
        ("a.py", "**/*.py", True),  # **/ matches zero segments too
        ("src/deep/er/a.py", "src/**/*.py", True),
        ("src/a.txt", "src/**/*.py", False),
        ("src/a.py", "src", True),  # a directory allows what is below it
        ("srcx/a.py", "src", False),
        ("src", "src/", True),
        ("ab", "a?", True),
        ("a/b", "a?b", False),  # ? never matches /
        ("a.txt", "[ab].txt", True),
        ("c.txt", "[ab].txt", False),
        ("c.txt", "[!ab].txt", True),
        ("a.txt", "[!ab].txt", False),
        ("a+b", "a+b", True),  # regex metacharacters are literal
        ("aab", "a+b", False),
        ("docs/x.md", "docs/**", True),
        ("doc/x.md", "docs/**", False),
        ("/abs/x", "abs/x", True),  # leading slash of a path is ignored
    ],
)
def test_matches(path: str, pattern: str, expected: bool) -> None:
    assert matches(path, [pattern]) is expected


def test_matches_any_pattern_and_none_for_empty_list() -> None:
    assert matches("b/x", ["a/**", "b/**"])
    assert not matches("c/x", ["a/**", "b/**"])
    assert not matches("x", [])


def test_violations_sorted_unique() -> None:
    paths = ["z.txt", "src/a.py", "z.txt", "b.txt", "src/b.py"]
    assert violations(paths, ["src"]) == ["b.txt", "z.txt"]
    assert violations(paths, ["**"]) == []


def test_unclosed_bracket_is_literal() -> None:
    assert matches("a[b", ["a[b"])
    assert not matches("ab", ["a[b"])
