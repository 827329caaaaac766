"""Run one attempt of a job: the agent command in a unit of its own, watched.

The agent gets the prompt on stdin and everything else through the environment;
a string command runs under ``/bin/sh -c`` with its placeholders turned into
``"$FARRO_…"`` references, so job data never becomes shell text. Output is
streamed into ``logs/attempt-N.log`` as it comes, capped at ``log_max_bytes``.
While it runs, the runner heeds the attempt's heartbeat (:mod:`farro_core.heartbeat`:
does it still own the job?) and honours ``control/kill``, the timeout and a worker
stop, always signalling every process of the attempt's unit
(:mod:`farro_core.procs`): SIGTERM, then SIGKILL after ``kill_grace_s``.
Whatever the agent leaves behind is killed when it exits.

Why one file of ~620 lines: the agent's process, its output pump, its kill and
timeout handling and the reading of its result are one loop over one process's
life; split, each part would need the others' state.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import select
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from farro_core import agents, fs, identity, job, procs
from farro_core.clock import utcnow
from farro_core.envelope import AgentPreset, Envelope
from farro_core.errors import FarroError, RootError
from farro_core.settings import Settings

log = logging.getLogger("farro.worker")

TICK_S = 0.1  # how often the runner looks at the agent, control/kill and the clock
READ_CHUNK = 1 << 16
DRAIN_S = 5.0  # how long the output may still flow after the agent's unit is gone
TAIL_BYTES = 4096  # the end of the agent's output, kept to explain an exit 126/127
PRESET_TAIL_BYTES = 1 << 20  # a preset's CLI ends with its result JSON: keep enough of it
RESULT_FILE_MAX = 1 << 20
#: an agent's report is nested at most this deep (it is kept inside job.json)
REPORT_MAX_DEPTH = 16
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "farro",
    "GIT_AUTHOR_EMAIL": "farro@localhost",
    "GIT_COMMITTER_NAME": "farro",
    "GIT_COMMITTER_EMAIL": "farro@localhost",
}
#: the variables that give git's config that identity (``git config user.name`` answers)
GIT_CONFIG_IDENTITY = tuple(
    f"GIT_CONFIG_{k}" for k in ("COUNT", "KEY_0", "VALUE_0", "KEY_1", "VALUE_1")
)
_PLACEHOLDER = re.compile(r"\{(prompt_file|workspace|job_dir)\}")
_SHELL_REF = {
    "prompt_file": '"$FARRO_PROMPT_FILE"',
    "workspace": '"$FARRO_WORKSPACE"',
    "job_dir": '"$FARRO_JOB_DIR"',
}


@dataclass
class Attempt:
    """What happened to the agent process (the judging comes later)."""

    number: int
    started_at: datetime
    finished_at: datetime | None = None
    exit_code: int | None = None
    timed_out: bool = False
    killed_by: str | None = None  # who asked for control/kill
    lost: str | None = None  # why the job is no longer ours: the attempt is dropped
    released: bool = False  # the worker stopped and gave the job back
    error: str | None = None  # the agent could not even start
    fatal: bool = False  # the error is one no retry can fix (e.g. an unusable workspace)
    retry_after_s: float | None = None  # the model API asked to wait this long (a preset saw it)
    stuck: agents.Failure | None = None  # a preset's CLI showed a failure it does not end on
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        end = self.finished_at or utcnow()
        return round((end - self.started_at).total_seconds(), 3)


# ---------------------------------------------------------------- the log


class LogRefused(FarroError):
    """The attempt log's place holds something FARRO will not write through."""


