"""The one typer app, the options and arguments the commands share, and :func:`main`.

:func:`main` imports only the module of the command it runs (:data:`COMMANDS`),
so ``farro submit`` pays for neither the other commands nor what they import;
it runs typer with ``standalone_mode=False`` and maps every exception
to one ``farro: `` line on stderr and an exit code (0 success, 1 refused, 2 bad
input, 130 interrupted): never a traceback.

No ``from __future__ import annotations`` in this package: typer reads every
command's signature at each start, and evaluating string annotations cost ~10 ms of it.
"""

import gc
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from farro_core.cli.render import _clean, _err
from farro_core.visible import visible

if TYPE_CHECKING:
    from farro_core.envelope import Envelope
    from farro_core.root import Root


app = typer.Typer(
    name="farro",
    help="Run batches of AI coding-agent jobs from a plain directory tree.",
    epilog=(
        "\b\nThe root is --root PATH, else $FARRO_ROOT, else ~/.farro.\n"
        "Exit status: 0 done, 1 refused (unknown job, illegal move, queue full), "
        "2 bad input."
    ),
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


RootOpt = Annotated[
    str | None,
    typer.Option(
        "--root",
        metavar="PATH",
        help="The FARRO root (default: $FARRO_ROOT, else ~/.farro).",
        show_default=False,
    ),
]


JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]


IdsArg = Annotated[list[str], typer.Argument(metavar="ID", help="Job ids.", show_default=False)]


IdArg = Annotated[str, typer.Argument(metavar="ID", help="A job id.", show_default=False)]


# every command and the module under farro_core/cli/ that defines it (importing the
# module registers it on the app), in the order `farro --help` lists them
# (docs/spec.md §7.2 follows it); tests/test_cli_start.py checks it against the app
COMMANDS = {
    "init": "submit",
    "submit": "submit",
    "ls": "inspect",
    "show": "inspect",
    "requeue": "steer",
    "kill": "steer",
    "logs": "inspect",
    "history": "inspect",
    "diff": "review",
    "land": "review",
    "keep": "steer",
    "retry": "review",
    "report": "review",
    "stats": "stats",
    "doctor": "stats",
    "agents": "stats",
    "fsck": "fsck",
    "gc": "fsck",
}


def commands(name: str | None = None) -> typer.Typer:
    """The app with command ``name`` registered, or with every command (no name, an
    unknown one); a command's help and behaviour are the same either way."""
    module = COMMANDS.get(name) if name is not None else None
    for m in [module] if module is not None else dict.fromkeys(COMMANDS.values()):
        importlib.import_module(f"farro_core.cli.{m}")
    app.registered_commands.sort(key=_rank)
    return app


def _rank(info: Any) -> int:
    name = info.name or getattr(info.callback, "__name__", "").replace("_", "-")
    order = list(COMMANDS)
    return order.index(name) if name in order else len(order)


STATUSES = ("queued", "in-progress", "stale", "succeeded", "failed", "killed")


_ALIASES = {"running": "in-progress", "inprogress": "in-progress", "in_progress": "in-progress"}


