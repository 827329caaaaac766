"""``farro``: the operator's scripting CLI (docs/spec.md §7).

One typer app (:mod:`.app`, with :func:`main` and the error mapping), the output
helpers (:mod:`.render`), and one module per group of commands: :mod:`.submit`,
:mod:`.inspect`, :mod:`.review` (diff, land, retry, report), :mod:`.steer`,
:mod:`.stats`, :mod:`.fsck`. Importing this
package registers every command on the app.

Start-up time is part of the interface (``farro submit`` cold should take well
under 150 ms), so these modules import only typer at the top; each command
imports the parts of farro_core it needs.
"""

# importing the command modules registers their commands on the app
from farro_core.cli import fsck, inspect, review, stats, steer, submit  # noqa: F401
from farro_core.cli.app import app, main
from farro_core.cli.render import _age, _clean, _duration, _table

__all__ = ["_age", "_clean", "_duration", "_table", "app", "main"]

# `farro --help` lists the commands in this order (docs/spec.md §7.2 follows it);
# a command not named here comes after these, in the order it was registered
ORDER = (
    "init",
    "submit",
    "ls",
    "show",
    "requeue",
    "kill",
    "logs",
    "history",
    "diff",
    "land",
    "retry",
    "report",
    "stats",
    "doctor",
    "agents",
    "fsck",
    "gc",
)


def _rank(name: str) -> int:
    return ORDER.index(name) if name in ORDER else len(ORDER)


app.registered_commands.sort(
    key=lambda c: _rank(c.name or getattr(c.callback, "__name__", "").replace("_", "-"))
)