class AttemptLog:
    """``logs/attempt-N.log``: the agent's output, capped, plus ``[farro]`` notes.

    Raises :class:`LogRefused` when ``logs/`` or the log is a symlink, a FIFO, a
    directory or anything else but a regular file: it is never written through,
    and opening it never blocks (a planted FIFO would hang the worker in ``open``).
    """

    def __init__(self, path: Path, cap: int) -> None:
        rel = f"{path.parent.name}/{path.name}"
        try:
            fs.make_private_dir(path.parent)
        except RootError:
            raise LogRefused(
                f"the attempt log's directory {path.parent.name}/ is a symlink or not a "
                "directory: refusing to write the attempt log through it"
            ) from None
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(path, flags | os.O_NONBLOCK, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LogRefused(
                    f"the attempt log {rel} is a symlink: refusing to write through it"
                ) from None
            if exc.errno in (errno.ENXIO, errno.EISDIR):
                raise LogRefused(
                    f"the attempt log {rel} is not a regular file: refusing to write to it"
                ) from None
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            os.close(fd)
            what = "not a regular file" if not stat.S_ISREG(st.st_mode) else "a hard link"
            raise LogRefused(f"the attempt log {rel} is {what}: refusing to write to it")
        self.fd = fd
        self.cap = cap
        self.agent_bytes = 0
        self.truncated = False
        self.tail = b""  # the last tail_max bytes of the agent's output
        self.tail_max = TAIL_BYTES
        #: why writing the log failed (e.g. a full disk); output is then drained and dropped
        self.error: str | None = None
        self._lock = threading.Lock()

    def note(self, line: str) -> None:
        with self._lock:
            self._write(f"[farro] {line}\n".encode(errors="replace"))

    def output(self, data: bytes) -> None:
        with self._lock:
            self.tail = (self.tail + data)[-self.tail_max :]
            if self.truncated:
                return
            room = self.cap - self.agent_bytes
            self._write(data[:room])
            self.agent_bytes += min(room, len(data))
            if len(data) > room:
                self.truncated = True
                self._write(
                    f"\n[farro] log truncated at {self.cap} bytes; "
                    "the agent's further output was discarded\n".encode()
                )

    def _write(self, data: bytes) -> None:
        if self.fd < 0 or self.error is not None:
            return  # closed (output of something that escaped the group), or failed
        try:
            fs.write_all(self.fd, data)
        except OSError as exc:
            # a full disk must never stall the agent on a full pipe: keep draining, drop it
            self.error = exc.strerror or str(exc)
            log.warning("writing an attempt log failed (%s); the agent's output is dropped", exc)

    @classmethod
    def discarding(cls, cap: int) -> AttemptLog:
        """A log that drops everything (its place was refused, see :class:`LogRefused`)."""
        sink = cls.__new__(cls)
        sink.fd, sink.cap, sink.agent_bytes, sink.truncated, sink.tail = -1, cap, 0, False, b""
        sink.tail_max = TAIL_BYTES
        sink.error, sink._lock = None, threading.Lock()
        return sink

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def _pump(fd: int, sink: AttemptLog, abandon: threading.Event) -> None:
    """Copy the agent's output to the log until EOF, draining even past the cap."""
    try:
        while not abandon.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            data = os.read(fd, READ_CHUNK)
            if not data:
                return
            sink.output(data)
    except OSError as exc:
        sink.note(f"reading the agent's output failed: {exc}")


def _feed_now(proc: subprocess.Popen[bytes], data: bytes) -> bytes:
    """Write what the pipe takes without blocking (a prompt below 64 KiB: all of it) and
    close stdin once all is written; return the rest, for :func:`_feed` in a thread.

    Most prompts fit the pipe, and a thread per attempt just to write them cost a
    thread start and two hand-overs of the GIL per job.
    """
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    try:
        os.set_blocking(fd, False)
        try:
            sent = os.write(fd, data) if data else 0
        except BlockingIOError:
            sent = 0
        finally:
            os.set_blocking(fd, True)
    except OSError:
        sent = len(data)  # the agent does not read stdin, or exited: fine
    rest = data[sent:]
    if not rest:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    return rest


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
    except OSError:
        pass  # the agent does not read stdin, or exited: fine
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


# ---------------------------------------------------------------- the command


def command(agent: list[str] | str, values: Mapping[str, str]) -> list[str]:
    """The argv to run, with ``{prompt_file}`` ``{workspace}`` ``{job_dir}`` filled in.

    In an argv list the values go into the items (no shell is involved); a string
    runs under ``/bin/sh -c`` and gets ``"$FARRO_…"`` references instead, so the
    job's data reaches the shell only as variables, never as shell text.
    """
    if isinstance(agent, str):
        return ["/bin/sh", "-c", _PLACEHOLDER.sub(lambda m: _SHELL_REF[m.group(1)], agent)]
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], item) for item in agent]


