"""Run FARRO's workers headless on a root until SIGTERM/SIGINT.

The benchmarks run ``farro-tui --workers-only``; this module runs the same
System object itself for the ``--no-fsync`` what-if.

    python benchmarks/_headless.py ROOT WORKERS [--no-fsync]
"""

from __future__ import annotations

import signal
import sys
import threading
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
    import os

    if "--no-fsync" in sys.argv:
        os.fsync = lambda fd: None

    from farro_core.root import Root
    from farro_core.system import System

    system = System(Root.open(sys.argv[1]), workers=int(sys.argv[2]))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    system.start()
    done.wait()
    system.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
