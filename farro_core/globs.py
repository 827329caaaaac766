"""Allowed-path globs: validation and matching, relative to a workspace.

Matching is pathspec's gitignore wildmatch, anchored at the top of the workspace:
``*`` and ``?`` stay inside one path segment, ``**`` spans segments, ``[...]`` is
a character class (``[!...]`` negated) and ``\\`` escapes the next character. A
pattern also allows everything below what it names (``src`` allows ``src/a.py``),
and ``dir/**`` allows ``dir`` itself, which is what an operator writing
``allowed_paths`` expects. Paths are always single files, never directories.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_GLOB = 1024

# ``**``, every job's default: what pathspec compiles it to (tests/core/test_globs.py
# checks), known without importing pathspec, which costs ~8 ms of a cold `farro submit`
EVERYTHING = "**"
_EVERYTHING = "."


def _unclosed_class(pattern: str) -> bool:
    """True when a ``[`` opens a class no ``]`` closes (git's wildmatch then matches nothing)."""
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":  # a leading ] is a member, not the end
                j += 1
            end = pattern.find("]", j)
            if end == -1:
                return True
            i = end + 1
            continue
        i += 1
    return False


def _gitignore_form(pattern: str) -> str:
    """Our pattern as an anchored gitignore line with the same meaning."""
    pat = pattern.strip("/")
    while pat.endswith("/**"):  # `dir/**` is `dir` and what is below it
        pat = pat[:-3]
    # gitignore drops unescaped trailing spaces; ours are part of the name
    stripped = pat.rstrip(" ")
    pat = stripped + "\\ " * (len(pat) - len(stripped))
    return "/" + pat


def check_glob(pattern: str) -> str:
    """Return ``pattern`` or raise ``ValueError`` saying why it is unsafe or malformed."""
    if not pattern:
        raise ValueError("an allowed path may not be empty")
    if "\0" in pattern:
        raise ValueError("an allowed path may not contain NUL")
    if len(pattern) > MAX_GLOB:
        raise ValueError(f"an allowed path may not exceed {MAX_GLOB} characters")
    if pattern.startswith(("/", "~")) or re.match(r"^[A-Za-z]:[\\/]", pattern):
        raise ValueError(
            f"allowed path {pattern!r} is absolute; paths are relative to the workspace"
        )
    if ".." in pattern.replace("\\", "/").split("/"):
        raise ValueError(f"allowed path {pattern!r} contains '..'")
    if _unclosed_class(pattern):
        raise ValueError(
            f"allowed path {pattern!r} opens a '[' character class that no ']' closes "
            "(write \\[ for a literal '[')"
        )
    try:
        _compile(pattern)
    except (ValueError, re.error) as exc:  # pathspec's GitIgnorePatternError is a ValueError
        raise ValueError(f"allowed path {pattern!r} is not a valid glob: {exc}") from None
    return pattern


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    if pattern == EVERYTHING:
        return re.compile(_EVERYTHING, re.DOTALL)
    from pathspec.patterns.gitignore.basic import GitIgnoreBasicPattern

    regex, _include = GitIgnoreBasicPattern.pattern_to_regex(_gitignore_form(pattern))
    if regex is None:
        raise ValueError("it matches nothing")
    return re.compile(regex, re.DOTALL)


def matches(path: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """True when the workspace-relative ``path`` is allowed by any pattern."""
    rel = path.strip("/")
    return any(_compile(p).match(rel) is not None for p in patterns)


def violations(paths: list[str], patterns: list[str] | tuple[str, ...]) -> list[str]:
    """The paths, sorted and unique, that no pattern allows."""
    return sorted({p for p in paths if not matches(p, patterns)})
