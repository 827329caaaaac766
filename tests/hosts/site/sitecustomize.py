"""Loaded by every Python process of a test "host" (PYTHONPATH): logs each pid it
signals (os.kill, os.killpg) or probes (/proc/PID/...) to $FARRO_TEST_PIDLOG, so the
test can assert that no host ever touches a pid of another host. Python's audit
hooks see every such call, whichever module makes it.

Also works around a libfaketime 0.9.10 bug: under an offset its
clock_nanosleep(TIMER_ABSTIME), which ``time.sleep`` uses, fails with EINVAL even
with DONT_FAKE_MONOTONIC=1 (timed waits on locks and events work); a select()
timeout sleeps the same real time."""

from __future__ import annotations

import os
import re
import select
import sys
import threading
import time
from typing import Any

_LOG = os.environ.get("FARRO_TEST_PIDLOG")
_PROC = re.compile(r"^/proc/(\d+)(/|$)")
_busy = threading.local()


def _write(line: str) -> None:
    if _LOG is None or getattr(_busy, "on", False):
        return
    _busy.on = True
    try:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    finally:
        _busy.on = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event in ("os.kill", "os.killpg"):
        _write(f"{event} {int(args[0])} by {os.getpid()}\n")
    elif event == "open" and args and isinstance(args[0], str):
        m = _PROC.match(args[0])
        if m:
            _write(f"probe {m.group(1)} by {os.getpid()}\n")


if _LOG:
    sys.addaudithook(_hook)


def _sleep(secs: float) -> None:
    deadline = time.monotonic() + secs
    while (left := deadline - time.monotonic()) > 0:
        select.select([], [], [], left)


if os.environ.get("FAKETIME"):
    time.sleep = _sleep  # type: ignore[assignment]
