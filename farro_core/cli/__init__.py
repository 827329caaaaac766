"""``farro``: the operator's scripting CLI (docs/spec.md §7).

One typer app (:mod:`.base`, with :func:`main` and the error mapping), the output
helpers (:mod:`.render`), and one module per group of commands: :mod:`.submit`,
:mod:`.inspect`, :mod:`.review` (diff, land, retry, report), :mod:`.steer`,
:mod:`.stats`, :mod:`.fsck`.

Start-up time is part of the interface (``farro submit`` cold: 100 ms), so
importing this package imports only typer and the output helpers: :func:`main`
imports the one command module it runs (:data:`.base.COMMANDS`), each command
imports the parts of farro_core it needs, and ``app``, the typer app with every
command registered (docgen, tests), is made on first use.
"""

from typing import TYPE_CHECKING

from farro_core.cli.base import COMMANDS, commands, main, run
from farro_core.cli.render import _age, _clean, _duration, _table

if TYPE_CHECKING:
    import typer

__all__ = ["COMMANDS", "_age", "_clean", "_duration", "_table", "app", "commands", "main", "run"]


def __getattr__(name: str) -> "typer.Typer":
    if name == "app":
        return commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
