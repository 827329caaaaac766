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
from collections.abc import Callable
from typing import Any

#: deeper than any FARRO document needs; far below every recursion limit
MAX_DEPTH = 32
#: strings, numbers, lists and objects in one document
MAX_ITEMS = 1_000_000

_SURROGATE = re.compile("[\ud800-\udfff]")
#: a JSON escape of a surrogate (paired or not): the only way JSON text from bytes holds one
_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite(literal: str) -> float:
    """``parse_float``: ``1e309`` parses as ``inf``, which no JSON writer can write back."""
    value = float(literal)
    if not math.isfinite(value):
        raise Unbounded(f"number {literal[:40]} is not finite")
    return value


def _no_constant(name: str) -> Any:
    raise Unbounded(f"{name} is not valid JSON (numbers must be finite)")


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


class Unbounded(ValueError):
    """A document beyond FARRO's bounds; ``str()`` is one line saying which."""


def loads_json(
    text: str | bytes,
    *,
    max_depth: int = MAX_DEPTH,
    max_items: int = MAX_ITEMS,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """``json.loads`` that refuses what :func:`check` refuses; ``ValueError`` when invalid."""
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text))  # strict: no encoded surrogates
        raw_surrogates = False
    else:
        raw_surrogates = _SURROGATE.search(text) is not None
    decoder = (
        _DECODER
        if object_pairs_hook is None
        else json.JSONDecoder(
            parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=object_pairs_hook
        )
    )
    try:
        data = decoder.decode(text)
    except RecursionError:
        raise Unbounded(f"nested deeper than {max_depth} levels") from None
    # numbers were checked as parsed; a lone surrogate needs an escape (or a raw one)
    surrogates = raw_surrogates or ("\\u" in text and _ESCAPE.search(text) is not None)
    opens = text.count("[") + text.count("{")
    if opens < max_depth and opens + text.count(",") < max_items and not surrogates:
        return data  # the text alone proves the bounds (the usual job.json): no walk
    check(data, max_depth=max_depth, max_items=max_items, text=surrogates)
    return data


def loads_toml(
    text: str, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS
) -> dict[str, Any]:
    """``tomllib.loads`` within the same bounds; ``TOMLDecodeError`` or :class:`Unbounded`."""
    import tomllib  # here: importing it is ~1% of a cold `farro submit`, which reads no TOML

    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise Unbounded(f"nested deeper than {max_depth} levels") from None
    # tomllib refuses surrogate escapes itself: no string can hold one
    check(data, max_depth=max_depth, max_items=max_items, text=False)
    return data


def check(
    data: Any, *, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS, text: bool = True
) -> None:
    """Refuse a tree nested deeper than ``max_depth``, holding more than ``max_items``
    values, a non-finite float, or (unless ``text`` is False) a string or key with a lone
    surrogate. The reason names where (``labels.k: number inf is not finite``).

    The walk is iterative and keeps no paths; only a tree it refuses is walked again,
    with paths, to say where.
    """
    if not _fast_ok(data, max_depth, max_items, text):
        _explain(data, max_depth, max_items, text)


def _fast_ok(data: Any, max_depth: int, max_items: int, text: bool) -> bool:
    stack: list[tuple[Any, int]] = [(data, 1)]
    items = 0
    search = _SURROGATE.search
    isfinite = math.isfinite
    while stack:
        value, depth = stack.pop()
        items += 1
        kind = type(value)
        if kind is str:
            if text and search(value):
                return False
        elif kind is float:
            if not isfinite(value):
                return False
        elif kind is dict or kind is list or isinstance(value, dict | list):
            if depth >= max_depth or items + len(value) > max_items:
                return False
            depth += 1
            if isinstance(value, dict):
                if text and any(type(k) is str and search(k) for k in value):
                    return False
                stack.extend((item, depth) for item in value.values())
            else:
                stack.extend((item, depth) for item in value)
        elif isinstance(value, float) and not isfinite(value):
            return False
    return True


def _explain(data: Any, max_depth: int, max_items: int, text: bool) -> None:
    """Walk a refused tree again, keeping paths, and raise saying what and where."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(data, 1, ())]
    items = 0
    while stack:
        value, depth, path = stack.pop()
        items += 1
        if isinstance(value, str):
            if text:
                _check_text(value, path)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise Unbounded(f"{_where(path)}number {value} is not finite")
        elif isinstance(value, dict | list):
            if depth >= max_depth:
                raise Unbounded(f"{_where(path)}nested deeper than {max_depth} levels")
            if items + len(value) > max_items:
                raise Unbounded(f"more than {max_items} items")
            if isinstance(value, dict):
                for key, item in value.items():
                    if text and isinstance(key, str):
                        _check_text(key, path)
                    stack.append((item, depth + 1, (*path, key)))
            else:
                stack.extend((item, depth + 1, (*path, i)) for i, item in enumerate(value))
    raise Unbounded("beyond FARRO's bounds")  # unreachable: the fast walk found something


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
