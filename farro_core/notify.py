"""``on_finish``: a command run for every job that reaches a terminal status.

Run from :func:`farro_core.job.commit`, the one place every status change goes
through, in a thread of its own: the command gets the job's JSON summary on
stdin and ``FARRO_*`` variables, runs in a new session (its process group is
killed after ``on_finish_timeout_s``), and whatever it does (fail, hang, not
exist) is recorded as a ``notify-failed`` line in the job's audit history and
never touches the job. A short-lived process (``farro kill``) waits for its
hooks on the way out (:func:`wait_all`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import threading
import time
from typing import Any

from farro_core import audit, fs
from farro_core.envelope import Envelope
from farro_core.errors import FarroError
from farro_core.lru import LRU
from farro_core.root import Root
from farro_core.settings import Settings

log = logging.getLogger(__name__)
_THREADS: list[threading.Thread] = []
_LOCK = threading.Lock()


def summary(env: Envelope) -> dict[str, Any]:
    """What the command reads on stdin."""
    p, lc = env.prompt, env.lifecycle
    res = lc.result
    return {
        "id": env.id,
        "title": p.title,
        "status": str(lc.status),
        "reason": lc.reason,
        "attempt": lc.attempt,
        "verdict": res.verdict if res else None,
        "checks": {v.id: v.passed for v in res.rubric} if res else {},
        "duration_s": res.duration_s if res else None,
        "report": res.report if res else {},
        "labels": dict(p.labels),
        "workspace": p.workspace,
        "branch": res.work.branch if res and res.work else None,
        "path": str(env.path),
        "updated_at": lc.updated_at.isoformat(),
    }


def environment(root: Root, env: Envelope) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    res = env.lifecycle.result
    out.update(
        {
            "FARRO_ROOT": str(root.path),
            "FARRO_JOB_ID": env.id,
            "FARRO_JOB_STATUS": str(env.status),
            "FARRO_JOB_DIR": str(env.path),
            "FARRO_ATTEMPT": str(env.lifecycle.attempt),
            "FARRO_VERDICT": (res.verdict or "") if res else "",
        }
    )
    return out


#: the settings each root's farro.toml gave, by that file's bytes and the FARRO_* variables
_SETTINGS: LRU[tuple[str, bytes | None, tuple[tuple[str, str], ...]], Settings] = LRU(16)


def _settings(root: Root) -> Settings:
    """The root's settings as they are now, parsed again only when farro.toml or the
    ``FARRO_*`` environment changed: every job's last commit asks, and parsing and
    validating the file cost more than the rest of a no-op job's commit. Keyed by the
    file's bytes, not its mtime: two edits within one clock tick would look alike."""
    try:
        raw: bytes | None = fs.read_file(root.path / "farro.toml", limit=1 << 20)
    except FileNotFoundError:
        raw = None
    except (OSError, ValueError):
        return root.settings  # says what is wrong with it
    # the names first: os.environ decodes each value it yields, and few are FARRO_'s
    environ = tuple(sorted((k, os.environ[k]) for k in os.environ if k.startswith("FARRO_")))
    key = (root.key, raw, environ)
    found = _SETTINGS.hit(key)
    if found is None:
        found = root.settings
        _SETTINGS.put(key, found)
    return found


def finished(root: Root, env: Envelope) -> None:
    """Start the hook for ``env`` (just committed to a terminal status), if one is set."""
    try:
        settings = _settings(root)
    except FarroError:
        return
    if settings.on_finish is None:
        return
    t = threading.Thread(
        target=_run_logged, args=(root, settings, env), name=f"farro-on-finish-{env.id}"
    )
    t.daemon = True
    with _LOCK:
        _THREADS[:] = [x for x in _THREADS if x.is_alive()]
        _THREADS.append(t)
    t.start()


def wait_all(timeout: float | None = None) -> None:
    """Wait for the hooks this process started (each is bounded by its own timeout)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _LOCK:
        threads = list(_THREADS)
    for t in threads:
        t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


def _run_logged(root: Root, settings: Settings, env: Envelope) -> None:
    try:
        why = run(root, settings, env)
    except Exception as exc:  # a hook must never take a worker down
        why = f"{type(exc).__name__}: {exc}"
    if why is None:
        return
    log.warning("on_finish for job %s: %s", env.id, why)
    try:
        audit.note(
            root, env.lifecycle, actor="on_finish", reason=f"on_finish {why}", event="notify-failed"
        )
    except OSError as exc:
        log.warning("cannot record the on_finish failure of job %s: %s", env.id, exc)


def run(root: Root, settings: Settings, env: Envelope) -> str | None:
    """Run the hook to its end or its timeout; None when it exited 0, else why not."""
    cmd = settings.on_finish
    if cmd is None:
        return None
    argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    data = json.dumps(summary(env)).encode()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=environment(root, env),
            cwd=root.path,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return f"could not start: {exc.strerror or exc}"
    try:
        _, err = proc.communicate(data, timeout=settings.on_finish_timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a process of its own session holds the pipe
            if proc.stderr is not None:
                proc.stderr.close()
            proc.wait()
        return f"timed out after {settings.on_finish_timeout_s:g}s: killed"
    except BrokenPipeError:  # it exited without reading its stdin
        err = b""
        proc.wait()
    if proc.returncode != 0:
        tail = " ".join(err.decode(errors="replace").split())[-200:]
        how = (
            f"killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited {proc.returncode}"
        )
        return how + (f": {tail}" if tail else "")
    return None
