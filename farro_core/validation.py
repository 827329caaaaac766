"""Shared by every parser of outside input: where a NUL hides; a pydantic refusal as one line."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

_PLAIN = (int, float, type(None))  # leaves that cannot hold a NUL: no call made for them


def has_nul(value: Any) -> bool:
    """Whether a NUL is anywhere in a nested value: strings, keys, lists, tuples, models.

    The cheap test (no path is built while looking, no call per plain leaf), run
    on every spec of a batch; :func:`nul_at` names the place once there is one.
    """
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, BaseModel):
        value = value.__dict__
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\0" in key:
                return True
            if isinstance(item, str):
                if "\0" in item:
                    return True
            elif not isinstance(item, _PLAIN) and has_nul(item):
                return True
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, str):
                if "\0" in item:
                    return True
            elif not isinstance(item, _PLAIN) and has_nul(item):
                return True
    return False


def nul_at(value: Any, path: str = "") -> tuple[str, bool] | None:
    """Where the first NUL in a nested value is: ``(dotted path, in a key?)``, or None.

    NUL can reach neither argv, the environment nor a file name intact, so every
    spec and request file is refused if it holds one anywhere.
    """
    if not path and not has_nul(value):
        return None
    if isinstance(value, str):
        return (path, False) if "\0" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and "\0" in key:
                return (path, True)
            found = nul_at(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = nul_at(item, f"{path}.{i}" if path else str(i))
            if found is not None:
                return found
    return None


def explain(exc: ValidationError, where: str = "") -> str:
    """One line naming every field pydantic refused and why (at most a few of them)."""
    parts = []
    errors = exc.errors()
    for err in errors[:_MAX_EXPLAINED]:
        loc = ".".join(_loc(x) for x in err["loc"]) or "(top level)"
        msg = " ".join(err["msg"].removeprefix("Value error, ").split())
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}")
    if len(errors) > _MAX_EXPLAINED:
        parts.append(f"and {len(errors) - _MAX_EXPLAINED} more")
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(parts)


_MAX_EXPLAINED = 8
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _loc(part: str | int) -> str:
    """A field name as is; a key from the input (a label, say) quoted, so it stays one line."""
    text = str(part)
    return text if _PLAIN_KEY.fullmatch(text) else ascii(text)
