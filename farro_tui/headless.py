"""``farro-tui --workers-only``: the System without a console, for servers and systemd.

Logs one readable line per event (worker, job, transition) through rich's
logging handler. SIGTERM, SIGINT and SIGHUP all mean "stop": workers stop
claiming, running attempts get ``shutdown_grace_s``, then are released back to
queued, and the process exits 0 with nothing left in-progress. Never imports
textual: a headless worker should not pay for the console.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from farro_core.root import Root
from farro_core.system import System
from farro_core.visible import visible

log = logging.getLogger("farro.headless")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class VisibleFormatter(logging.Formatter):
    """Log lines quote job data (titles, reasons, inbox file names): escaped, so neither
    this terminal nor a later ``cat`` of the journal runs what they hold."""

    def format(self, record: logging.LogRecord) -> str:
        return visible(super().format(record), lines=True)


def setup_logging(level: int = logging.INFO) -> None:
    """Rich on a terminal; plain single lines (no wrapping, no padding) for journald and files."""
    handler: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(
            console=Console(stderr=True),
            show_path=False,
            markup=False,
            rich_tracebacks=False,
            log_time_format="[%Y-%m-%d %H:%M:%S]",
        )
        handler.setFormatter(VisibleFormatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            VisibleFormatter("%(asctime)s %(levelname)-7s %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("watchfiles").setLevel(logging.WARNING)


def run(root_path: Path, *, workers: int | None = None) -> int:
    """Run until a stop signal; return the exit code. Bad roots raise FarroError."""
    root = Root.open(root_path)
    settings = root.settings  # a bad farro.toml fails here, before anything starts
    setup_logging()
    system = System(root, workers=workers, settings=settings)
    stop = threading.Event()
    got: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("%s: already stopping, please wait", name)
            return
        got.append(name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    try:
        log.info(
            "farro-tui --workers-only on %s: %d worker%s %s",
            root.path,
            system.n_workers,
            "" if system.n_workers == 1 else "s",
            ", ".join(system.worker_names) or "(manager only)",
        )
        system.start()
        while not stop.wait(1.0):
            pass
        log.info(
            "%s: stopping; running attempts get %g s, then go back to the queue",
            got[0] if got else "stop",
            settings.shutdown_grace_s,
        )
        system.stop(release=True)
        log.info("stopped cleanly")
        return 0
    finally:
        system.stop(release=True)  # a no-op after a clean stop
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stderr.flush()
