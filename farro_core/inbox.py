"""The manager's inbox: request files in ``inbox/`` become jobs, all or nothing per file.

A request file is one spec, ``{"jobs": [...]}`` (JSON or TOML, read by
:mod:`farro_core.specfile`, like ``farro submit``), or a goal
``{"goal": "...", "defaults": {...}}`` that the configured planner turns into
specs. Writers should write ``NAME.json.tmp`` (or a dotfile) and rename it to
``NAME.json``: dotfiles and ``*.tmp`` are never read. A file that does not parse
and was modified in the last :data:`PARTIAL_GRACE_S` seconds is left for the next
sweep instead of being rejected, in case it is still being written in place.

Idempotence: the ids of a file's jobs are derived from (file mtime, name,
content hash, index), so processing a file twice -- a crash between creating
its jobs and moving it to ``accepted/`` -- finds its jobs already there and
creates only the missing ones. A goal's plan is saved beside the file
(``inbox/.NAME.plan.json``) before any job is created, so a re-run after a crash
reuses that plan instead of asking a (possibly non-deterministic) planner again.

Nothing is deleted: good files go to ``inbox/accepted/``, bad ones to
``inbox/rejected/`` beside ``NAME.error.txt``; both keep a unique name.

One file never stops the others: whatever goes wrong with it (even an error
nobody foresaw) rejects that file, and the pass goes on to the next. A FIFO or
device named like a request is rejected unread.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from farro_core import agents, crash, fs, fsclock, job, specfile, workspace
from farro_core.clock import utcnow
from farro_core.envelope import JobSpec
from farro_core.errors import AlreadyExists, BadInput, FarroError, QueueFull
from farro_core.identity import host
from farro_core.ids import derived_id
from farro_core.planner import PLANNER_TIMEOUT_S, PlannerCancelled, PlannerError, run_planner
from farro_core.root import QUEUES, Root
from farro_core.settings import Settings

log = logging.getLogger("farro.inbox")

SUFFIXES = (".json", ".toml")
#: a file that does not parse is given this long to be finished by its writer
PARTIAL_GRACE_S = 2.0
_GOAL_KEYS = {"goal", "defaults"}

Outcome = Literal["accepted", "rejected", "waiting"]


@dataclass(frozen=True)
class Ingested:
    """What happened to one request file."""

    name: str
    outcome: Outcome
    jobs: tuple[str, ...] = ()
    created: int = 0  # jobs created by this pass (the others existed already)
    moved_to: str | None = None  # relative to the root
    error: str | None = None
    queue_full: bool = False  # waiting for room: later files wait behind it (FIFO)

    def describe(self) -> str:
        if self.outcome == "accepted":
            again = "" if self.created == len(self.jobs) else f", {self.created} new"
            n = len(self.jobs)
            return f"accepted {self.name}: {n} job{'' if n == 1 else 's'}{again}"
        first = (self.error or "").splitlines()[0] if self.error else ""
        return f"{self.outcome} {self.name}: {first}"


def pending(root: Root) -> list[Path]:
    """Request files waiting in inbox/, oldest first."""
    found: list[tuple[float, str]] = []
    with os.scandir(root.inbox) as it:
        for entry in it:
            name = entry.name
            if name.startswith(".") or name.endswith(".tmp"):
                continue
            if not name.lower().endswith(SUFFIXES):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(st.st_mode):  # a FIFO or device too: rejected, never read
                found.append((st.st_mtime, name))
    return [root.inbox / name for _, name in sorted(found)]


def ingest(
    root: Root,
    settings: Settings | None = None,
    *,
    planner_timeout_s: float = PLANNER_TIMEOUT_S,
    cancel: threading.Event | None = None,
) -> list[Ingested]:
    """Process every pending request file; stop while incoming/ is full (backpressure)."""
    settings = settings or root.settings
    for where in (root.accepted, root.rejected):  # a planted symlink would carry files out
        fs.check_private(where)
    out: list[Ingested] = []
    for path in pending(root):
        if cancel is not None and cancel.is_set():
            break
        full = _queue_full(root, settings)
        if full:
            out.append(Ingested(path.name, "waiting", error=full, queue_full=True))
            break
        result = _ingest_isolated(root, path, settings, planner_timeout_s, cancel)
        if result is None:
            continue
        out.append(result)
        if result.queue_full:
            break
    return out


def _ingest_isolated(
    root: Root,
    path: Path,
    settings: Settings,
    planner_timeout_s: float,
    cancel: threading.Event | None,
) -> Ingested | None:
    """:func:`ingest_file`, where nothing one file does can stop the files after it.

    An error nobody foresaw rejects the file with its reason. When even that fails
    (rejected/ cannot be written), the file stays where it is and says why: the
    pass goes on to the next file either way.
    """
    try:
        return ingest_file(root, path, settings, planner_timeout_s=planner_timeout_s, cancel=cancel)
    except PlannerCancelled:
        raise
    except Exception as exc:
        why = _why(exc)
        log.debug("inbox: %s failed", path.name, exc_info=True)
    try:
        return _reject(root, path, f"{path.name}: could not be processed: {why}")
    except FileNotFoundError:
        return None  # gone meanwhile
    except Exception as exc:
        return Ingested(
            path.name,
            "waiting",
            error=f"{path.name}: could not be processed ({why}), nor moved to "
            f"inbox/rejected/ ({_why(exc)}); left in inbox/",
        )


def _why(exc: BaseException) -> str:
    """One line, the same each time the same thing fails (no temp file names), so the
    manager says it once."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())[:500]
    return text or type(exc).__name__


