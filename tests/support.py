"""What every test suite shares: one way to wait for a condition.

The test directories put ``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml),
so any test module imports this as ``support``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE_S = 60.0  # generous: other suites share the cores; only a failure waits this long


def wait_until(cond: Callable[[], T], what: str, timeout: float = DEADLINE_S) -> T:
    """Poll ``cond()`` until it returns something true and return that, failing at the deadline.

    Never sleep-and-hope: a test states what it waits for, and the deadline only bounds a failure.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def wait_for(get: Callable[[], T | None], what: str, timeout: float = DEADLINE_S) -> T:
    """Poll ``get()`` until it returns something other than None, and return it."""
    found: list[T] = []

    def cond() -> bool:
        value = get()
        if value is not None:
            found.append(value)
        return bool(found)

    wait_until(cond, what, timeout)
    return found[0]
