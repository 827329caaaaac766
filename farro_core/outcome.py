"""The outcome rules: from what happened in an attempt to the job's next status.

Kept apart from the worker so the rules read in one place, in order of
precedence: a kill, a release, a path violation, success or a failed rubric
(a required check that failed, timed out or could not run), an agent command
that is not there (not retried), and last the retriable failures (non-zero
exit, timeout), retried with backoff while the attempt budget lasts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from farro_core.clock import utcnow
from farro_core.envelope import Lifecycle, RubricVerdict
from farro_core.rubric import could_not_run, state_of, ungraded_why
from farro_core.runner import Attempt
from farro_core.settings import Settings
from farro_core.transitions import Status

MAX_LISTED = 5


@dataclass(frozen=True)
class Decision:
    to: Status
    reason: str
    not_before: datetime | None = None
    attempt_base: int | None = None  # a release gives the attempt back


def decide(
    attempt: Attempt,
    lc: Lifecycle,
    *,
    max_attempts: int,
    settings: Settings,
    violations: list[str],
    rubric: list[RubricVerdict],
    verdict: str | None,
    now: datetime | None = None,
) -> Decision:
    n = attempt.number
    if attempt.killed_by is not None:
        return Decision(Status.KILLED, f"killed by {attempt.killed_by} (attempt {n})")
    if attempt.released:
        return Decision(
            Status.QUEUED,
            f"released: worker stopping (attempt {n} not counted)",
            attempt_base=lc.attempt_base + 1,
        )
    if violations:
        return Decision(
            Status.FAILED, f"attempt {n} changed paths outside allowed_paths: {_list(violations)}"
        )
    if attempt.error is None and not attempt.timed_out and attempt.exit_code == 0:
        if verdict == "failed":
            return Decision(Status.FAILED, f"attempt {n}: {_rubric_failure(rubric)}")
        graded = "rubric passed" if verdict == "passed" else f"ungraded ({ungraded_why(rubric)})"
        return Decision(Status.SUCCEEDED, f"attempt {n}: agent exited 0, {graded}")
    why = _why(attempt)
    if attempt.fatal:
        return Decision(Status.FAILED, f"attempt {n}: {why}")
    left = lc.attempts_left(max_attempts)
    if left > 0:
        delay = settings.backoff(lc.attempt - lc.attempt_base)
        if attempt.retry_after_s is not None:  # the model API's retry-after, when longer
            delay = max(delay, attempt.retry_after_s)
        when = (now or utcnow()) + timedelta(seconds=delay)
        return Decision(
            Status.QUEUED,
            f"attempt {n}: {why}; retry in {delay:g}s "
            f"({left} attempt{'s' if left != 1 else ''} left)",
            not_before=when,
        )
    used = lc.attempt - lc.attempt_base
    return Decision(
        Status.FAILED, f"attempt {n}: {why}; no attempts left ({used} of {max_attempts})"
    )


def _rubric_failure(rubric: list[RubricVerdict]) -> str:
    """Each required check that did not pass, by state; one that could not run says why."""
    failing = [v for v in rubric if v.required and v.passed is False]
    parts = [
        f"check {v.id} could not run: {could_not_run(v)}" for v in failing if state_of(v) == "error"
    ][:MAX_LISTED]
    for state, what in (("failed", "failed"), ("timed_out", "timed out")):
        ids = [v.id for v in failing if state_of(v) == state]
        if ids:
            parts.append(f"required check {what}: {_list(ids)}")
    return "; ".join(parts)


def _why(attempt: Attempt) -> str:
    if attempt.error is not None:
        return attempt.error
    if attempt.timed_out:
        return "timed out"
    code = attempt.exit_code
    if code is not None and code < 0:
        return f"agent killed by signal {-code}"
    return f"agent exited {code}"


def _list(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    more = len(items) - MAX_LISTED
    return shown + (f" (+{more} more)" if more > 0 else "")
