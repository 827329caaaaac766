"""Rubric checks: shell commands run in the workspace after the agent, one verdict each.

A check is the operator's own shell text; job data reaches it only through the
environment (``FARRO_JOB_ID``, ``FARRO_WORKSPACE`` …), never spliced into it. Each
runs in its own process group so a timeout kills everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from farro_core.envelope import RubricItem, RubricVerdict
from farro_core.runner import exited, reap, signal_group, wait_exit

TAIL_CHARS = 2000
KILL_GRACE_S = 2.0
POLL_S = 0.2

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
    cancel: Callable[[], bool] = lambda: False,
) -> list[RubricVerdict]:
    return [run_check(item, cwd, env, cancel=cancel) for item in items]


def run_check(
    item: RubricItem,
    cwd: Path,
    env: Mapping[str, str],
    *,
    cancel: Callable[[], bool] = lambda: False,
) -> RubricVerdict:
    """Run one check; raise :class:`Interrupted` (its group killed) when ``cancel()``."""
    if item.check is None:
        return RubricVerdict(id=item.id, passed=None, required=item.required)
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", item.check],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            return RubricVerdict(
                id=item.id,
                passed=False,
                required=item.required,
                output_tail=f"[farro] could not run the check: {exc}",
            )
        deadline = time.monotonic() + item.timeout_s
        flooded = False
        while not wait_exit(proc, min(POLL_S, max(0.0, deadline - time.monotonic()))):
            if cancel():
                signal_group(proc, signal.SIGKILL)
                reap(proc)
                raise Interrupted(item.id)
            # its output goes to a temp file: a check that prints without end must
            # not fill the disk before its timeout
            flooded = os.fstat(out.fileno()).st_size > OUTPUT_MAX_BYTES
            if flooded or time.monotonic() >= deadline:
                break
        stopped = not exited(proc)
        if stopped:
            signal_group(proc, signal.SIGTERM)
            if not wait_exit(proc, KILL_GRACE_S):
                signal_group(proc, signal.SIGKILL)
        code = reap(proc)
        tail = _tail(out)
    if stopped:
        why = (
            f"output exceeded {OUTPUT_MAX_BYTES} bytes; check killed"
            if flooded
            else f"check timed out after {item.timeout_s:g}s"
        )
        tail = (tail + f"\n[farro] {why}").lstrip("\n")
    return RubricVerdict(
        id=item.id,
        passed=code == 0 and not stopped,
        required=item.required,
        exit_code=None if stopped else code,
        output_tail=tail[-TAIL_CHARS:],
    )


def verdict(verdicts: Sequence[RubricVerdict]) -> Verdict:
    """failed if a required check failed; ungraded if nothing ran; else passed.

    A failing optional check is recorded but does not fail the attempt.
    """
    ran = [v for v in verdicts if v.passed is not None]
    if any(v.required and not v.passed for v in ran):
        return "failed"
    return "passed" if ran else "ungraded"


def _tail(fh: IO[bytes]) -> str:
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - TAIL_CHARS * 4))
    return fh.read().decode("utf-8", errors="replace")[-TAIL_CHARS:]
