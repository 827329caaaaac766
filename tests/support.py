"""What every test suite shares: one way to wait for a condition.

The test directories put ``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml),
so any test module imports this as ``support``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

T = TypeVar("T")

DEADLINE_S = 60.0  # generous: other suites share the cores; only a failure waits this long


def wait_until(
    cond: Callable[[], T],
    what: str,
    timeout: float = DEADLINE_S,
    *,
    diagnose: Callable[[], object] | None = None,
    poll_s: float = 0.05,
) -> T:
    """Poll ``cond()`` until it returns something true and return that, failing at the deadline.

    Never sleep-and-hope: a test states what it waits for, and the deadline only bounds a
    failure, which names ``what`` and, given ``diagnose``, the state it was stuck in.
    ``poll_s`` caps the pause between looks: a look that scans a whole loaded root would
    otherwise add load to what the test measures.
    """
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not (value := cond()):
        if time.monotonic() >= deadline:
            _timed_out(what, timeout, diagnose)
        time.sleep(delay)
        delay = min(delay * 2, poll_s)
    return value


async def wait_until_async(
    cond: Callable[[], T],
    what: str,
    timeout: float = DEADLINE_S,
    *,
    pause: Callable[[float], Awaitable[object]],
    diagnose: Callable[[], object] | None = None,
) -> T:
    """``wait_until`` for a test running in the event loop of the app it drives: ``pause``
    (a Textual pilot's) yields to that loop, where a sleep would stop the app under test."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not (value := cond()):
        if time.monotonic() >= deadline:
            _timed_out(what, timeout, diagnose)
        await pause(delay)
        delay = min(delay * 2, 0.05)
    return value


def _timed_out(what: str, timeout: float, diagnose: Callable[[], object] | None) -> NoReturn:
    extra = f"\n{diagnose()}" if diagnose is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")


def wait_for(
    get: Callable[[], T | None],
    what: str,
    timeout: float = DEADLINE_S,
    *,
    diagnose: Callable[[], object] | None = None,
) -> T:
    """Poll ``get()`` until it returns something other than None, and return it."""
    found: list[T] = []

    def cond() -> bool:
        value = get()
        if value is not None:
            found.append(value)
        return bool(found)

    wait_until(cond, what, timeout, diagnose=diagnose)
    return found[0]
