"""``farro``: the operator's scripting CLI (docs/spec.md §7).

One typer app (:mod:`.base`, with :func:`main` and the error mapping), the output
helpers (:mod:`.render`), and one module per group of commands: :mod:`.submit`,
:mod:`.inspect`, :mod:`.review` (diff, land, retry, report), :mod:`.steer`,
:mod:`.stats`, :mod:`.fsck`.

Start-up time is part of the interface (``farro submit`` cold: 100 ms), so
importing this package imports nothing (its names are loaded on first use):
:func:`main` imports the one command module it runs (:data:`.base.COMMANDS`), each
command imports the parts of farro_core it needs, and ``app``, the typer app with
every command registered (docgen, tests), is made on first use.
"""

import gc
from importlib import import_module
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from farro_core.cli.base import COMMANDS, commands, main
    from farro_core.cli.render import _age, _clean, _duration, _table

__all__ = ["COMMANDS", "_age", "_clean", "_duration", "_table", "app", "commands", "main", "run"]

_LAZY = {
    "COMMANDS": "base",
    "commands": "base",
    "main": "base",
    "_age": "render",
    "_clean": "render",
    "_duration": "render",
    "_table": "render",
}


def run() -> NoReturn:
    """The ``farro`` process (the console script): :func:`.base.run`, typer imported first
    with the garbage collector off.

    Importing typer makes objects that live as long as the process, and the
    collections it set off walked them again and again (~1% of a cold ``farro
    submit``); they are frozen instead, out of the collector's reach, which then
    runs as usual.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        from farro_core.cli import base
    finally:
        gc.freeze()
        if collecting:
            gc.enable()
    base.run()


def __getattr__(name: str) -> Any:
    if name == "app":
        return import_module("farro_core.cli.base").commands()
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"farro_core.cli.{module}"), name)
