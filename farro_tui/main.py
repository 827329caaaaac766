"""``farro-tui``: the console, or with ``--workers-only`` the same System headless.

argparse rather than typer, and no textual import on the headless path: a
``--workers-only`` process starts in a fraction of a second and never loads the UI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

PROG = "farro-tui"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line, exit 2, like every other bad input (`--help` shows the usage)
        self.exit(2, f"{PROG}: {message} (see {PROG} --help)\n")


def _count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 0 or n > 256:
        raise argparse.ArgumentTypeError(f"must be between 0 and 256, not {n}")
    return n


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="FARRO console; with --workers-only, the workers and manager headless.",
    )
    p.add_argument("--root", help="the FARRO root (default: $FARRO_ROOT, else ~/.farro)")
    p.add_argument(
        "--workers", type=_count, metavar="N", help="embedded workers (default: settings)"
    )
    p.add_argument("--no-workers", action="store_true", help="only observe and steer")
    p.add_argument(
        "--workers-only", action="store_true", help="no console: run the workers until SIGTERM"
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="seed the root with demo jobs first (without --root: a fresh temporary root)",
    )
    p.add_argument(
        "--readonly",
        action="store_true",
        help="only observe: no workers, no manager role, no action that changes a job",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    conflicts = [
        (args.workers_only and args.no_workers, "--workers-only and --no-workers"),
        (args.workers_only and args.readonly, "--workers-only and --readonly"),
        (args.no_workers and args.workers is not None, "--no-workers and --workers"),
        (args.readonly and args.workers is not None, "--readonly and --workers"),
    ]
    for bad, what in conflicts:
        if bad:
            return _fail(f"{what} contradict each other")
    from farro_core.errors import FarroError
    from farro_core.root import Root

    try:
        if args.demo and args.readonly:  # before _root_path, which makes a temporary root
            from farro_core.demo import refuse_readonly
            from farro_core.root import resolve_path

            refuse_readonly(None if args.root is None else resolve_path(args.root))
        path = _root_path(args)
        if args.demo and not args.readonly:
            from farro_core.demo import refuse_real_root, seed

            refuse_real_root(path)
            seed(Root.init(path))
            print(f"{PROG}: demo root {path}", file=sys.stderr)
        if args.workers_only:
            from farro_tui.headless import run

            return run(path, workers=args.workers)
        root = Root.open(path)
        root.settings  # noqa: B018 - a bad farro.toml is reported here, in one line
    except FarroError as exc:
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    try:
        from farro_tui.app import FarroApp
    except ImportError as exc:
        return _fail(f"the console is not available ({exc})")
    FarroApp(
        root=root,
        workers=args.workers,
        no_workers=args.no_workers,
        readonly=args.readonly,
    ).run()
    return 0


def _root_path(args: argparse.Namespace) -> Path:
    from farro_core.root import resolve_path

    if args.demo and args.root is None:
        return Path(tempfile.mkdtemp(prefix="farro-demo-"))
    return resolve_path(args.root)


def _fail(message: str, code: int = 2) -> int:
    from farro_core.visible import visible

    print(f"{PROG}: {visible(message)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