def _queue_full(root: Root, settings: Settings, need: int = 1) -> str | None:
    full = job.queue_full(root, settings, need)
    return None if full is None else f"{full}; waiting"


def ingest_file(
    root: Root,
    path: Path,
    settings: Settings | None = None,
    *,
    planner_timeout_s: float = PLANNER_TIMEOUT_S,
    cancel: threading.Event | None = None,
) -> Ingested | None:
    """Turn one request file into jobs and move it; None when it vanished meanwhile."""
    settings = settings or root.settings
    name = path.name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return _reject(root, path, f"{name}: is a symlink; FARRO follows no symlinks in a root")
    try:
        raw = fs.read_file(path, limit=specfile.MAX_REQUEST_BYTES)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return _reject(root, path, f"{name}: cannot be read: {exc}")
    sha = hashlib.sha256(raw).hexdigest()
    try:
        data = specfile.decode(raw, name)
    except BadInput as exc:
        if fsclock.fs_now(root) - st.st_mtime < PARTIAL_GRACE_S:  # the server set st_mtime
            return Ingested(name, "waiting", error=f"{exc} (still being written?)")
        return _reject(root, path, str(exc))
    plan_file: Path | None = None
    try:
        if specfile.is_goal(data):
            plan_file = _plan_path(root, name)
            dicts = _planned_specs(
                root, name, data, sha, plan_file, settings, planner_timeout_s, cancel
            )
        else:
            dicts = specfile.spec_dicts(data, name)
        specs = specfile.validate(dicts, name)
        workspace.check_specs(root, specs, name)  # a workspace no attempt could use
        # a preset this host lacks the key or config of (the manager's host is taken
        # for the workers': agent_check = false where it is not)
        environ = settings.passed_env(os.environ) if settings.agent_check else None
        agents.check_specs(specs, settings.agent, environ, name)
        if settings.max_queued and len(specs) > settings.max_queued:
            raise BadInput(
                f"{name}: {len(specs)} jobs can never fit in a queue of max_queued "
                f"{settings.max_queued}; split the file"
            )
    except BadInput as exc:
        return _reject(root, path, str(exc), plan_file)
    ms = st.st_mtime_ns // 1_000_000
    explicit = {s.id for s in specs if s.id}
    specs = [
        s if s.id else s.model_copy(update={"id": derived_id(ms + i, name, sha, str(i))})
        for i, s in enumerate(specs)
    ]
    by = _created_by(name)
    created = 0
    for _ in range(3):  # AlreadyExists: somebody created one of our ids meanwhile; look again
        try:
            missing = _missing(root, specs, explicit, name)
        except BadInput as exc:
            return _reject(root, path, str(exc), plan_file)
        if not missing:
            break
        try:
            job.create_many(root, missing, created_by=by)
        except QueueFull as exc:
            return Ingested(name, "waiting", error=f"{exc}; waiting", queue_full=True)
        except AlreadyExists:
            continue
        except BadInput as exc:
            return _reject(root, path, str(exc), plan_file)
        created = len(missing)
        break
    else:
        return Ingested(name, "waiting", error=f"{name}: its job ids keep changing; retrying")
    crash.point("inbox.created")  # jobs exist, file still in inbox/: a re-run creates none
    ids = tuple(s.id for s in specs if s.id)
    dest = _move_unique(path, root.accepted)
    if plan_file is not None and os.path.lexists(plan_file):
        _move_unique(plan_file, root.accepted, f"{dest.name}.plan.json")
    return Ingested(name, "accepted", ids, created, os.path.relpath(dest, root.path))


# ---------------------------------------------------------------- goals


def _plan_path(root: Root, name: str) -> Path:
    return root.inbox / f".{name}.plan.json"


