"""Running the configured planner: a goal on stdin, a JSON list of job specs on stdout.

The planner is any command (argv list, or a string run by ``/bin/sh -c``), so an
LLM-backed planner is a one-line setting. It runs in a unit of its own
(:mod:`farro_core.procs`) with a bounded timeout: SIGTERM to all of it when the
time is up, SIGKILL after ``kill_grace_s``, so a runaway planner can never stall
the manager's inbox for good, and nothing it started outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any

from farro_core import bounded, procs
from farro_core.errors import BadInput
from farro_core.settings import Settings

#: Real planners call a model; give them minutes, not hours.
PLANNER_TIMEOUT_S = 300.0
KILL_GRACE_S = 5.0  # without settings: the kill_grace_s default
_STDERR_TAIL = 4000


class PlannerError(BadInput):
    """The planner failed or printed something that is not a list of job specs."""


class PlannerCancelled(Exception):
    """The manager is stopping: the planner was killed and the request stays in inbox/."""


def run_planner(
    argv: list[str] | str,
    goal: str,
    *,
    timeout_s: float = PLANNER_TIMEOUT_S,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    cancel: threading.Event | None = None,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """The planner's job specs (not yet validated); :class:`PlannerError` says why not.

    It gets the worker's environment as ``settings`` let it through, plus ``env``.
    However it ends, everything it started is killed with it (see :mod:`farro_core.procs`).
    """
    shown = argv if isinstance(argv, str) else " ".join(argv)
    base = settings.passed_env(os.environ) if settings is not None else dict(os.environ)
    grace = settings.kill_grace_s if settings is not None else KILL_GRACE_S
    try:
        unit = procs.Unit("planner", settings.containment if settings is not None else "auto")
        proc = unit.popen(
            ["/bin/sh", "-c", argv] if isinstance(argv, str) else argv,
            {**base, **(env or {})},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
        )
    except OSError as exc:
        raise PlannerError(f"planner {shown!r} could not start: {exc.strerror or exc}") from None
    deadline = time.monotonic() + timeout_s
    stdin: bytes | None = goal.encode()
    try:
        while True:
            try:
                out, err = proc.communicate(stdin, timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                stdin = None  # sent already; communicate resumes without losing output
                if procs.exited(proc):
                    # it is done, but something it started still holds its output: the
                    # leftovers die now (they would at the end anyway), and EOF comes
                    unit.kill()
                    continue
                if cancel is not None and cancel.is_set():
                    raise PlannerCancelled(f"planner {shown!r} stopped: shutting down") from None
                if time.monotonic() >= deadline:
                    unit.signal(signal.SIGTERM)
                    procs.wait_exit(proc, grace)
                    unit.kill()
                    out, err = proc.communicate()
                    raise PlannerError(
                        f"planner {shown!r} timed out after {timeout_s:g} s{_stderr(err)}"
                    ) from None
    finally:
        # whatever it left running dies with it, however the run ended; and its pipes
        # are closed even when a cancel or a timeout cut communicate() short
        procs.end(unit, proc, None)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    if proc.returncode != 0:
        raise PlannerError(f"planner {shown!r} exited with status {proc.returncode}{_stderr(err)}")
    return parse_plan(out, shown, err)


def parse_plan(out: bytes, shown: str = "planner", err: bytes = b"") -> list[dict[str, Any]]:
    """A plan is a JSON list of spec objects (``{"jobs": [...]}`` is accepted too)."""
    try:
        data = bounded.loads_json(out.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        head = out[:200].decode(errors="replace")
        raise PlannerError(
            f"planner {shown!r} printed no valid JSON ({exc}); output began: {head!r}{_stderr(err)}"
        ) from None
    if isinstance(data, dict) and set(data) == {"jobs"}:
        data = data["jobs"]
    if not isinstance(data, list):
        raise PlannerError(
            f"planner {shown!r} must print a JSON list of job specs, "
            f"not a {type(data).__name__}{_stderr(err)}"
        )
    if not data:
        raise PlannerError(f"planner {shown!r} planned no jobs{_stderr(err)}")
    for i, spec in enumerate(data):
        if not isinstance(spec, dict):
            raise PlannerError(
                f"planner {shown!r}: item {i} of its plan is a {type(spec).__name__}, "
                "not a job spec object"
            )
    return data


def _stderr(err: bytes) -> str:
    text = err.decode(errors="replace").strip()
    if not text:
        return ""
    if len(text) > _STDERR_TAIL:
        text = "..." + text[-_STDERR_TAIL:]
    return f"\nplanner stderr:\n{text}"