def agent_env(
    env: Envelope, workspace: Path, worker: str, settings: Settings | None = None
) -> dict[str, str]:
    """The environment of the agent and of the rubric checks.

    The worker's own environment as ``env_allow`` / ``env_deny`` let it through
    (``FARRO_*`` always passes), ``PYTHONUNBUFFERED=1`` and a git identity
    (``GIT_AUTHOR_*`` / ``GIT_COMMITTER_*``, farro, and ``user.name`` / ``user.email``
    through ``GIT_CONFIG_*``) unless set, and the job's
    ``FARRO_*`` variables; the unit adds ``FARRO_UNIT_TOKEN``.
    """
    attempt = env.lifecycle.attempt
    out = settings.passed_env(os.environ) if settings is not None else dict(os.environ)
    out.setdefault("PYTHONUNBUFFERED", "1")  # Python agents then stream their output
    for name, value in GIT_IDENTITY.items():
        # an agent that commits has an identity, so none writes one into the shared
        # .git/config (Aider does when git has none), where concurrent jobs collide
        out.setdefault(name, value)
    if "GIT_CONFIG_COUNT" not in out:  # `git config user.name` answers too (Aider asks it)
        out.update(
            GIT_CONFIG_COUNT="2",
            GIT_CONFIG_KEY_0="user.name",
            GIT_CONFIG_VALUE_0=out["GIT_AUTHOR_NAME"],
            GIT_CONFIG_KEY_1="user.email",
            GIT_CONFIG_VALUE_1=out["GIT_AUTHOR_EMAIL"],
        )
    out.update(
        FARRO_JOB_ID=env.id,
        FARRO_JOB_DIR=str(env.path),
        FARRO_PROMPT_FILE=str(prompt_file(env)),
        FARRO_ATTEMPT=str(attempt),
        FARRO_WORKSPACE=str(workspace),
        FARRO_RESULT_FILE=str(result_file(env)),
        FARRO_WORKER=worker,
    )
    return out


def prompt_file(env: Envelope) -> Path:
    return env.path / "prompt.txt"


def result_file(env: Envelope) -> Path:
    return env.path / "logs" / f"attempt-{env.lifecycle.attempt}.result.json"


def log_name(attempt: int) -> str:
    return f"logs/attempt-{attempt}.log"


def _agent_record(env: Envelope, attempt: int) -> Path:
    return env.path / "logs" / f"attempt-{attempt}.agent.json"


def record_agent(env: Envelope, pid: int, unit: procs.Unit | None = None) -> None:
    """Say which processes run the attempt, so a later attempt can end them (see below)."""
    body = {
        "pid": pid,
        "started_at": identity.pid_started_at(pid),
        "host": identity.host(),
        "boot_id": identity.boot_id(),
        "unit": unit.record() if unit is not None else None,
    }
    fs.write_json(_agent_record(env, env.lifecycle.attempt), body, durable=False)


