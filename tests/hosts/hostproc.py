"""One test "host": a System (manager optional) until SIGTERM, like farro-tui --workers-only.

Run inside the host's own UTS/PID/mount namespaces by tests/hosts/harness.py.
Usage: hostproc.py ROOT WORKERS MANAGER(0|1)
"""

from __future__ import annotations

import signal
import sys
import threading

from farro_core.root import Root
from farro_core.system import System
from farro_tui.headless import setup_logging


def main() -> int:
    root = Root.open(sys.argv[1])
    setup_logging()
    system = System(root, workers=int(sys.argv[2]), manager=sys.argv[3] == "1")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    system.start()
    print("host started", flush=True)
    stop.wait()
    system.stop(release=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