def _planned_specs(
    root: Root,
    name: str,
    data: dict[str, Any],
    sha: str,
    plan_file: Path,
    settings: Settings,
    timeout_s: float,
    cancel: threading.Event | None,
) -> list[dict[str, Any]]:
    """The goal's specs: the saved plan for this very content, else a fresh one."""
    extra = sorted(set(data) - _GOAL_KEYS)
    if extra:
        raise BadInput(
            f"{name}: unknown field {extra[0]!r} in a goal request (allowed: goal, defaults)"
        )
    goal, defaults = data.get("goal"), data.get("defaults", {})
    if not isinstance(goal, str) or not goal.strip():
        raise BadInput(f'{name}: "goal" must be a non-empty string')
    if not isinstance(defaults, dict):
        raise BadInput(f'{name}: "defaults" must be an object (a table in TOML)')
    if "id" in defaults:
        raise BadInput(f'{name}: "defaults" may not set "id" (every job would share it)')
    if not isinstance(defaults.get("labels", {}), dict):
        raise BadInput(f'{name}: "defaults.labels" must be an object')
    plan = _saved_plan(plan_file, sha)
    if plan is None:
        env = {"FARRO_ROOT": str(root.path), "FARRO_GOAL_FILE": name}
        plan = run_planner(
            settings.planner_argv(),
            goal,
            timeout_s=timeout_s,
            env=env,
            cwd=str(root.path),
            cancel=cancel,
            settings=settings,
        )
        fs.write_json(plan_file, {"request_sha256": sha, "jobs": plan}, indent=2)
    out = []
    for i, spec in enumerate(plan):
        if not isinstance(spec, dict):
            raise PlannerError(f"{name}: plan item {i} is not a job spec object")
        batch = {"batch": os.path.splitext(os.path.basename(name))[0]}  # unless it names one
        labels = {**batch, **defaults.get("labels", {}), **(spec.get("labels") or {}), "goal": name}
        out.append({**defaults, **spec, "labels": labels})
    return out


def _saved_plan(plan_file: Path, sha: str) -> list[dict[str, Any]] | None:
    try:
        saved = fs.read_json(plan_file)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("request_sha256") != sha:
        return None
    jobs = saved.get("jobs")
    return jobs if isinstance(jobs, list) else None


# ---------------------------------------------------------------- helpers


def _created_by(name: str) -> str:
    return f"{job.default_creator()} via inbox/{name}"


def _missing(root: Root, specs: list[JobSpec], explicit: set[str], name: str) -> list[JobSpec]:
    """Specs whose job does not exist yet.

    A derived id that exists was made from this very file (its content hash is in
    the id). An id the file names itself must have been created from a file of
    this name, else another job holds it and the file is refused.
    """
    out = []
    for spec in specs:
        assert spec.id is not None
        where = next(
            (root.path / q / spec.id for q in QUEUES if os.path.lexists(root.path / q / spec.id)),
            None,
        )
        if where is None:
            out.append(spec)
            continue
        if spec.id not in explicit:
            continue
        try:
            existing = job.load(root, str(where))
        except FarroError:
            existing = None
        if existing is None or not existing.prompt.created_by.endswith(f" via inbox/{name}"):
            raise BadInput(f"{name}: job id {spec.id} exists already (not from this file)")
    return out


def _free_names(want: str) -> Iterator[str]:
    """``want``, then ``stem.1.ext``, ``stem.2.ext``...: the names a request may take
    in accepted/ or rejected/ without replacing anything."""
    stem, dot, ext = want.partition(".")
    yield want
    for n in range(1, 1000):
        yield f"{stem}.{n}{dot}{ext}"


def _move_unique(src: Path, dest_dir: Path, want: str | None = None) -> Path:
    """Move ``src`` into ``dest_dir`` under a name nothing holds (never replacing)."""
    want = want or src.name
    dest = fs.move_to_free(src, (dest_dir / n for n in _free_names(want)), ".error.txt")
    if dest is None:
        raise AlreadyExists(f"no free name for {want} in {dest_dir.name}/")
    return dest


def _reject(root: Root, path: Path, error: str, plan_file: Path | None = None) -> Ingested:
    """Move a bad request to rejected/ beside NAME.error.txt saying what is wrong."""
    name = path.name
    for final in _free_names(name):
        dest = root.rejected / final
        note = root.rejected / f"{final}.error.txt"
        if not os.path.lexists(dest) and not os.path.lexists(note):
            break
    else:
        raise AlreadyExists(f"no free name for {name} in inbox/rejected/")
    text = f"{error}\n\nrejected at {utcnow().isoformat()} by the manager on {host()}\n"
    fs.write_file(note, text.encode())
    fs.move(path, dest)
    if plan_file is not None and os.path.lexists(plan_file):
        _move_unique(plan_file, root.rejected, f"{final}.plan.json")
    return Ingested(name, "rejected", moved_to=os.path.relpath(dest, root.path), error=error)
