"""Allowed-path globs: validation refuses escapes; matching follows the documented rules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

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
        ("a[]b", "no ']' closes"),
        ("a[b", "no ']' closes"),
        ("[!]", "no ']' closes"),
        ("src/[", "no ']' closes"),
        ("a\\", "not a valid glob"),
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
        ("docs", "docs/**", True),  # dir/** allows dir itself
        (".ruff_cache", ".ruff_cache/**", True),
        (".ruff_cache/0.1/x", ".ruff_cache/**", True),
        ("a[b", "a\\[b", True),  # \ escapes
        ("a]b", "a]b", True),
        ("#x", "#x", True),  # no gitignore comment or negation: names are names
        ("!x", "!x", True),
        ("x ", "x ", True),  # trailing spaces are part of the name
        ("x", "x ", False),
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


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_rows() -> list[tuple[str, str, bool]]:
    """The README's glob table: | `pattern` | `path` | yes/no |."""
    text = README.read_text()
    start = text.index("| pattern | path | allowed |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        m = re.fullmatch(r"\| `([^`]*)` \| `([^`]*)` \| (yes|no)\b.*", line)
        assert m, line
        rows.append((m.group(1), m.group(2), m.group(3) == "yes"))
    return rows


def test_readme_glob_table_is_true() -> None:
    rows = _readme_rows()
    assert len(rows) >= 10
    for pattern, path, allowed in rows:
        assert matches(path, [check_glob(pattern)]) is allowed, (pattern, path)


FARRO = str(Path(sys.executable).with_name("farro"))


@pytest.mark.parametrize("how", ["flag", "spec"])
def test_submit_refuses_a_bad_pattern_naming_it(tmp_path: Path, how: str) -> None:
    root = tmp_path / "root"
    subprocess.run([FARRO, "init", "--root", str(root)], check=True, capture_output=True)
    before = sorted(p.name for p in (root / "incoming").iterdir())
    if how == "flag":
        args = ["-p", "x", "--allow", "src/**", "--allow", "a[]b"]
    else:
        spec = tmp_path / "s.json"
        spec.write_text('{"jobs": [{"prompt": "ok"}, {"prompt": "x", "allowed_paths": ["a[]b"]}]}')
        args = [str(spec)]
    r = subprocess.run(
        [FARRO, "submit", "--root", str(root), *args], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2, r
    assert r.stderr.startswith("farro: ") and r.stderr.count("\n") == 1, r.stderr
    assert "'a[]b'" in r.stderr
    assert sorted(p.name for p in (root / "incoming").iterdir()) == before


def test_the_inbox_rejects_a_bad_pattern_naming_it(tmp_path: Path) -> None:
    """The same refusal for a request file: rejected with its reason, no job made (a job
    with ``a[]b`` once ended every attempt in "worker error: unterminated character set")."""
    from farro_core import inbox
    from farro_core.root import Root

    root = Root.init(tmp_path / "root")
    request = root.inbox / "bad-glob.json"
    request.write_text('{"prompt": "x", "allowed_paths": ["src/**", "a[]b"]}')
    old = time.time() - 60  # past the grace for a file still being written
    os.utime(request, (old, old))
    [got] = inbox.ingest(root)
    assert got.outcome == "rejected", got
    assert got.error is not None and "'a[]b'" in got.error and "\n" not in got.error
    assert (root.rejected / "bad-glob.json.error.txt").read_text().startswith(got.error + "\n")
    assert root.ids("incoming") == []


def test_the_default_glob_is_compiled_as_pathspec_compiles_it() -> None:
    """``**`` is compiled without pathspec (a cold `farro submit` never imports it):
    the shortcut must be exactly pathspec's own regex for it."""
    from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

    from farro_core import globs

    regex, include = GitIgnoreBasicPattern.pattern_to_regex(globs._gitignore_form(globs.EVERYTHING))
    assert (regex, include) == (globs._EVERYTHING, True)
    globs._compile.cache_clear()
    for path in ("a", "a/b/c.py", ".git", "dir/.hidden/x", "x\ny"):
        assert matches(path, [globs.EVERYTHING])
    assert not matches("", [globs.EVERYTHING])
