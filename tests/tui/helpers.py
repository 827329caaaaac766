"""Helpers for the console tests: jobs made by the real transactions, waiting, stand-ins."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from support import DEADLINE_S, wait_until_async
from textual.pilot import Pilot

from farro_core import audit, job
from farro_core.envelope import Envelope, parse_spec
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
from farro_core.transitions import Actor, Status
from farro_tui.app import FarroApp
from farro_tui.seed import FIXED_NOW

S, A = Status, Actor


def make(root: Root, status: Status | str, title: str = "a job", **kw: Any) -> str:
    """A job brought to ``status`` through create/claim/commit, like a worker would."""
    status = Status(status)
    env = job.create(root, parse_spec({"prompt": f"{title}\n\nbody", "title": title, **kw}))
    if status is S.QUEUED:
        return env.id
    if status is S.KILLED:
        job.commit(env, S.KILLED, A.OPERATOR, "killed in setup")
        return env.id
    c = claim(root, env.id)
    if status is S.IN_PROGRESS:
        return env.id
    actor = A.WATCHDOG if status is S.STALE else A.AGENT
    job.commit(c, status, actor, f"{status} in setup")
    job.release_claim(c)
    return env.id


def claim(root: Root, job_id: str, worker: str = "w1") -> Envelope:
    c = job.claim(root, WorkerIdentity.current(worker), ids=[job_id])
    assert c is not None, f"could not claim {job_id}"
    return c


def where(root: Root, job_id: str) -> str:
    found = [q for q in ("incoming", "active", "done") if os.path.lexists(root.path / q / job_id)]
    assert len(found) == 1, found
    return found[0]


def status(root: Root, job_id: str) -> str:
    return str(job.load(root, job_id).status)


def last_audit(root: Root, job_id: str) -> dict[str, Any]:
    return list(audit.read(root, job_id))[-1]


async def until(
    pilot: Pilot[Any],
    cond: Callable[[], Any],
    what: str,
    timeout: float = DEADLINE_S,
    diagnose: Callable[[], Any] | None = None,
) -> None:
    """``support.wait_until_async`` with the pilot's pause, which lets the app run meanwhile."""
    await wait_until_async(cond, what, timeout, pause=pilot.pause, diagnose=diagnose)


async def ready(pilot: Pilot[Any]) -> FarroApp:
    app = pilot.app
    assert isinstance(app, FarroApp)
    await until(pilot, lambda: app.ready, "the first listing")
    await pilot.pause()
    return app


@dataclass
class Notes:
    """Every notification the app raised, as (message, severity)."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(m for m, _ in self.seen)


def record_notes(app: FarroApp) -> Notes:
    notes = Notes()
    original = app.notify

    def notify(message: str, **kw: Any) -> None:
        notes.seen.append((message, str(kw.get("severity", "information"))))
        original(message, **kw)

    app.notify = notify  # type: ignore[method-assign]
    return notes


def console(root: Root, **kw: Any) -> FarroApp:
    kw.setdefault("no_workers", True)
    kw.setdefault("cursor_blink", False)
    kw.setdefault("kill_wait_s", 15.0)
    return FarroApp(root, **kw)


@dataclass
class FakeWorker:
    name: str
    state: str = "idle"
    job: str | None = None
    attempt: int | None = None
    since: datetime = FIXED_NOW
    jobs_done: int = 0
    passing: tuple[tuple[str, str], ...] = ()


@dataclass
class FakeManager:
    role: str = "here"
    holder: str | None = None
    since: datetime | None = FIXED_NOW
    last_sweep: datetime | None = FIXED_NOW
    last_ingest: str | None = "inbox/goal.json: 3 jobs"


@dataclass
class FakeSnapshot:
    manager: FakeManager
    workers: tuple[FakeWorker, ...]
    paused: bool
    running: bool


class FakeSystem:
    """Stands in for farro_core.system.System: records what the console asked of it."""

    def __init__(self, busy: int = 0, idle: int = 1) -> None:
        self.workers = [FakeWorker(f"w{i}", "busy", f"JOB{i:08d}", 1) for i in range(busy)]
        self.workers += [FakeWorker(f"w{busy + i}") for i in range(idle)]
        self.paused = False
        self.running = True
        self.stops: list[dict[str, Any]] = []

    def start(self) -> None:
        self.running = True

    def stop(self, *, release: bool = True, grace_s: float | None = None) -> None:
        self.stops.append({"release": release, "grace_s": grace_s})
        self.running = False

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def snapshot(self) -> FakeSnapshot:
        states = tuple(
            FakeWorker(
                w.name,
                "paused" if self.paused and w.state == "idle" else w.state,
                w.job,
                w.attempt,
                w.since,
                w.jobs_done,
                w.passing,
            )
            for w in self.workers
        )
        return FakeSnapshot(FakeManager(), states, self.paused, self.running)


def now() -> datetime:
    return datetime.now(UTC)
