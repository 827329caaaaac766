"""Parsing untrusted JSON and TOML within bounds: depth, item count, finite numbers, text.

Every document FARRO reads (request files, farro.toml, job.json, an agent's result
file, the audit log) may come from a hostile or broken writer. Left to itself,
``json`` turns ``1e309`` into ``inf`` and ``"\\ud800"`` into a string no encoder
accepts, and a document nested 1,000 deep raises ``RecursionError`` in the parser
or in any recursive code that touches it later. Here each of those is one
:class:`Unbounded` (a ``ValueError``) with a one-line reason, raised before the data
reaches anything else. The walk that checks a parsed tree is iterative, so it
never recurses itself.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable
from typing import Any

#: deeper than any FARRO document needs; far below every recursion limit
MAX_DEPTH = 32
#: strings, numbers, lists and objects in one document
MAX_ITEMS = 1_000_000

_SURROGATE = re.compile("[\ud800-\udfff]")


class Unbounded(ValueError):
    """A document beyond FARRO's bounds; ``str()`` is one line saying which."""


def _no_constant(name: str) -> Any:
    raise Unbounded(f"{name} is not valid JSON (numbers must be finite)")


def loads_json(
    text: str | bytes,
    *,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """``json.loads`` that refuses what :func:`check` refuses; ``ValueError`` when invalid."""
    try:
        data = json.loads(
            text,
            parse_constant=_no_constant,
            object_pairs_hook=object_pairs_hook,
        )
    except RecursionError:
        raise Unbounded(f"nested deeper than {max_depth} levels") from None
    check(data, max_depth=max_depth, max_items=max_items)
    return data


def loads_toml(
    text: str, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS
) -> dict[str, Any]:
    """``tomllib.loads`` within the same bounds; ``TOMLDecodeError`` or :class:`Unbounded`."""
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise Unbounded(f"nested deeper than {max_depth} levels") from None
    check(data, max_depth=max_depth, max_items=max_items)
    return data


def check(data: Any, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> None:
    """Refuse a tree nested deeper than ``max_depth``, holding more than ``max_items``
    values, a non-finite float, or a string (or key) with a lone surrogate. The reason
    names where (``labels.k: number inf is not finite``)."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(data, 1, ())]
    items = 0
    while stack:
        value, depth, path = stack.pop()
        items += 1
        if items > max_items:
            raise Unbounded(f"more than {max_items} items")
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Unbounded(f"{_where(path)}number {value} is not finite")
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise Unbounded(f"{_where(path)}nested deeper than {max_depth} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(key, str):
                        _check_text(key, path)
                    stack.append((item, depth + 1, (*path, key)))
            else:
                stack.extend((item, depth + 1, (*path, i)) for i, item in enumerate(value))


def _where(path: tuple[str | int, ...]) -> str:
    """``a.b.0: `` for a short, printable path; nothing for the top level."""
    if not path:
        return ""
    text = ".".join(str(p) for p in path[:6]) + (".…" if len(path) > 6 else "")
    if len(text) > 80 or not text.isprintable() or _SURROGATE.search(text):
        return ""
    return f"{text}: "


def _check_text(text: str, path: tuple[str | int, ...]) -> None:
    found = _SURROGATE.search(text)
    if found is not None:
        raise Unbounded(
            f"{_where(path)}a string holds a lone surrogate (\\u{ord(found.group()):04x}), "
            "which is not text"
        )
