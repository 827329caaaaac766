"""Shared by every parser of outside input: where a NUL hides; a pydantic refusal as one
line; and how FARRO's models are built at import, without pydantic's plugin scan."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ValidationError

_NO_PLUGINS = "PYDANTIC_DISABLE_PLUGINS"


@contextmanager
def without_plugins() -> Iterator[None]:
    """Build pydantic models here without looking for pydantic plugins.

    The first model built looks for them in the entry points of every installed
    distribution, ~2% of a cold ``farro submit``. pydantic's one switch is this
    environment variable, which typer also sets around the validators it builds.
    It is removed again on the way out, so no child process (an agent, an
    ``on_finish`` hook) inherits it; and it is set only while this is the
    process's one thread, since another could start a child in the meantime
    (then the plugins are looked for). A value the user set is left alone.
    """
    if _NO_PLUGINS in os.environ or threading.active_count() > 1:
        yield
        return
    os.environ[_NO_PLUGINS] = "1"
    try:
        yield
    finally:
        del os.environ[_NO_PLUGINS]


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
    errors = _one_member(list(exc.errors()))
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
_BUILTIN_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "tuple", "none"})


def _is_member_tag(part: object) -> bool:
    """Whether a loc part is the tag pydantic gives a union's member ('AgentPreset',
    'list[str]', 'str'), not a field: FARRO's fields are lower-case words."""
    return isinstance(part, str) and ("[" in part or part[:1].isupper() or part in _BUILTIN_TAGS)


def _one_member(errors: list[Any]) -> list[Any]:
    """A union's refusal is reported once per member, under its tag (``agent = {preset =
    "claud"}`` read ``agent.AgentPreset.preset: …; agent.'list[str]': Input should be a
    valid list; agent.str: …``). When every member but one refused only the value's
    type, that one alone says what is wrong, without its tag: ``agent.preset: …``."""
    for err in errors:
        loc = tuple(err["loc"])
        if len(loc) < 2 or not _is_member_tag(loc[-1]) or not err["type"].endswith("_type"):
            continue
        parent = loc[:-1]
        group = [
            e for e in errors
            if tuple(e["loc"])[: len(parent)] == parent and len(e["loc"]) > len(parent)
        ]  # fmt: skip
        tags = {e["loc"][len(parent)] for e in group}
        if len(tags) < 2 or not all(_is_member_tag(t) for t in tags):
            continue
        understood = {
            e["loc"][len(parent)]
            for e in group
            if not (len(e["loc"]) == len(parent) + 1 and e["type"].endswith("_type"))
        }
        if len(understood) != 1:
            continue
        (tag,) = understood
        kept = [
            {**e, "loc": (*parent, *tuple(e["loc"])[len(parent) + 1 :])}
            for e in group
            if e["loc"][len(parent)] == tag
        ]
        first = errors.index(group[0])
        rest = [e for e in errors if not any(e is g for g in group)]
        return _one_member(rest[:first] + kept + rest[first:])
    return errors


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _loc(part: str | int) -> str:
    """A field name as is; a key from the input (a label, say) quoted, so it stays one line."""
    text = str(part)
    return text if _PLAIN_KEY.fullmatch(text) else ascii(text)
