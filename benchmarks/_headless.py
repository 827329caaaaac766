"""Run FARRO's workers headless on a root until SIGTERM/SIGINT.

The benchmarks run ``farro-tui --workers-only``; this module runs the same code
(farro_tui.headless.run) in-process for the ``--no-fsync`` what-if.

    python benchmarks/_headless.py ROOT WORKERS [--no-fsync]
"""

from __future__ import annotations

import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def command(root: Path, workers: int, *, no_fsync: bool = False) -> list[str]:
    """The argv that runs ``workers`` headless workers (and a manager) on ``root``.

    ``no_fsync`` (a what-if for the report, not a FARRO mode) runs the stand-in
    with ``os.fsync`` replaced by a no-op, to show what durability costs.
    """
    if no_fsync:
        return [sys.executable, __file__, str(root), str(workers), "--no-fsync"]
    tui = BIN / "farro-tui"
    return [str(tui), "--workers-only", "--root", str(root), "--workers", str(workers)]


def main() -> int:
    """``farro-tui --workers-only`` itself (farro_tui.headless.run), with fsync patched out."""
    import os

    if "--no-fsync" in sys.argv:
        os.fsync = lambda fd: None

    from farro_tui.headless import run

    return run(Path(sys.argv[1]), workers=int(sys.argv[2]))


if __name__ == "__main__":
    sys.exit(main())
