"""An idle ``farro-tui --workers-only`` sleeps: no thread wakes many times a second.

Measured on a real process with default timings and an empty root: the voluntary
context switches of all its threads over a few seconds (every wake-up from a
sleep is one). Two workers rescanning every 2 s, the manager's two loops, the
main thread and the file watcher need a few dozen a second at most; a watcher
polling every 5 ms needs hundreds.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from farro_core.root import Root

from .helpers import Headless, processes

WINDOW_S = 3.0
MAX_WAKEUPS_PER_S = 40


def _switches(pid: int) -> int:
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as fh:
                for line in fh:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


def test_an_idle_headless_process_does_not_poll_fast(tmp_path: Path) -> None:
    root = Root.init(tmp_path / "root")
    with processes() as started:
        p = Headless(root, tmp_path / "log", "--workers", "2")
        started.append(p)
        p.wait_log("started: 2 worker(s)")
        p.wait_log("manager role taken")
        before = _switches(p.pid)
        t0 = time.monotonic()
        while time.monotonic() - t0 < WINDOW_S:  # the measurement window itself
            time.sleep(0.1)
        rate = (_switches(p.pid) - before) / (time.monotonic() - t0)
        print(f"{rate:.0f} wake-ups/s while idle")
        assert rate < MAX_WAKEUPS_PER_S, f"{rate:.0f} wake-ups/s while idle"
