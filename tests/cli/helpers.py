"""Running ``farro`` and ``farro-tui`` in-process: exit code and both streams, as typed."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

from typer.testing import CliRunner

from farro_core.cli import main as farro_main


@dataclass
class Ran:
    code: int
    out: str
    err: str


def _run(main: object, args: tuple[str, ...], env: dict[str, str] | None) -> Ran:
    with CliRunner().isolation(env=env) as (out, err, _):
        code = main(list(args))  # type: ignore[operator]
        sys.stdout.flush()
        sys.stderr.flush()
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


def farro(*args: str, env: dict[str, str] | None = None) -> Ran:
    return _run(farro_main, args, env)


def farro_tui(*args: str, env: dict[str, str] | None = None) -> Ran:
    """A real process with no terminal: a console started by mistake exits, never hangs."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    out = subprocess.run(
        [sys.executable, "-m", "farro_tui.main", *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**base, **(env or {})},
        timeout=60,
    )
    return Ran(out.returncode, out.stdout, out.stderr)


def one_error(r: Ran, prog: str = "farro") -> str:
    """The run failed with exactly one clean line on stderr; return it."""
    assert r.err.endswith("\n") and r.err.count("\n") == 1, repr(r.err)
    assert r.err.startswith(f"{prog}: "), r.err
    assert "Traceback" not in r.err
    return r.err