def kill_leftovers(env: Envelope, sink: AttemptLog) -> None:
    """Kill what an earlier attempt left running when its worker died or hung.

    A worker killed with SIGKILL ends none of its units, and a hung (SIGSTOPped)
    worker's agent keeps running. When the job is claimed again on the same host
    and boot, the earlier attempt's unit is ended (its cgroup, or its token); the
    agent's process group is killed too, but only when its start time proves the
    pid is that very process (a recycled pid is never signalled).
    """
    for n in range(max(1, env.lifecycle.attempt - 100), env.lifecycle.attempt):
        try:
            body = fs.read_json(_agent_record(env, n), limit=4096)
            pid, started = int(body["pid"]), body["started_at"]
            host, boot = str(body["host"]), str(body["boot_id"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if host != identity.host() or boot != identity.boot_id():
            continue
        killed = False
        unit = body.get("unit")
        if isinstance(unit, dict):
            killed = procs.kill_recorded(unit)
        if identity.same_process(pid, started, host, boot):
            procs.kill_group(pid)  # records written before units existed name only the pid
            killed = True
        if killed:
            sink.note(f"killed the agent of attempt {n} (pid {pid}), which outlived its worker")


def write_prompt_file(env: Envelope) -> None:
    """A plain-text copy of the prompt, written once (0444) like prompt.json.

    Not fsynced: it is derived from prompt.json, and rewritten when a crash lost or
    truncated it.
    """
    path = prompt_file(env)
    data = env.prompt.prompt.encode()
    try:
        intact = os.lstat(path).st_size == len(data)
    except FileNotFoundError:
        intact = False
    if not intact:
        fs.write_file(path, data, mode=0o444, durable=False)


def read_report(env: Envelope, sink: AttemptLog) -> dict[str, Any]:
    path = result_file(env)
    try:
        # bounded well below job.json's own: the report is stored inside it
        data = fs.read_json(path, limit=RESULT_FILE_MAX, max_depth=REPORT_MAX_DEPTH)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        sink.note(f"result file ignored: {exc}")
        return {}
    except ValueError as exc:
        sink.note(f"result file ignored: not JSON FARRO accepts ({exc})")
        return {}
    if not isinstance(data, dict):
        sink.note("result file ignored: not a JSON object")
        return {}
    return data


# ---------------------------------------------------------------- one attempt


def run(
    env: Envelope,
    workspace: Path,
    settings: Settings,
    sink: AttemptLog,
    *,
    worker: str,
    release: Callable[[], bool] = lambda: False,
    lost: Callable[[], str | None] = lambda: None,
) -> Attempt:
    """Run the agent for ``env``'s attempt and watch it until it exits.

    ``release()`` asks for a release (the worker is stopping); ``lost()`` says
    why the job is no longer ours (see :class:`farro_core.heartbeat.Heartbeat`):
    then the agent is killed at once and the attempt dropped.
    """
    attempt = Attempt(number=env.lifecycle.attempt, started_at=utcnow())
    agent = env.prompt.agent if env.prompt.agent is not None else settings.agent_argv()
    environ = agent_env(env, workspace, worker, settings)
    values = {
        "prompt_file": environ["FARRO_PROMPT_FILE"],
        "workspace": environ["FARRO_WORKSPACE"],
        "job_dir": environ["FARRO_JOB_DIR"],
    }
    preset: agents.Resolved | None = None
    if isinstance(agent, AgentPreset):
        try:
            preset = agents.resolve(agent, environ)
        except agents.NotConfigured as exc:  # before anything runs: no retry can fix it
            attempt.error, attempt.fatal = str(exc), True
            sink.note(attempt.error)
            attempt.finished_at = utcnow()
            return attempt
        environ.update(preset.env)
        sink.tail_max = PRESET_TAIL_BYTES
        agent = preset.argv
    argv = command(agent, values)
    sink.note(f"command: {json.dumps(argv)}")
    try:
        unit = procs.Unit("attempt", settings.containment)
    except OSError as exc:
        attempt.error = f"cannot contain the agent: {exc.strerror or exc}"
        sink.note(attempt.error)
        attempt.finished_at = utcnow()
        return attempt
    try:
        proc = unit.popen(
            argv,
            environ,
            cwd=workspace,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            close_fds=True,
            bufsize=0,
        )
    except OSError as exc:
        attempt.error, attempt.fatal = _start_error(exc, argv, workspace)
        sink.note(attempt.error)
        attempt.finished_at = utcnow()
        return attempt
    assert proc.stdout is not None
    try:
        record_agent(env, proc.pid, unit)
    except OSError as exc:
        sink.note(f"cannot record the agent's pid: {exc}")
    abandon = threading.Event()
    reader = threading.Thread(
        target=_pump, args=(proc.stdout.fileno(), sink, abandon), daemon=True, name="farro-log"
    )
    reader.start()
    rest = _feed_now(proc, env.prompt.prompt.encode())
    if rest:
        threading.Thread(target=_feed, args=(proc, rest), daemon=True, name="farro-stdin").start()
    try:
        _watch(
            env,
            proc,
            unit,
            settings,
            sink,
            attempt,
            release,
            lost,
            preset.stuck if preset else None,
        )
    finally:
        # everything the agent left running (daemons, setsid'd or double-forked children)
        # dies with it, and an exception in the watch loop never leaves the agent behind
        code = procs.end(unit, proc, None)
        attempt.finished_at = utcnow()
        reader.join(DRAIN_S)
        if reader.is_alive():
            sink.note(
                "something the agent started outside its unit still holds its "
                "output: no longer reading it"
            )
        abandon.set()
        reader.join(1.0)
        proc.stdout.close()
    attempt.exit_code = code
    sink.note(_ending(attempt, code))
    stopped = attempt.killed_by or attempt.timed_out or attempt.released or attempt.lost
    if isinstance(agent, str) and code in (126, 127) and not stopped:
        attempt.error, attempt.fatal = _shell_error(agent, code, sink.tail), True
        sink.note(attempt.error)
    attempt.report = read_report(env, sink)
    if preset is not None and not stopped:
        read_preset(preset, attempt, sink)
    return attempt


def read_preset(preset: agents.Resolved, attempt: Attempt, sink: AttemptLog) -> None:
    """The preset's fields from the CLI's own output; its failure, classified."""
    parsed = preset.parse(sink.tail, attempt.exit_code or 0)
    attempt.report.update(parsed.report)
    failure = attempt.stuck or parsed.failure
    if failure is not None:
        attempt.report["failure"] = failure.kind
    if failure is None or attempt.error is not None:
        return
    what = {
        "auth": "authentication failed",
        "rate_limit": "rate limited",
        "context": "context overflow",
        "unreachable": "model endpoint unreachable",
        "error": "the agent reported an error",
    }[failure.kind]
    attempt.error = f"{what} ({failure.kind}): {failure.message}"
    attempt.fatal = failure.fatal
    attempt.retry_after_s = failure.retry_after_s
    sink.note(attempt.error + (" (no retry)" if failure.fatal else ""))


def _start_error(exc: OSError, argv: list[str], workspace: Path) -> tuple[str, bool]:
    """Why the agent did not start, and whether no retry can fix it."""
    if exc.filename is not None and os.fsdecode(exc.filename) == str(workspace):
        return f"cannot enter the workspace {str(workspace)!r}: {exc.strerror or exc}", False
    if exc.errno == errno.ENOENT:
        return f"agent command not found: {argv[0]}", True
    if exc.errno in (errno.EACCES, errno.ENOEXEC, errno.EISDIR, errno.ENOTDIR):
        return f"agent command not executable: {argv[0]} ({exc.strerror or exc})", True
    return f"cannot start the agent {argv[0]!r}: {exc.strerror or exc}", False


_SH_MISSING = re.compile(r"(?:^|: )([^:\n]+): (?:command )?not found\s*$")
_SH_DENIED = re.compile(r"(?:^|: )([^:\n]+): (?:Permission denied|cannot execute[^\n]*)\s*$")


def shell_error_line(tail: bytes) -> str:
    """The last line of output, where ``sh`` says why a command could not run."""
    lines = [ln for ln in tail.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def _shell_error(agent: str, code: int, tail: bytes) -> str:
    """A string agent that ``sh`` could not run: 127 not found, 126 not executable."""
    line = shell_error_line(tail)
    pattern = _SH_MISSING if code == 127 else _SH_DENIED
    m = pattern.search(line)
    words = agent.split()
    name = m.group(1).strip() if m else (words[0] if words else agent)
    what = "not found" if code == 127 else "not executable"
    return f"agent command {what}: {name}" + (f" ({line})" if line and not m else "")


def _watch(
    env: Envelope,
    proc: subprocess.Popen[bytes],
    unit: procs.Unit,
    settings: Settings,
    sink: AttemptLog,
    attempt: Attempt,
    release: Callable[[], bool],
    lost: Callable[[], str | None],
    stuck: Callable[[bytes], agents.Failure | None] | None = None,
) -> None:
    deadline = time.monotonic() + env.prompt.timeout_s
    term_at: float | None = None
    seen = 0  # output bytes the stuck check has looked at
    while not procs.wait_exit(proc, TICK_S):
        now = time.monotonic()
        why = None
        if term_at is None and stuck is not None and sink.agent_bytes != seen:
            seen = sink.agent_bytes
            attempt.stuck = stuck(sink.tail)
            if attempt.stuck is not None:
                why = attempt.stuck.message
        if term_at is None and why is None:
            if (who := job.kill_requested(env.path, attempt.number)) is not None:
                attempt.killed_by = who
                why = f"kill requested by {who}"
            elif now >= deadline:
                attempt.timed_out = True
                why = f"timed out after {env.prompt.timeout_s:g}s"
            elif release():
                attempt.released = True
                why = "the worker is stopping: releasing the job"
        if attempt.lost is None and (gone := lost()) is not None:
            attempt.lost = gone
            sink.note(f"{gone}: killing the agent, dropping this attempt")
            unit.kill()
            return
        if why is not None:
            sink.note(f"{why}: SIGTERM to every process of the agent")
            unit.signal(signal.SIGTERM)
            term_at = now
        elif term_at is not None and now - term_at >= settings.kill_grace_s:
            sink.note(f"the agent outlived the {settings.kill_grace_s:g}s grace: SIGKILL")
            unit.kill()
            return


def _ending(attempt: Attempt, code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        how = f"killed by {name}"
    else:
        how = f"exited {code}"
    return f"agent {how} after {attempt.duration_s:g}s"
