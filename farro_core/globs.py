"""Allowed-path globs: validation and matching, relative to a workspace.

``*`` and ``?`` stay inside one path segment, ``**`` spans segments, and a
pattern that names a directory also allows everything below it (``src`` allows
``src/a.py``), which is what an operator writing ``allowed_paths`` expects.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_GLOB = 1024


def check_glob(pattern: str) -> str:
    """Return ``pattern`` or raise ``ValueError`` saying why it is unsafe."""
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
    return pattern


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    pat = pattern.strip("/")
    out: list[str] = []
    i = 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pat.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pat[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + "(?:/.*)?", re.DOTALL)


def matches(path: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """True when the workspace-relative ``path`` is allowed by any pattern."""
    rel = path.strip("/")
    return any(_compile(p).fullmatch(rel) is not None for p in patterns)


def violations(paths: list[str], patterns: list[str] | tuple[str, ...]) -> list[str]:
    """The paths, sorted and unique, that no pattern allows."""
    return sorted({p for p in paths if not matches(p, patterns)})
