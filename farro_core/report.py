"""``farro report``: a batch of jobs as a whole, and each job in it.

A batch is a selection: the jobs with a label (``batch=…`` is given by
``farro submit FILE`` and the inbox), or those created since a time, or all.
Each job's figures come from its job.json (the last result: verdict, each
check, attempts, run time, the agent's reported cost and tokens); the summary
adds them up and groups the failures by what failed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from farro_core import job
from farro_core.clock import utcnow
from farro_core.envelope import Envelope
from farro_core.errors import BadInput, FarroError
from farro_core.listing import JobRow, scan
from farro_core.root import Root
from farro_core.transitions import TERMINAL, Status

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: how many jobs the slowest and costliest lists name
TOP = 5


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """``2h``, ``30m``, ``1d`` ago, or an ISO 8601 time (UTC when it names no zone)."""
    now = now or utcnow()
    m = _AGO.match(value.strip())
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNIT[m.group(2)])
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(
            f"--since {value!r}: expected a duration ago (30m, 2h, 1d) or an ISO time"
        ) from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=now.tzinfo)


def parse_label(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise BadInput(f"--label {value!r}: expected KEY=VALUE")
    return key, val


@dataclass
class JobLine:
    """One job of the report."""

    id: str
    title: str
    status: str
    verdict: str | None
    checks: dict[str, bool | None]
    attempts: int
    duration_s: float | None  # the last attempt's run
    cost_usd: float | None
    tokens: int | None
    failure: str | None  # what failed, in words (failed and killed jobs)
    created_at: str
    finished_at: str | None


@dataclass
class Summary:
    jobs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    finished: int = 0
    passed: int = 0  # succeeded
    pass_rate: float | None = None  # succeeded / finished
    cost_usd: float = 0.0
    mean_cost_usd: float | None = None  # over the jobs that reported a cost
    tokens: int = 0
    run_s: float = 0.0  # the attempts' run times added up
    wall_s: float | None = None  # first job created to last one finished (or now)
    slowest: list[tuple[str, float]] = field(default_factory=list)
    costliest: list[tuple[str, float]] = field(default_factory=list)
    failures: dict[str, list[str]] = field(default_factory=dict)  # reason -> job ids


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _tokens(report: dict[str, Any]) -> int | None:
    tin, tout = _number(report.get("tokens_in")), _number(report.get("tokens_out"))
    if tin is not None or tout is not None:
        return int((tin or 0) + (tout or 0))
    total = _number(report.get("tokens"))
    return int(total) if total is not None else None


def failure_of(env: Envelope) -> str | None:
    """What failed, grouped: the first failing required check, paths, a timeout, an exit."""
    if env.status not in (Status.FAILED, Status.KILLED):
        return None
    res = env.lifecycle.result
    if env.status is Status.KILLED:
        return "killed by the operator"
    if res is None:
        return "no attempt finished"
    failed = [v.id for v in res.rubric if v.passed is False and v.required]
    if failed:
        return f"check {failed[0]} failed"
    if res.violations:
        return "paths outside allowed_paths"
    if res.timed_out:
        return "agent timed out"
    if res.error:
        # in brackets: the text report follows a group with ": ID ID", so a colon here
        # read "could not run: agent command not found: 01M8…" as if the id were missing
        return f"could not run ({res.error.split(':', 1)[0][:60]})"
    if res.exit_code not in (None, 0):
        return f"agent exited {res.exit_code}"
    return "failed"


def line(env: Envelope) -> JobLine:
    res = env.lifecycle.result
    lc = env.lifecycle
    return JobLine(
        id=env.id,
        title=env.prompt.title,
        status=str(lc.status),
        verdict=res.verdict if res else None,
        checks={v.id: v.passed for v in res.rubric} if res else {},
        attempts=lc.attempt,
        duration_s=res.duration_s if res else None,
        cost_usd=_number(res.report.get("cost_usd")) if res else None,
        tokens=_tokens(res.report) if res else None,
        failure=failure_of(env),
        created_at=lc.created_at.isoformat(),
        finished_at=res.finished_at.isoformat() if res and lc.status in TERMINAL else None,
    )


def select(
    root: Root, *, label: tuple[str, str] | None = None, since: datetime | None = None
) -> list[str]:
    """The ids of the batch, oldest first."""
    rows: list[JobRow] = list(scan(root))
    out = []
    for row in rows:
        if row.status == "corrupt":
            continue
        if label is not None and row.labels.get(label[0]) != label[1]:
            continue
        if since is not None:
            try:
                created = datetime.fromisoformat(row.created_at)
            except ValueError:
                continue
            if created < since:
                continue
        out.append(row.id)
    return sorted(out)


def lines(root: Root, ids: list[str]) -> list[JobLine]:
    out = []
    for job_id in ids:
        try:
            out.append(line(job.load(root, job_id)))
        except FarroError:
            continue  # gone or unreadable meanwhile: fsck reports it
    return out


def summarize(jobs: list[JobLine], now: datetime | None = None) -> Summary:
    now = now or utcnow()
    s = Summary(jobs=len(jobs))
    s.by_status = dict(Counter(j.status for j in jobs))
    s.finished = sum(1 for j in jobs if j.status in TERMINAL)
    s.passed = sum(1 for j in jobs if j.status == Status.SUCCEEDED)
    s.pass_rate = s.passed / s.finished if s.finished else None
    costs = [j.cost_usd for j in jobs if j.cost_usd is not None]
    s.cost_usd = round(sum(costs), 6)
    s.mean_cost_usd = round(s.cost_usd / len(costs), 6) if costs else None
    s.tokens = sum(j.tokens or 0 for j in jobs)
    s.run_s = round(sum(j.duration_s or 0 for j in jobs), 3)
    if jobs:
        start = min(datetime.fromisoformat(j.created_at) for j in jobs)
        ends = [datetime.fromisoformat(j.finished_at) for j in jobs if j.finished_at]
        running = len(ends) < len(jobs)
        end = now if running or not ends else max(ends)
        s.wall_s = round((end - start).total_seconds(), 3)
    timed = [(j.id, j.duration_s) for j in jobs if j.duration_s is not None]
    s.slowest = sorted(timed, key=lambda t: (-t[1], t[0]))[:TOP]
    priced = [(j.id, j.cost_usd) for j in jobs if j.cost_usd is not None]
    s.costliest = sorted(priced, key=lambda t: (-t[1], t[0]))[:TOP]
    groups: dict[str, list[str]] = {}
    for j in jobs:
        if j.failure:
            groups.setdefault(j.failure, []).append(j.id)
    s.failures = dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))
    return s


def as_json(jobs: list[JobLine], summary: Summary) -> dict[str, Any]:
    data = asdict(summary)
    data["slowest"] = [{"id": i, "duration_s": d} for i, d in summary.slowest]
    data["costliest"] = [{"id": i, "cost_usd": c} for i, c in summary.costliest]
    return {"summary": data, "jobs": [asdict(j) for j in jobs]}


#: the columns of ``farro report --csv``; checks as ``id=pass|fail|n/a`` joined by ``;``
CSV_COLUMNS = (
    "id", "title", "status", "verdict", "checks", "attempts", "duration_s", "cost_usd",
    "tokens", "failure", "created_at", "finished_at",
)  # fmt: skip


def csv_row(j: JobLine) -> list[str]:
    checks = ";".join(
        f"{k}={'pass' if v else 'n/a' if v is None else 'fail'}" for k, v in j.checks.items()
    )
    return [
        j.id, j.title, j.status, j.verdict or "", checks, str(j.attempts),
        "" if j.duration_s is None else f"{j.duration_s:.3f}",
        "" if j.cost_usd is None else f"{j.cost_usd:.6f}",
        "" if j.tokens is None else str(j.tokens), j.failure or "", j.created_at,
        j.finished_at or "",
    ]  # fmt: skip
