"""The parts of README.md and docs/spec.md that are made from the code itself.

A block between ``<!-- generated: NAME ... -->`` and ``<!-- end generated: NAME -->``
is rendered here from what defines it: the settings model, the typer app, the
console's bindings, farro-tui's argument parser. So the docs cannot drift from the
code: ``python -m farro_tui.docgen`` rewrites every block, ``--check`` lists the
stale ones, and tests/test_docs.py fails while any block differs. A developer
tool like farro_tui.screenshots; it lives here because it imports the console.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import pkgutil
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin

REPO = Path(__file__).resolve().parent.parent
COMMAND = "python -m farro_tui.docgen"
_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+)[^\n]*?-->\n)(?P<body>.*?)"
    r"(<!-- end generated: (?P=name) -->)",
    re.DOTALL,
)
NONE = "\N{EN DASH}"  # an empty cell that says "nothing", not "forgotten"


def _cell(text: object) -> str:
    """Table-safe text: a ``|`` would end the cell, a newline the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- settings


def _setting_rows() -> Iterator[tuple[str, Any, str, str]]:
    """(name, field info, default as shown, description) for every setting."""
    from farro_core.settings import Settings

    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "default_text" in extra:
            shown = str(extra["default_text"])
        else:
            shown = _value(info.get_default(call_default_factory=True))
        yield name, info, shown, info.description or ""


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_table(info: Any) -> bool:
    return get_origin(info.annotation) is dict


def settings_table() -> str:
    """README.md: key, default, meaning."""
    rows = []
    for name, info, shown, desc in _setting_rows():
        key = f"`[{name}]`" if _is_table(info) else f"`{name}`"
        rows.append([key, _cell(shown), _cell(desc)])
    return _table(["key", "default", "meaning"], rows)


def _kind(info: Any, name: str) -> str:
    ann = info.annotation
    if get_origin(ann) is dict:
        return "table"
    if get_origin(ann) in (Union, types.UnionType) and str in get_args(ann):
        return "argv list or string"
    if ann is bool:
        return "boolean"
    if ann is int:
        return "integer"
    if ann is float:
        return "seconds" if name.endswith("_s") else "number"
    return str(ann)


def _bounds(info: Any) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for meta in info.metadata:
        for attr, sign in signs.items():
            bound = getattr(meta, attr, None)
            if bound is not None:
                parts.append(f"{sign} {_value(bound)}")
    return ", ".join(parts)


def settings_reference() -> str:
    """docs/spec.md §8: every setting with its variable, type, default and range."""
    from farro_core.settings import ENV_PREFIX

    rows = []
    for name, info, shown, desc in _setting_rows():
        table = _is_table(info)
        rows.append(
            [
                f"`[{name}]`" if table else f"`{name}`",
                NONE if table else f"`{ENV_PREFIX}{name.upper()}`",
                _kind(info, name),
                _cell(shown) or NONE,
                _cell(_bounds(info)) or NONE,
                _cell(desc),
            ]
        )
    return _table(["key", "environment", "type", "default", "allowed", "meaning"], rows)


# ---------------------------------------------------------------- farro (the CLI)


def _usage_piece(param: Any) -> str:
    name = param.metavar or param.name.upper()
    many = "..." if param.nargs != 1 else ""
    return f"{name}{many}" if param.required else f"[{name}]{many}"


def cli_reference() -> str:
    """docs/spec.md §7.2: every command of the typer app, its arguments and options."""
    import typer

    from farro_core.cli import app

    group = typer.main.get_command(app)
    out: list[str] = []
    for name, cmd in getattr(group, "commands", {}).items():
        params = [p for p in cmd.params if p.name != "help"]
        args = [p for p in params if p.param_type_name == "argument"]
        opts = [p for p in params if p.param_type_name == "option" and p.name != "root"]
        usage = " ".join(
            ["farro", name, *(_usage_piece(a) for a in args)]
            + (["[OPTIONS]"] if opts else [])
            + (["[--root PATH]"] if any(p.name == "root" for p in params) else [])
        )
        out += [f"#### `farro {name}`", "", f"`{usage}`", ""]
        out += [" ".join(inspect.cleandoc(cmd.help or "").split()), ""]
        rows = []
        for p in args:
            rows.append([f"`{_usage_piece(p)}`", "", "", _cell(getattr(p, "help", "") or "")])
        for p in opts:
            flags = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
            if p.multiple:
                flags += " (repeatable)"
            value = "" if p.is_flag else _cell(p.metavar or "")
            default = "" if p.is_flag or p.default in (None, ()) else _cell(_value(p.default))
            rows.append([flags, value and f"`{value}`", default, _cell(p.help or "")])
        if rows:
            out.append(_table(["argument / option", "value", "default", "meaning"], rows))
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------- farro-tui