class _Failed(Exception):
    """Some items of a multi-id command were refused; each was reported already."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _open(root: str | None) -> "Root":
    from farro_core.root import Root

    return Root.open(root)


def _check_ids(ids: Iterable[str]) -> list[str]:
    """Valid ids, each once (in the order given); the first bad one is refused as bad input."""
    from farro_core.errors import BadInput
    from farro_core.ids import ID_PATTERN

    out: list[str] = []
    for i in ids:
        if not ID_PATTERN.fullmatch(i):
            raise BadInput(
                f"invalid job id {visible(repr(i))}: expected 8 to 64 letters, digits, - or _ "
                "(the ids `farro submit` and `farro ls` print)"
            )
        if i not in out:
            out.append(i)
    return out


def _operator() -> str:
    """Who is acting, as the audit names them (the same in the console and the inbox)."""
    from farro_core.identity import operator

    return operator()


def _labels(items: Sequence[str]) -> dict[str, str]:
    """``--label K=V`` options as a dict; a malformed or repeated key is bad input."""
    from farro_core.errors import BadInput

    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--label {_clean(repr(item))}: expected KEY=VALUE")
        if key in labels:
            raise BadInput(f"--label {_clean(repr(key))} is given twice")
        labels[key] = value
    return labels


def _statuses(status: str | None) -> list[str] | None:
    from farro_core.errors import BadInput

    if status is None:
        return None
    out = []
    parts = status.split(",")
    for n, part in enumerate(parts):
        if not part.strip():  # `queued,,failed`, `queued,`, `""`: say which, not `''`
            where = "is empty" if len(parts) == 1 else f"has an empty item (item {n + 1})"
            raise BadInput(
                f"--status {status!r} {where}: give statuses joined by commas, "
                "e.g. --status queued,failed"
            )
        name = _ALIASES.get(part.strip().lower(), part.strip().lower())
        if name not in STATUSES:
            raise BadInput(
                f"--status {part!r}: expected one of {', '.join(STATUSES)} "
                "(running means in-progress; join several with commas)"
            )
        out.append(name)
    return out


def _load(r: "Root", job_id: str) -> "Envelope":
    from farro_core.errors import Corrupt
    from farro_core.job import load

    try:
        return load(r, job_id)
    except Corrupt as exc:
        raise Corrupt(
            f"job {job_id} is unreadable ({exc}); `farro fsck --repair` moves it to quarantine/"
        ) from None


def _report(code: int, msg: str) -> int:
    _err(msg)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = typer.main.get_command(commands(args[0] if args else None))
        _plain_argument_help(command)
        rv = command.main(args=args, prog_name="farro", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except KeyboardInterrupt:
        code = 130
    except _Failed as exc:
        code = exc.code
    except BrokenPipeError:
        # the reader went away (farro ls | head): stop quietly
        _silence_stdout()
        code = 1
    except BaseException as exc:
        code = _map_exception(exc, args[0] if args and not args[0].startswith("-") else None)
    if "farro_core.notify" in sys.modules:  # a job this command finished: its on_finish
        sys.modules["farro_core.notify"].wait_all()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


def run() -> NoReturn:
    """The ``farro`` process: :func:`main`, then exit without a last garbage collection.

    The interpreter's collections at exit walk every object typer and pydantic made
    (~30 ms of a cold ``farro submit``); freezing them first skips that. What must
    happen at exit still does (atexit, ``weakref.finalize``, flushing stdout), and the
    process's end frees the memory.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


def _plain_argument_help(command: Any) -> None:
    """Help shows ``ID...`` as click does, not typer's ``{ID}...`` and ``ID <list[str]>``."""
    # replaces two methods of typer's TyperArgument (not public API): typer is pinned in
    # pyproject.toml and tests/test_cli_typer.py fails if an upgrade moves them
    for sub in getattr(command, "commands", {}).values():
        for param in sub.params:
            if param.param_type_name != "argument" or not hasattr(param, "display_type_rich"):
                continue
            name = param.metavar or param.name.upper()
            usage = (name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else "")
            param.display_type_rich = lambda ctx: None
            param.get_usage_pieces = lambda ctx, usage=usage: [usage]


def _map_exception(exc: BaseException, sub: str | None = None) -> int:
    from farro_core.errors import FarroError

    if isinstance(exc, FarroError):
        _err(str(exc) or type(exc).__name__)
        return exc.exit_code
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, typer.Abort):
        return 130
    if isinstance(exc, typer.TyperException):  # click usage errors and friends
        # typer._click.exceptions.NoArgsIsHelpError (tests/test_cli_typer.py)
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
            return 0
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            cmd = f" {ctx.info_name}" if ctx.parent is not None else ""
        else:  # an option's missing value: click names no command, it is the one given
            cmd = f" {sub}" if sub else ""
        _err(f"{exc.format_message().rstrip('.')} (see `farro{cmd} --help`)")
        return 2 if exc.exit_code == 2 else exc.exit_code or 1
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    if os.environ.get("FARRO_DEBUG"):
        raise exc
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        _err(f"{exc.strerror or exc}{where}")
        return 1
    _err(f"internal error: {type(exc).__name__}: {exc} (FARRO_DEBUG=1 shows the traceback)")
    return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
