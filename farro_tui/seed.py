"""A fixed showcase root: every status, a rubric, a result, logs, history.

Snapshot tests and ``make screenshots`` need the same pixels every run, so this
writes job directories with fixed ids and timestamps directly (the transactions
would stamp the real time). ``farro-tui --demo`` has its own live seeder
(farro_core.demo) for the embedded workers to run.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from farro_core import audit, fs
from farro_core.envelope import Claim, Lifecycle, Prompt, Result, RubricVerdict, dump
from farro_core.ids import new_id
from farro_core.root import Root
from farro_core.transitions import QUEUE_DIR, Status

#: the showcase's "now": the clock the snapshot tests inject
FIXED_NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)

LOG_LINES = [
    "$ demo-agent --prompt-file prompt.json",
    "reading the prompt (612 bytes)",
    "planning: 3 steps",
    "step 1/3: inspect src/parser.py",
    "step 2/3: write tests/test_parser.py",
    "  + def test_empty_input():",
    "  + def test_nested_brackets():",
    "step 3/3: run the test suite",
    "===== 14 passed in 0.82s =====",
]

# (name, status, title, minutes ago created, extra)
SHOWCASE: list[tuple[str, Status, str, int, dict[str, Any]]] = [
    (
        "s1",
        Status.SUCCEEDED,
        "Add unit tests for the CSV parser",
        180,
        {"run": 412, "verdict": "passed", "cost": 0.42, "tokens": 18234},
    ),
    (
        "s2",
        Status.SUCCEEDED,
        "Fix typo in README install section",
        170,
        {"run": 65, "verdict": "passed", "cost": 0.03, "tokens": 1502},
    ),
    (
        "f1",
        Status.FAILED,
        "Refactor config loader to pydantic",
        150,
        {
            "run": 903,
            "verdict": "failed",
            "violations": ["../secrets.env", "setup.cfg"],
            "exit": 0,
            "attempt": 3,
        },
    ),
    ("k1", Status.KILLED, "Migrate build to hatch", 140, {"run": 30}),
    (
        "s3",
        Status.SUCCEEDED,
        "Document the retry backoff",
        120,
        {"run": 240, "verdict": "ungraded"},
    ),
    ("t1", Status.STALE, "Port the scheduler to asyncio", 90, {"run": 2400, "attempt": 2}),
    ("r1", Status.IN_PROGRESS, "Add type hints to farro_core.fs", 40, {"run": 250}),
    ("r2", Status.IN_PROGRESS, "Speed up the JSON listing by 2x", 30, {"run": 530}),
    ("q1", Status.QUEUED, "Write a changelog for v1.0", 12, {}),
    ("q2", Status.QUEUED, "Translate the help screen to French", 5, {"priority": 5}),
]


def showcase_id(name: str, created: datetime) -> str:
    return new_id(int(created.timestamp() * 1000), hashlib.sha256(name.encode()).digest())


def demo_claim(worker: str, claimed_at: datetime) -> Claim:
    """A claim by a demo worker: host, pid and token fixed, so every run draws the same."""
    return Claim(
        worker=worker,
        host="farro-demo",
        boot_id="demo",
        pid=4242,
        pid_started_at=None,
        token="0" * 16,
        claimed_at=claimed_at,
    )


def place(root: Root, prompt: Prompt, lc: Lifecycle) -> Path:
    """Write a job's directory straight into its status's queue; returns it."""
    path = root.path / QUEUE_DIR[lc.status] / lc.id
    os.mkdir(path, 0o700)
    fs.write_file(path / "prompt.json", dump(prompt), mode=0o444)
    fs.write_file(path / "job.json", dump(lc))
    return path


def seed_showcase(root: Root, now: datetime = FIXED_NOW) -> dict[str, str]:
    """Write the showcase jobs; return {name: id}. Existing ids are left alone."""
    ids: dict[str, str] = {}
    for name, status, title, minutes, extra in SHOWCASE:
        created = now - timedelta(minutes=minutes)
        job_id = showcase_id(name, created)
        ids[name] = job_id
        if any(os.path.lexists(root.path / q / job_id) for q in ("incoming", "active", "done")):
            continue
        _write_job(root, job_id, name, status, title, created, now, extra)
    return ids


def _write_job(
    root: Root,
    job_id: str,
    name: str,
    status: Status,
    title: str,
    created: datetime,
    now: datetime,
    extra: dict[str, Any],
) -> None:
    prompt = Prompt(
        id=job_id,
        title=title,
        prompt=f"{title}.\n\nKeep the change small and covered by tests. "
        "Do not touch files outside src/ and tests/.\n\nWhen done, run the test suite.",
        rubric=[
            {"id": "tests-pass", "description": "the test suite passes", "check": "pytest -q"},
            {
                "id": "lint",
                "description": "ruff is clean",
                "check": "ruff check .",
                "required": False,
            },
        ],
        allowed_paths=["src/**", "tests/**"],
        timeout_s=600,
        max_attempts=3,
        priority=extra.get("priority", 0),
        labels={"team": "core", "batch": "jan"},
        created_at=created,
        created_by="ops@farro-demo",
    )
    attempt = extra.get("attempt", 0 if status is Status.QUEUED else 1)
    run = float(extra.get("run", 0))
    claimed = (
        now - timedelta(seconds=run)
        if status is Status.IN_PROGRESS
        else created + timedelta(minutes=2)
    )
    finished = claimed + timedelta(seconds=run)
    claim = None
    if status is not Status.QUEUED:
        claim = demo_claim(f"w{1 + len(name) % 2}", claimed)
    result = None
    if status in (Status.SUCCEEDED, Status.FAILED, Status.KILLED):
        verdict = extra.get("verdict")
        passed = {"passed": True, "failed": False}.get(verdict or "")
        report: dict[str, Any] = {}
        if "cost" in extra:
            report = {"cost_usd": extra["cost"], "tokens": extra["tokens"], "model": "demo-1"}
        result = Result(
            attempt=attempt,
            exit_code=extra.get("exit", 0 if status is not Status.KILLED else -15),
            started_at=claimed,
            finished_at=finished,
            duration_s=run,
            killed=status is Status.KILLED,
            rubric=[
                RubricVerdict(
                    id="tests-pass",
                    passed=passed,
                    exit_code=0 if passed else 1,
                    output_tail="14 passed in 0.82s"
                    if passed
                    else "FAILED tests/test_config.py::test_env_override - KeyError",
                ),
                RubricVerdict(id="lint", passed=True if passed else None, required=False),
            ]
            if verdict in ("passed", "failed")
            else [],
            verdict=verdict,
            violations=extra.get("violations", []),
            log=f"logs/attempt-{attempt}.log",
            report=report,
        )
    updated = {
        Status.QUEUED: created,
        Status.IN_PROGRESS: claimed,
        Status.STALE: claimed + timedelta(seconds=run),
    }.get(status, finished)
    reason = {
        Status.QUEUED: "created by ops@farro-demo",
        Status.IN_PROGRESS: f"claimed by {claim.worker if claim else ''}",
        Status.STALE: "no heartbeat for 30s (worker w2 gone?)",
        Status.SUCCEEDED: "every required check passed",
        Status.FAILED: "2 paths outside allowed_paths",
        Status.KILLED: "killed by ops@tui",
    }[status]
    lc = Lifecycle(
        id=job_id,
        status=status,
        attempt=attempt,
        revision=1 + 2 * attempt,
        claim=claim,
        result=result,
        reason=reason,
        created_at=created,
        updated_at=updated,
    )
    path = place(root, prompt, lc)
    if attempt:
        os.mkdir(path / "logs", 0o700)
        for n in range(1, attempt + 1):
            lines = LOG_LINES if n == attempt else [*LOG_LINES[:4], "error: agent exited 1"]
            (path / "logs" / f"attempt-{n}.log").write_text("\n".join(lines) + "\n")
    _audit_history(root, lc, status, created, claimed, updated)


def _audit_history(
    root: Root,
    lc: Lifecycle,
    status: Status,
    created: datetime,
    claimed: datetime,
    updated: datetime,
) -> None:
    steps: list[tuple[str | None, str, str, datetime, str]] = [
        (None, "queued", "creator", created, "created by ops@farro-demo")
    ]
    if status is not Status.QUEUED:
        steps.append(
            (
                "queued",
                "in-progress",
                "agent",
                claimed,
                lc.reason if status is Status.IN_PROGRESS else "claimed",
            )
        )
    if status in (Status.SUCCEEDED, Status.FAILED, Status.STALE):
        actor = "watchdog" if status is Status.STALE else "agent"
        steps.append(("in-progress", status.value, actor, updated, lc.reason))
    if status is Status.KILLED:
        steps.append(("in-progress", "killed", "agent", updated, lc.reason))
    for n, (frm, to, actor, ts, reason) in enumerate(steps, start=1):
        audit.append(
            root,
            audit.record(
                job=lc.id,
                frm=frm,
                to=to,
                actor=actor,
                worker=lc.claim.worker if lc.claim and n > 1 else None,
                attempt=lc.attempt if n > 1 else 0,
                revision=n,
                reason=reason,
                event="created" if n == 1 else "transition",
                ts=ts,
            ),
        )