def tui_flags() -> str:
    """docs/spec.md §7.3: farro-tui's flags, from its argument parser."""
    from farro_tui.main import parser

    rows = []
    usage = ["farro-tui"]
    for action in parser()._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flags = ", ".join(f"`{o}`" for o in action.option_strings)
        takes = action.nargs != 0
        metavar = str(action.metavar or (action.dest.upper() if takes else ""))
        usage.append(f"[{action.option_strings[0]}{' ' + metavar if metavar else ''}]")
        rows.append([flags, f"`{metavar}`" if metavar else "", _cell(action.help or "")])
    return f"`{' '.join(usage)}`\n\n" + _table(["flag", "value", "meaning"], rows)


#: where each bindings-holding class of the console is in effect
WHERE = {
    "FarroApp": "everywhere",
    "QueueView": "queue",
    "MainScreen": "queue",
    "JobScreen": "job",
    "LogScreen": "log",
    "DiffScreen": "diff",
    "ReportScreen": "batch",
    "WorkersScreen": "workers",
    "ConfirmScreen": "confirmation",
    "QuitScreen": "quit dialog",
    "SortScreen": "sort dialog",
    "HelpScreen": "help",
    "NoteScreen": "follow-up note",
}
_KEY_SHOWN = {
    "question_mark": "?",
    "slash": "/",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "escape": "esc",
}


def _binding_classes() -> list[type]:
    """Every console class that declares BINDINGS of its own, in module order."""
    import farro_tui

    found: list[type] = []
    for mod in pkgutil.walk_packages(farro_tui.__path__, "farro_tui."):
        if mod.name in (__name__, "farro_tui.main", "farro_tui.__main__"):
            continue
        module = importlib.import_module(mod.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and "BINDINGS" in vars(cls) and cls not in found:
                found.append(cls)
    order = list(WHERE)
    return sorted(found, key=lambda c: order.index(c.__name__) if c.__name__ in order else 99)


def keys_reference() -> str:
    """docs/spec.md §7.4: every console binding, and the id that remaps it."""
    from textual.binding import Binding

    rows = []
    for cls in _binding_classes():
        where = WHERE.get(cls.__name__, cls.__name__)
        for b in vars(cls)["BINDINGS"]:
            if not isinstance(b, Binding):
                continue
            keys = ", ".join(f"`{_KEY_SHOWN.get(k, k)}`" for k in b.key.split(","))
            rows.append(
                [where, keys, _cell(b.description or b.action), f"`{b.id}`" if b.id else NONE]
            )
    rows.append(["everywhere", "`ctrl+p`", "Command palette (Textual's)", NONE])
    return _table(["where", "keys", "does", "id (for `[keys]`)"], rows)


# ---------------------------------------------------------------- the files

GENERATORS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "settings-reference": settings_reference,
    "cli": cli_reference,
    "tui-flags": tui_flags,
    "keys": keys_reference,
}
#: which blocks each file must hold
FILES: dict[str, tuple[str, ...]] = {
    "README.md": ("settings",),
    "docs/spec.md": ("cli", "tui-flags", "keys", "settings-reference"),
}


def render(text: str) -> str:
    """``text`` with every generated block made afresh."""
    return _BLOCK.sub(lambda m: m.group(1) + GENERATORS[m.group("name")]() + m.group(4), text)


def problems(repo: Path = REPO) -> list[str]:
    """What is stale or missing, each saying how to put it right (empty: all current)."""
    out = []
    for rel, names in FILES.items():
        try:
            text = (repo / rel).read_text()
        except FileNotFoundError:
            out.append(f"{rel} is missing")
            continue
        found = [m.group("name") for m in _BLOCK.finditer(text)]
        for name in found:
            if name not in GENERATORS:
                out.append(
                    f"{rel}: unknown generated block {name!r} (known: {', '.join(GENERATORS)})"
                )
        for name in names:
            if name not in found:
                out.append(
                    f"{rel}: the generated block {name!r} is missing; put "
                    f"'<!-- generated: {name} ({COMMAND}) -->' and "
                    f"'<!-- end generated: {name} -->' where it belongs, then run `{COMMAND}`"
                )
        if any(n not in GENERATORS for n in found):
            continue
        fresh = render(text)
        if fresh != text:
            diff = "".join(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    fresh.splitlines(keepends=True),
                    f"{rel} (now)",
                    f"{rel} (from the code)",
                    n=1,
                )
            )
            out.append(
                f"{rel} is out of date with the code: run `{COMMAND}` and commit the result "
                f"(after checking the code change was meant):\n{diff}"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description="Regenerate the docs made from code.")
    p.add_argument("--check", action="store_true", help="only report stale blocks (exit 1)")
    args = p.parse_args(argv)
    if args.check:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    for rel in FILES:
        path = REPO / rel
        text = path.read_text()
        fresh = render(text)
        if fresh != text:
            path.write_text(fresh)
            print(f"updated {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
