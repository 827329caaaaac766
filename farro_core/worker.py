"""The agent worker: claim a job, run its attempt, judge it, commit the outcome.

A worker is a thread; a process may host several (the console, headless mode).
Its loop claims the best queued job, prepares the workspace, runs the agent
(:mod:`farro_core.runner`), checks the changed paths against ``allowed_paths``
(:mod:`farro_core.workspace`), runs the rubric (:mod:`farro_core.rubric`), and
commits what :mod:`farro_core.outcome` decides. When idle it waits for a
:meth:`Worker.wake` hint or ``rescan_s``, whichever comes first: events are
hints, the directory is the truth.

A commit refused with :class:`Conflict` means the job moved on without us (it
went stale and was requeued): the attempt is dropped, never recorded.

Why one file of ~600 lines: the loop and the one attempt it runs share the
worker's state (its claim, release and stop flags); the parts with their own
concerns already live in runner, workspace, rubric and outcome.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from farro_core import (
    agents,
    fs,
    globs,
    heartbeat,
    job,
    outcome,
    pool,
    procs,
    rubric,
    runner,
    workspace,
)
from farro_core.clock import utcnow
from farro_core.envelope import AgentPreset, Envelope, Result, RubricVerdict
from farro_core.errors import Conflict, NotFound
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
from farro_core.settings import Settings
from farro_core.transitions import Actor, Status

log = logging.getLogger("farro.worker")

State = Literal["idle", "busy", "paused", "stopping", "stopped"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")
_ERROR_PAUSE_S = 1.0


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    state: State
    job: str | None
    attempt: int | None
    since: datetime  # when this state/job began (UTC)
    jobs_done: int
    #: (preset, what this host lacks for it): queued jobs of these presets are left to others
    passing: tuple[tuple[str, str], ...] = ()


class Worker:
    """One agent worker thread. Build it, :meth:`start` it, :meth:`stop` it."""

    def __init__(self, root: Root, name: str, *, settings: Settings | None = None) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"worker name {name!r} must match {_NAME.pattern}")
        self.root = root
        self.name = name
        self.settings = settings if settings is not None else root.settings
        self.identity = WorkerIdentity.current(name)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._release = threading.Event()
        self._paused = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._status = WorkerStatus(name, "idle", None, None, utcnow(), 0)
        #: one status write at a time, each of the status as it is then (never an older one)
        self._status_write = threading.Lock()
        self._status_written = -float("inf")  # when it was last written (monotonic)
        self._status_unwritten = False  # _status changed since (a job change left for a tick)
        #: this worker's pooled worktrees, one per repository, held until it stops
        self.pool = pool.Pool(root)
        #: presets whose queued jobs this worker leaves to others, and what it lacks for them
        self._passing: dict[str, str] = {}
        #: the thread that beats the running attempt's heartbeat, made on first use
        self._beater = heartbeat.Beater(f"farro-heartbeat-{name}")

    # ------------------------------------------------------------ control

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._release.clear()
        with self._lock:
            state: State = "paused" if self._paused else "idle"
            self._status = replace(
                self._status, state=state, job=None, attempt=None, since=utcnow()
            )
        self._publish_status()
        self._thread = threading.Thread(
            target=self._loop, name=f"farro-worker-{self.name}", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        """A hint that incoming/ changed: rescan now instead of at the next ``rescan_s``."""
        self._wake.set()

    def pause(self) -> None:
        """Claim nothing new; a running attempt goes on."""
        self._paused = True
        self._wake.set()

    def resume(self) -> None:
        self._paused = False
        self._wake.set()

    def begin_stop(self) -> None:
        """Stop claiming, without waiting (see :func:`stop_all`)."""
        self._stopping.set()
        self._wake.set()

    def stop(self, *, release: bool = True, grace_s: float | None = None) -> None:
        """Stop claiming; give a running attempt ``grace_s``, then release it (or wait).

        Released jobs go back to queued without using up an attempt. Joins the
        thread, so nothing is left in-progress by a clean stop.
        """
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        self.begin_stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            if self._status.state == "busy":
                self._set("stopping", self._status.job, self._status.attempt)
            thread.join(grace)
            if thread.is_alive():
                if release:
                    self._release.set()
                thread.join()
        self.pool.close()
        self._beater.close()
        self._set("stopped")

    def status(self) -> WorkerStatus:
        return self._status

    def run_once(self) -> Envelope | None:
        """Claim and run one job in the caller's thread (tests, benchmarks).

        Returns the job as committed, or None when nothing was claimable or the
        attempt was fenced (the job moved on without us).
        """
        env = self._claim()
        if env is None:
            return None
        try:
            return self._process(env)
        finally:
            self._set("paused" if self._paused else "idle")

    # ------------------------------------------------------------ the loop

    def _loop(self) -> None:
        # a worker that died with SIGKILL ended none of its units: end them now
        try:
            procs.reap_orphans(self.settings.containment)
        except Exception:
            log.exception("%s: ending the processes of dead workers failed", self.name)
        while not self._stopping.is_set():
            if self._paused:
                self._set("paused")
                self._wake.wait(self.settings.rescan_s)
                self._wake.clear()
                continue
            self._wake.clear()
            try:
                env = self._claim()
            except Exception:
                log.exception("%s: claiming failed; trying again shortly", self.name)
                self._set("idle")
                self._wake.wait(_ERROR_PAUSE_S)
                continue
            if env is None:
                self._set("idle")
                self._wake.wait(self.settings.rescan_s)
                continue
            try:
                self._process(env)
            except Exception:
                log.exception(
                    "%s %s: attempt %d broke off; the watchdog will find the job",
                    self.name,
                    env.id,
                    env.lifecycle.attempt,
                )
        self._set("idle")  # "stopping" until stop() joins us (see _set)

    def _claim(self) -> Envelope | None:
        """Claim the best queued job this host can run.

        A job whose agent preset lacks its key or configuration here is passed by,
        untouched and with no attempt spent: another worker (another host) may run
        it, and this one does once the configuration is there (it checks at each
        scan). Which presets it leaves, and why, goes to its status file for
        ``farro stats`` and ``farro agents`` (docs/architecture.md, "Agents").
        """
        default = self.settings.agent
        # the environment, copied only once a job names a preset: most claims never ask
        environ: dict[str, str] = {}
        said: dict[str, str | None] = {}
        left: dict[str, str] = {}

        def pass_by(preset: str | None) -> bool:
            if preset is None:  # the job names no agent: the agent setting's runs it
                preset = default.preset if isinstance(default, AgentPreset) else ""
            if not preset:
                return False
            if preset not in said:
                if not said:
                    environ.update(self.settings.passed_env(os.environ))
                said[preset] = agents.missing(preset, environ)
            why = said[preset]
            if why is not None:
                left[preset] = why
            return why is not None

        env = job.claim(self.root, self.identity, pass_by=pass_by)
        # a scan that claimed nothing saw every queued job; one that claimed stopped early,
        # so it keeps what it said before of presets it did not check again
        kept = {k: v for k, v in self._passing.items() if k not in said}
        self._note_passing(left if env is None else {**kept, **left})
        return env

    def _note_passing(self, left: dict[str, str]) -> None:
        with self._lock:
            if left == self._passing:
                return
            new = {k: v for k, v in left.items() if self._passing.get(k) != v}
            self._passing = left
            self._status = replace(self._status, passing=tuple(sorted(left.items())))
        for preset, why in new.items():
            log.warning("%s leaves queued %s jobs to other workers: %s", self.name, preset, why)
        self._publish_status()

    def _process(self, env: Envelope) -> Envelope | None:
        n = env.lifecycle.attempt
        self._set("busy", env.id, n)
        log.info("%s %s queued → in-progress (attempt %d)", self.name, env.id, n)
        beat = heartbeat.Heartbeat(
            env, self.settings.heartbeat_s, self._beater, on_beat=self._flush_status
        )
        try:
            beat.start()  # inside the try: if even this fails, the claim is still given back
            # A worker stopped (SIGSTOP) between its claim and here may find the job
            # requeued, or claimed again by another worker: start nothing, write nothing.
            lost = self._lost(beat)
            if lost is not None:
                self._fenced(env, lost, None)
                return None
            return self._attempt(env, beat)
        except Exception as exc:
            lost = self._lost(beat)
            if lost is not None:  # the job vanished under us: fenced, not a bug
                self._fenced(env, f"{lost} ({type(exc).__name__}: {exc})", None)
                return None
            log.exception("%s %s: attempt %d broke off", self.name, env.id, n)
            self._give_up(env, exc)
            return None
        finally:
            beat.stop()
            job.release_claim(env)
            # no "idle" written here: the loop claims next, and a worker going from job
            # to job writes its status file once per job (it says busy on the next job,
            # or idle when the claim finds nothing), not twice
            with self._lock:
                self._status = replace(self._status, jobs_done=self._status.jobs_done + 1)

    def _attempt(self, env: Envelope, beat: heartbeat.Heartbeat) -> Envelope | None:
        n = env.lifecycle.attempt
        refused: str | None = None
        try:
            sink = runner.AttemptLog(env.path / runner.log_name(n), self.settings.log_max_bytes)
        except runner.LogRefused as exc:  # a planted symlink or FIFO: never written through
            refused = str(exc)
            log.warning("%s %s attempt %d: %s", self.name, env.id, n, refused)
            sink = runner.AttemptLog.discarding(self.settings.log_max_bytes)
        try:
            sink.note(
                f"attempt {n} of job {env.id} by worker {self.name} "
                f"(pid {self.identity.pid} on {self.identity.host}) at {utcnow().isoformat()}"
            )
            runner.write_prompt_file(env)
            runner.kill_leftovers(env, sink)
            ws: workspace.Workspace | None = None
            try:
                if refused is not None:  # no agent runs without its log
                    raise workspace.WorkspaceError(refused)
                ws = workspace.prepare(
                    self.root,
                    env,
                    known_base=env.lifecycle.result.base_commit if env.lifecycle.result else None,
                    known_branch=_base_branch(env),
                    ignore_file=env.prompt.ignore_file or self.settings.ignore_file,
                    slots=self.pool,
                    reuse=self.settings.workspace_reuse,
                    on_retry=sink.note,
                )
            except workspace.WorkspaceError as exc:
                now = utcnow()
                attempt = runner.Attempt(
                    number=n,
                    started_at=now,
                    finished_at=now,
                    error=refused or f"workspace: {exc}",
                    fatal=not exc.retriable,
                )
                sink.note(attempt.error or "")
            else:
                for line in ws.notes:
                    sink.note(line)
                sink.note(f"workspace: {ws.path} ({ws.kind})")
                attempt = runner.run(
                    env,
                    ws.path,
                    self.settings,
                    sink,
                    worker=self.name,
                    release=self._release.is_set,
                    lost=lambda: beat.lost,
                )
            if attempt.lost is not None:
                self._fenced(env, attempt.lost, sink)
                return None
            violations: list[str] = []
            verdicts: list[RubricVerdict] = []
            verdict: rubric.Verdict | None = None
            if ws is not None:
                lost = beat.check()  # before touching git: a fenced attempt commits nothing
                if lost is not None:
                    self._fenced(env, lost, sink)
                    return None
                violations, verdicts, verdict = self._judge(env, ws, attempt, sink, beat)
                if attempt.lost is not None:
                    self._fenced(env, attempt.lost, sink)
                    return None
            decision = outcome.decide(
                attempt,
                env.lifecycle,
                max_attempts=env.prompt.max_attempts,
                settings=self.settings,
                violations=violations,
                rubric=verdicts,
                verdict=verdict,
            )
            result = Result(
                attempt=n,
                exit_code=attempt.exit_code,
                started_at=attempt.started_at,
                finished_at=attempt.finished_at or utcnow(),
                duration_s=attempt.duration_s,
                timed_out=attempt.timed_out,
                killed=attempt.killed_by is not None,
                rubric=verdicts,
                verdict=verdict,
                violations=violations,
                log=runner.log_name(n) if refused is None else None,
                base_commit=ws.base_commit if ws is not None else None,
                work=ws.work if ws is not None else None,
                report=attempt.report,
                error=attempt.error,
            )
            changes: dict[str, Any] = {"result": result}
            if decision.to is Status.QUEUED:
                changes.update(claim=None, not_before=decision.not_before)
            if decision.attempt_base is not None:
                changes["attempt_base"] = decision.attempt_base
            sink.note(f"in-progress → {decision.to}: {decision.reason}")
            try:
                new = job.commit(
                    env, decision.to, Actor.AGENT, decision.reason, worker=self.name, **changes
                )
            except (Conflict, NotFound) as exc:
                self._fenced(env, f"commit refused: {exc}", sink)
                return None
            log.info(
                "%s %s in-progress → %s (attempt %d): %s",
                self.name,
                env.id,
                decision.to,
                n,
                decision.reason,
            )
            return new
        finally:
            sink.close()

    def _judge(
        self,
        env: Envelope,
        ws: workspace.Workspace,
        attempt: runner.Attempt,
        sink: runner.AttemptLog,
        beat: heartbeat.Heartbeat,
    ) -> tuple[list[str], list[RubricVerdict], rubric.Verdict | None]:
        """Changed paths against allowed_paths, the work committed, then the rubric."""
        judge_ignored = env.prompt.judge_ignored
        if judge_ignored is None:
            judge_ignored = self.settings.judge_ignored
        try:
            found = workspace.changes(ws, judge_ignored=judge_ignored)
            changed = found.judged
            head = workspace.commit_work(ws, env.id, attempt.number, found)
            prev = env.lifecycle.result.work if env.lifecycle.result else None
            ws.work = workspace.record(ws, found, head, attempt.number, prev)
        except workspace.WorkspaceError as exc:
            attempt.error = attempt.error or f"judging the workspace failed: {exc}"
            sink.note(attempt.error)
            return [], [], None
        violations = globs.violations(changed, env.prompt.allowed_paths)
        n = len(changed)
        sink.note(
            f"{n} path{'' if n == 1 else 's'} changed" + (f": {_short(changed)}" if n else "")
        )
        ignored_note = workspace.ignored_note(found.ignored)
        if ignored_note:
            sink.note(ignored_note)
        if head is not None:
            sink.note(f"work committed on branch farro/{env.id} as {head[:12]}")
        if violations:
            sink.note(f"outside allowed_paths: {_short(violations)}")
        clean_exit = (
            attempt.exit_code == 0
            and attempt.error is None
            and not attempt.timed_out
            and attempt.killed_by is None
            and not attempt.released
        )
        if violations or not clean_exit:
            return violations, [], None
        if not env.prompt.rubric:  # nothing to run: spare building the checks' environment
            return violations, [], rubric.verdict([])
        n = attempt.number
        try:
            verdicts = rubric.run_checks(
                env.prompt.rubric,
                ws.path,
                runner.agent_env(env, ws.path, self.name, self.settings),
                kill_grace_s=self.settings.kill_grace_s,
                containment=self.settings.containment,
                cancel=lambda: (
                    self._release.is_set()
                    or beat.lost is not None
                    or job.kill_requested(env.path, n) is not None
                ),
            )
        except rubric.Interrupted as exc:
            if beat.lost is not None:
                attempt.lost = beat.lost
                return violations, [], None
            attempt.killed_by = job.kill_requested(env.path, n)
            attempt.released = attempt.killed_by is None
            why = "the job was killed" if attempt.killed_by else "the worker is stopping"
            sink.note(f"rubric check {exc} interrupted: {why}")
            return violations, [], None
        for v in verdicts:
            state = rubric.state_of(v).replace("_", " ")
            state = "no check" if state == "ungraded" else state if v.passed else state.upper()
            kind = "required" if v.required else "optional"
            sink.note(f"rubric {v.id} ({kind}): {state} (exit {v.exit_code})")
        return violations, verdicts, rubric.verdict(verdicts)

    def _give_up(self, env: Envelope, exc: Exception) -> None:
        """A bug or an I/O error broke the attempt: count it as a failed attempt.

        If even this commit fails, the job stays in-progress with its claim lock
        free, and the watchdog marks it stale ("worker gone").
        """
        now = utcnow()
        attempt = runner.Attempt(
            number=env.lifecycle.attempt,
            started_at=now,
            finished_at=now,
            error=f"worker error: {exc}",
        )
        decision = outcome.decide(
            attempt,
            env.lifecycle,
            max_attempts=env.prompt.max_attempts,
            settings=self.settings,
            violations=[],
            rubric=[],
            verdict=None,
        )
        changes: dict[str, Any] = {}
        if decision.to is Status.QUEUED:
            changes.update(claim=None, not_before=decision.not_before)
        try:
            job.commit(env, decision.to, Actor.AGENT, decision.reason, worker=self.name, **changes)
        except Exception as again:
            log.error("%s %s: could not record the failure either: %s", self.name, env.id, again)

    def _lost(self, beat: heartbeat.Heartbeat) -> str | None:
        """Why the job is no longer ours (None while it is, or when that cannot be told)."""
        try:
            return beat.check()
        except Exception:
            log.exception(
                "%s %s: cannot tell whether the job is still ours", self.name, beat.env.id
            )
            return None

    def _fenced(self, env: Envelope, why: str, sink: runner.AttemptLog | None) -> None:
        if sink is not None:
            sink.note(f"attempt dropped: {why}")
        log.warning(
            "%s %s attempt %d dropped, nothing recorded: %s",
            self.name,
            env.id,
            env.lifecycle.attempt,
            why,
        )

    # ------------------------------------------------------------ status

    def _set(self, state: State, job_id: str | None = None, attempt: int | None = None) -> None:
        with self._lock:
            old = self._status
            if state in ("idle", "paused") and self._stopping.is_set() and old.state != "stopped":
                state = "stopping"
            if (old.state, old.job, old.attempt) == (state, job_id, attempt):
                return
            self._status = WorkerStatus(
                self.name, state, job_id, attempt, utcnow(), old.jobs_done, old.passing
            )
            # busy from job to job: the file is rewritten at most once per heartbeat tick
            # (the tick writes what is left), not per job: each write makes and frees an
            # inode, which is what a short job costs most (docs/spec.md §3.7)
            if old.state == state == "busy" and (
                time.monotonic() - self._status_written < self.settings.heartbeat_s
            ):
                self._status_unwritten = True
                return
        if state != old.state:
            log.debug("%s: %s → %s", self.name, old.state, state)
        self._publish_status()

    def _flush_status(self) -> None:
        """Write the status a job change left unwritten (at each heartbeat tick)."""
        if self._status_unwritten:
            self._publish_status()

    def _publish_status(self) -> None:
        with self._status_write:
            with self._lock:
                status = self._status
                self._status_unwritten = False
                self._status_written = time.monotonic()
            self._write_status(status)

    def _write_status(self, st: WorkerStatus) -> None:
        body = {
            "name": st.name,
            "host": self.identity.host,
            "pid": self.identity.pid,
            "state": st.state,
            "job": st.job,
            "attempt": st.attempt,
            "since": st.since.isoformat(),
            "jobs_done": st.jobs_done,
            "containment": procs.containment(self.settings.containment).as_dict(),
            # queued jobs of these presets are left to other workers: what this one lacks
            "passing": dict(st.passing),
        }
        try:
            fs.write_json(  # informational: atomic for readers, no fsync needed
                self.root.workers_dir / f"{self.name}.json", body, durable=False
            )
        except OSError as exc:
            log.warning("%s: cannot write its status file: %s", self.name, exc)


def stop_all(workers: list[Worker], *, release: bool = True, grace_s: float | None = None) -> None:
    """Stop several workers within one grace period, not one grace after another."""
    if not workers:
        return
    grace = workers[0].settings.shutdown_grace_s if grace_s is None else grace_s
    for w in workers:
        w.begin_stop()
    deadline = time.monotonic() + grace
    for w in workers:
        w.stop(release=release, grace_s=max(0.0, deadline - time.monotonic()))


def _base_branch(env: Envelope) -> str | None:
    res = env.lifecycle.result
    return res.work.base_branch if res is not None and res.work is not None else None


def _short(paths: list[str], limit: int = 20) -> str:
    more = len(paths) - limit
    return ", ".join(paths[:limit]) + (f" (+{more} more)" if more > 0 else "")
