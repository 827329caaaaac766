"""The typer internals farro_core/cli/base.py leans on, pinned in pyproject.toml.

``_plain_argument_help`` replaces two methods of each of typer's arguments so help
reads ``ID...`` (not ``{ID}`` and ``ID <list[str]>``), and ``_map_exception`` tells
a bare ``farro`` from a usage error by typer's exception names. Neither is public
typer API: typer is pinned to one minor version, and these tests fail, naming what
moved, if an upgrade changes them.
"""

from __future__ import annotations

import inspect
import re
import sys
import tomllib
from pathlib import Path

import pytest
import typer
import typer.core
from typer.testing import CliRunner

from farro_core.cli import app, main

COMMANDS = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def help_of(*args: str) -> tuple[int, str]:
    with CliRunner().isolation() as (out, _, _):
        code = main([*args, "--help"] if args else [])
        sys.stdout.flush()
        return code, out.getvalue().decode()


def test_typer_is_pinned_to_the_minor_version_these_tests_checked() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("typer")]
    assert pins == ["typer>=0.29,<0.30"], pins
    assert typer.__version__.startswith("0.29."), typer.__version__


def test_the_argument_methods_the_help_patch_replaces_are_still_used() -> None:
    argument = typer.core.TyperArgument
    assert argument.param_type_name == "argument"
    for method in ("display_type_rich", "get_usage_pieces"):
        assert callable(getattr(argument, method, None)), f"TyperArgument.{method} is gone"
    # the help row and the usage line are built from these two, per instance
    assert "self.display_type_rich(" in inspect.getsource(argument.get_help_record)
    usage = inspect.getsource(typer.core.TyperCommand.collect_usage_pieces)
    assert "param.get_usage_pieces(ctx)" in usage


def test_the_exceptions_main_maps_keep_their_names() -> None:
    from typer._click import exceptions

    assert issubclass(exceptions.NoArgsIsHelpError, typer.TyperException)
    assert issubclass(exceptions.UsageError, typer.TyperException)
    assert not issubclass(typer.Exit, typer.TyperException)
    code, out = help_of()
    assert code == 0 and out.startswith("Usage: farro [OPTIONS] COMMAND [ARGS]...\n")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_names_arguments_plainly(command: str) -> None:
    code, out = help_of(command)
    assert code == 0
    usage = out.splitlines()[0]
    assert usage.startswith(f"Usage: farro {command} [OPTIONS]")
    assert "{" not in usage, usage
    assert not re.search(r"^  [A-Z_]+(\.\.\.)? <", out, re.MULTILINE), out
