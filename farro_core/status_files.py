"""The status files under ``run/``: each worker's ``workers/<name>.json`` and ``manager.json``.

Written by whoever runs (workers, the manager), on any host sharing the root;
read by ``farro stats`` and the console. A file says what its process last
reported, so liveness is checked here: a process on this host that is gone is
told apart from one still running; one on another host cannot be checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from farro_core import fs
from farro_core.identity import host, pid_started_at
from farro_core.root import Root

#: states of a worker that runs (``stopped`` and ``gone`` ones do not), in the order shown
LIVE_ORDER = {"busy": 0, "stopping": 1, "paused": 2, "idle": 3}
LIVE_STATES = frozenset(LIVE_ORDER)


def read_status_file(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A status file's object, or None when it is unreadable or not an object."""
    try:
        data = fs.read_json(Path(path), limit=1 << 20)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def alive(data: dict[str, Any], started_key: str | None = None) -> bool | None:
    """Is the process a status file names still running? None when it is on another host."""
    pid = data.get("pid")
    if data.get("host") != host() or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return None
    recorded = data.get(started_key) if started_key else None
    # a different start time: the pid was reused by another process
    return not (isinstance(recorded, int) and pid_started_at(pid) not in (None, recorded))


def worker_files(root: Root) -> dict[str, dict[str, Any] | None]:
    """Every ``run/workers/<name>.json`` by name, sorted; None for an unreadable one."""
    try:
        names = sorted(os.listdir(root.workers_dir))
    except OSError:
        return {}
    return {
        name[: -len(".json")]: read_status_file(root.workers_dir / name)
        for name in names
        if name.endswith(".json") and not name.startswith(".")
    }


def worker_state(data: dict[str, Any]) -> str:
    """The state a worker's file says, or ``gone`` when it died without stopping."""
    state = str(data.get("state"))
    if state != "stopped" and alive(data) is False:
        return "gone"  # killed, crashed, or the host rebooted
    return state


@dataclass(frozen=True)
class WorkerSeen:
    """One worker of the root as its status file shows it."""

    name: str
    state: str  # busy, idle, paused, stopping, stopped, gone; "?" when unreadable
    local: bool  # on this host (its liveness is checked), else remote
    job: str | None = None
    attempt: int | None = None
    since: datetime | None = None
    jobs_done: int | None = None
    host: str | None = None  # as its status file says; None when unreadable
    #: (preset, what its host lacks): queued jobs of these presets it leaves to others
    passing: tuple[tuple[str, str], ...] = ()

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES


def workers_seen(root: Root) -> list[WorkerSeen]:
    """Every worker that ever wrote a status file on this root, as :class:`WorkerSeen`."""
    out = []
    me = host()
    for name, data in worker_files(root).items():
        if data is None or not isinstance(data.get("state"), str):
            out.append(WorkerSeen(name, "?", local=False))
            continue
        since = data.get("since")
        try:
            when = datetime.fromisoformat(since) if isinstance(since, str) else None
        except ValueError:
            when = None
        attempt, done = data.get("attempt"), data.get("jobs_done")
        out.append(
            WorkerSeen(
                name,
                worker_state(data),
                local=data.get("host") == me,
                job=str(data["job"]) if data.get("job") else None,
                attempt=attempt if isinstance(attempt, int) else None,
                since=when,
                jobs_done=done if isinstance(done, int) else None,
                host=str(data["host"]) if data.get("host") else None,
                passing=passing_of(data),
            )
        )
    return out


def live_first(workers: list[WorkerSeen], ended: int = 5) -> list[WorkerSeen]:
    """Live workers (busy first, then by name), then the ``ended`` latest that stopped."""
    live = sorted((w for w in workers if w.live), key=lambda w: (LIVE_ORDER[w.state], w.name))
    over = [w for w in workers if not w.live]
    over.sort(key=lambda w: w.since.timestamp() if w.since else 0.0, reverse=True)
    return live + over[:ended]


#: at most this many presets, and characters of each reason, are read of a ``passing``
#: field (a status file is anyone's to write; there are four presets)
PASSING_MAX = 16
PASSING_CHARS = 1000


def passing_of(data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """A status file's ``passing`` as (preset, what is missing) pairs; text as written
    (hostile: escape it before showing), bounded however large the file made it."""
    raw = data.get("passing")
    if not isinstance(raw, dict):
        return ()
    pairs = list(raw.items())[:PASSING_MAX]
    return tuple(sorted((str(p)[:PASSING_CHARS], str(w)[:PASSING_CHARS]) for p, w in pairs))


def left_by(
    workers: Iterable[tuple[str, tuple[tuple[str, str], ...]]],
) -> list[tuple[str, str, list[str]]]:
    """(preset, what is missing, workers) from (worker, passing) pairs, grouped."""
    found: dict[tuple[str, str], list[str]] = {}
    for name, passing in workers:
        for preset, why in passing:
            found.setdefault((preset, why), []).append(name)
    return [(preset, why, names) for (preset, why), names in sorted(found.items())]


def presets_left(workers: dict[str, dict[str, Any] | None]) -> list[tuple[str, str, list[str]]]:
    """(preset, what is missing, workers) for each agent preset running workers lack.

    A worker passes by the queued jobs of a preset whose key or configuration its
    host lacks (its status file's ``passing``): this says why those jobs wait.
    """
    return left_by(
        (name, passing_of(data))
        for name, data in workers.items()
        if data is not None and worker_state(data) in LIVE_STATES
    )
