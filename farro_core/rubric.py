"""Rubric checks: shell commands run in the workspace after the agent, one verdict each.

A check is the operator's own shell text; job data reaches it only through the
environment (``FARRO_JOB_ID``, ``FARRO_WORKSPACE`` …), never spliced into it. Each
runs in a unit of its own (:mod:`farro_core.procs`), so a timeout kills
everything it started, and nothing it started outlives it.

A check's state is passed (exit 0), failed (any other exit), error (exit 126 or
127: ``sh`` could not run a command, not found or not executable), or timed out;
an item without a ``check`` is ungraded.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from farro_core import procs
from farro_core.envelope import RubricItem, RubricVerdict

TAIL_CHARS = 2000
POLL_S = 0.2
#: the exits with which ``sh`` says a command could not run at all
COULD_NOT_RUN = (126, 127)

Verdict = Literal["passed", "failed", "ungraded"]


class Interrupted(Exception):
    """The worker was told to stop or kill while a check ran; the check was killed."""


#: a check's whole output is kept in a temp file until it ends; past this it is killed
OUTPUT_MAX_BYTES = 64 << 20


def run_checks(
    items: Sequence[RubricItem],
    cwd: Path,
    env: Mapping[str, str],
    *,
    kill_grace_s: float,
    containment: procs.Preference = "auto",
    cancel: Callable[[], bool] = lambda: False,
) -> list[RubricVerdict]:
    return [
        run_check(item, cwd, env, kill_grace_s=kill_grace_s, containment=containment, cancel=cancel)
        for item in items
    ]


def run_check(
    item: RubricItem,
    cwd: Path,
    env: Mapping[str, str],
    *,
    kill_grace_s: float,
    containment: procs.Preference = "auto",
    cancel: Callable[[], bool] = lambda: False,
) -> RubricVerdict:
    """Run one check; raise :class:`Interrupted` (its unit killed) when ``cancel()``.

    A timeout sends SIGTERM to every process of the check, and SIGKILL after
    ``kill_grace_s``.
    """
    if item.check is None:
        return RubricVerdict(id=item.id, passed=None, required=item.required, state="ungraded")
    with tempfile.TemporaryFile() as out:
        try:
            unit = procs.Unit("check", containment)
            proc = unit.popen(
                ["sh", "-c", item.check],  # sh then says "sh: …: not found"
                env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        except OSError as exc:
            return RubricVerdict(
                id=item.id,
                passed=False,
                required=item.required,
                state="error",
                output_tail=f"[farro] could not run the check: {exc.strerror or exc}",
            )
        deadline = time.monotonic() + item.timeout_s
        flooded = False
        while not procs.wait_exit(proc, min(POLL_S, max(0.0, deadline - time.monotonic()))):
            if cancel():
                procs.end(unit, proc, None)
                raise Interrupted(item.id)
            # its output goes to a temp file: a check that prints without end must
            # not fill the disk before its timeout
            flooded = os.fstat(out.fileno()).st_size > OUTPUT_MAX_BYTES
            if flooded or time.monotonic() >= deadline:
                break
        stopped = not procs.exited(proc)
        code = procs.end(unit, proc, kill_grace_s if stopped else None)
        tail = _tail(out)
    if stopped:
        why = (
            f"output exceeded {OUTPUT_MAX_BYTES} bytes; check killed"
            if flooded
            else f"check timed out after {item.timeout_s:g}s"
        )
        tail = (tail + f"\n[farro] {why}").lstrip("\n")
        state = "failed" if flooded else "timed_out"
    else:
        state = "passed" if code == 0 else "error" if code in COULD_NOT_RUN else "failed"
    return RubricVerdict(
        id=item.id,
        passed=state == "passed",
        required=item.required,
        state=state,
        exit_code=None if stopped else code,
        output_tail=tail[-TAIL_CHARS:],
    )


def verdict(verdicts: Sequence[RubricVerdict]) -> Verdict:
    """failed if a required check did not pass (failed, error, timed out); else passed if
    any check ran to an exit (passed or failed); else ungraded.

    A failing optional check is recorded but does not fail the attempt; an optional
    check that could not run or timed out grades nothing.
    """
    if any(v.required and v.passed is False for v in verdicts):
        return "failed"
    graded = any(state_of(v) in ("passed", "failed") for v in verdicts)
    return "passed" if graded else "ungraded"


def ungraded_why(verdicts: Sequence[RubricVerdict]) -> str:
    """Which of the three ways a rubric graded nothing ("no runnable check" read as "a
    check that could not run", which fails the job when the check is required)."""
    if not verdicts:
        return "no rubric"
    if all(state_of(v) == "ungraded" for v in verdicts):
        return "no item has a check"
    return "every check is optional and none ran to an exit"


def state_of(v: RubricVerdict) -> str:
    """A verdict's state; verdicts recorded before states existed have only ``passed``."""
    if v.state is not None:
        return v.state
    return "ungraded" if v.passed is None else "passed" if v.passed else "failed"


def could_not_run(v: RubricVerdict) -> str:
    """Why a check in error could not run: the last line ``sh`` printed."""
    lines = [ln.strip() for ln in v.output_tail.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("[farro] ")] or lines
    return lines[-1] if lines else f"exit {v.exit_code}"


def _tail(fh: IO[bytes]) -> str:
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - TAIL_CHARS * 4))
    return fh.read().decode("utf-8", errors="replace")[-TAIL_CHARS:]
