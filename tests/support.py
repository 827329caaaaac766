"""What every test directory shares: the one way to wait for something.

A test never sleeps and hopes: it polls a condition until a deadline, and the
deadline is generous, because other suites may share the machine's cores. (The
console's tests wait inside the app's event loop instead: tests/tui/conftest.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: how long a wait may take before the test fails: long, since a busy machine is slow
DEADLINE_S = 30.0


def wait_until(
    cond: Callable[[], T],
    what: str,
    timeout: float = DEADLINE_S,
    *,
    diagnose: Callable[[], object] | None = None,
) -> T:
    """Poll ``cond()`` until it returns something true, and return that.

    Fails the test after ``timeout`` seconds, naming ``what`` it waited for and,
    given ``diagnose``, what that says about the state it was stuck in.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not (value := cond()):
        if time.monotonic() >= deadline:
            extra = f"\n{diagnose()}" if diagnose is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return value
