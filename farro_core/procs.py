"""Containment: every process an attempt, a rubric check or the planner starts ends with it.

A process group is not enough: ``setsid``, a double fork or ``nohup … &`` leave it.
So each run is a :class:`Unit`, and everything it starts is found again by one of
two mechanisms, probed once per process (:func:`containment`):

- **cgroup**: cgroup v2 with ``cgroup.kill`` (Linux 5.14+), where this process may
  create a child of its own cgroup. Each unit is a cgroup ``farro.<token>`` beside
  this process; the child moves itself into it before it runs the command, so
  nothing it starts can leave it, and ending the unit is one write to ``cgroup.kill``.
- **fallback**: this process becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``,
  so orphans stay its children instead of going to init) and every unit's
  processes carry ``FARRO_UNIT_TOKEN`` in their environment; ending a unit kills
  every process whose environment holds the token, or that is still in the
  leader's session. A process that both leaves the session and clears its
  environment escapes this mechanism, not the cgroup one.

A token is ``<pid namespace>.<namespace start>.<owner pid>.<owner start time>.<n>``:
anyone in the same pid namespace can tell whether the process that owns a unit is
still alive. A pid means nothing in another namespace, so a unit whose token names
another one is never judged dead from here (cgroups can be shared across pid
namespaces, as with containers or tests/hosts' "hosts" on one kernel). A namespace
is its inode *and* the start time of its pid 1: the kernel gives a dead
namespace's inode to the next one made, and a unit a dead container left must not
be read as one of ours. :func:`reap_orphans` kills
the units whose owner died (a worker or manager killed with SIGKILL); workers run
it when they start, the manager at every sweep.

Why one file of ~710 lines: the two mechanisms answer one question (which
processes belong to this unit, and how to end them all), and a change to one must
be read against the other.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import logging
import os
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from farro_core.identity import pid_started_at, proc_stat

log = logging.getLogger("farro.procs")

TOKEN_VAR = "FARRO_UNIT_TOKEN"
_TOKEN = re.compile(r"(\d{1,20}\.\d{1,20})\.(\d{1,10})\.(\d{1,20})\.\d{1,10}")
#: a token as versions before the namespace's start time wrote it: still ended when a
#: record of this boot names it (an upgrade must not strand a running agent)
_LEGACY_TOKEN = re.compile(r"\d{1,20}\.\d{1,10}\.\d{1,20}\.\d{1,10}")
_CGROUP_PREFIX = "farro."
#: how long ending a unit waits for its processes to be gone before it gives up
KILL_WAIT_S = 10.0
_PR_SET_CHILD_SUBREAPER = 36

Mechanism = Literal["cgroup", "fallback"]
Preference = Literal["auto", "fallback"]


@dataclass(frozen=True)
class Containment:
    """The mechanism in force in this process, and where (or why not cgroup)."""

    mechanism: Mechanism
    detail: str
    cgroup_dir: Path | None = None  # the parent of the units' cgroups

    def describe(self) -> str:
        return f"{self.mechanism} ({self.detail})"

    def as_dict(self) -> dict[str, str]:
        return {"mechanism": self.mechanism, "detail": self.detail}


# ---------------------------------------------------------------- the owner and tokens


@cache
def _owner() -> tuple[int, int]:
    pid = os.getpid()
    return pid, pid_started_at(pid) or 0


_seq = itertools.count(1)
_lock = threading.Lock()
_live_leaders: set[int] = set()  # pids Popen will wait for: never reaped here
_subreaper = False


@cache
def _pid_namespace() -> str:
    """This process's pid namespace: ``<inode>.<start time of its pid 1>``.

    The inode alone is not enough: the kernel gives a freed namespace inode to the
    next namespace made, so a token a dead container left would name ours. Its pid 1
    started before it died, so ours (started after) has another start time.
    """
    try:
        inode = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        inode = 0
    return f"{inode}.{pid_started_at(1) or 0}"


def _parse_token(text: str) -> tuple[str, int, int] | None:
    """(pid namespace, owner pid, owner start time), or None for a foreign string."""
    m = _TOKEN.fullmatch(text)
    return (m.group(1), int(m.group(2)), int(m.group(3))) if m else None


def _owner_alive(owner: tuple[str, int, int]) -> bool:
    """Is the unit's owner alive? Always yes for an owner of another pid namespace:
    its pid cannot be looked up from here, and a guess would kill healthy work."""
    ns, pid, started = owner
    if ns != _pid_namespace():
        return True
    if (pid, started) == _owner() and pid == os.getpid():
        return True
    # a zombie is dead: killed with -9, a worker stays one until its parent waits for
    # it, which a container's init may never do
    fields = proc_stat(pid)
    return fields is not None and fields[0] not in (b"Z", b"X") and int(fields[19]) == started


# ---------------------------------------------------------------- the probe


def containment(prefer: Preference = "auto") -> Containment:
    """What this process uses for units; probed once (a real child in a real cgroup)."""
    if prefer == "fallback":
        return Containment("fallback", "containment = fallback in the settings")
    with _probe_lock:  # threads of one process start at once: one probe for all of them
        return _probe(os.getpid())


_probe_lock = threading.Lock()


@cache
def _probe(_pid: int) -> Containment:
    where = _own_cgroup_dir()
    if isinstance(where, str):
        return Containment("fallback", where)
    pid, started = _owner()
    probe = where / f"{_CGROUP_PREFIX}{pid}.{started}.{next(_seq)}"
    try:
        os.mkdir(probe)
        try:
            if not (probe / "cgroup.kill").exists():
                return Containment(
                    "fallback", "cgroup v2 without cgroup.kill (Linux 5.14 or later needed)"
                )
            proc = _spawn_into(probe, ["/bin/sh", "-c", "exit 0"], {})
            if proc.wait() != 0:
                return Containment("fallback", f"a process could not join a cgroup in {where}")
        finally:
            _rmdir(probe)
    except (OSError, subprocess.SubprocessError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return Containment("fallback", f"cannot use a cgroup under {where}: {why}")
    return Containment("cgroup", f"cgroup v2 under {where}", where)


def _own_cgroup_dir() -> Path | str:
    """The directory of this process's cgroup v2, or why there is none to use."""
    own = _cgroup_path("self")
    if own is None:
        return "no cgroup v2 hierarchy for this process"
    found = _dir_of(own)
    return found if found is not None else "cgroup v2 is not mounted where this process sees it"


def _cgroup_path(pid: int | str) -> str | None:
    """The cgroup v2 path of ``pid`` (``0::/a/b`` in /proc/PID/cgroup)."""
    try:
        with open(f"/proc/{pid}/cgroup") as fh:
            return next((ln[3:].strip() for ln in fh if ln.startswith("0::")), None)
    except OSError:
        return None


@cache
def _mounts() -> tuple[tuple[str, str], ...]:
    """(root, mount point) of each cgroup2 mount this process sees."""
    out = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                if "-" in fields and fields[fields.index("-") + 1 : fields.index("-") + 2] == [
                    "cgroup2"
                ]:
                    out.append((fields[3], fields[4]))
    except OSError:
        pass
    return tuple(out)


def _dir_of(path: str) -> Path | None:
    """Where the cgroup ``path`` (as /proc/PID/cgroup names it) is in the file system."""
    for root, point in _mounts():
        root = root.rstrip("/")
        if path == root or path.startswith(root + "/") or not root:
            return Path(point) / path[len(root) :].lstrip("/")
    return None


# ---------------------------------------------------------------- units


class Unit:
    """The processes of one attempt, check or planner run: started together, ended together."""

    def __init__(self, kind: str, prefer: Preference = "auto") -> None:
        self.kind = kind
        self.containment = containment(prefer)
        pid, started = _owner()
        self.token = f"{_pid_namespace()}.{pid}.{started}.{next(_seq)}"
        self.cgroup: Path | None = None
        self.leader: subprocess.Popen[bytes] | None = None
        self._session: int | None = None
        if self.containment.cgroup_dir is not None:
            self.cgroup = self.containment.cgroup_dir / f"{_CGROUP_PREFIX}{self.token}"
            os.mkdir(self.cgroup, 0o755)
        else:
            _become_subreaper()

    @property
    def mechanism(self) -> Mechanism:
        return self.containment.mechanism

    def environ(self, base: Mapping[str, str]) -> dict[str, str]:
        return {**base, TOKEN_VAR: self.token}

    def popen(
        self, argv: Sequence[str], env: Mapping[str, str], **kw: Any
    ) -> subprocess.Popen[bytes]:
        """Start the unit's leader (in a new session); raises OSError like Popen, the
        unit then closed (its cgroup removed), since nothing is left in it to end."""
        if self.leader is not None:
            raise RuntimeError("a unit has one leader")
        environ = self.environ(env)
        try:
            if self.cgroup is not None:
                proc = _spawn_into(self.cgroup, argv, environ, **kw)
            else:
                proc = subprocess.Popen(argv, env=environ, start_new_session=True, **kw)
        except OSError:
            self.close()
            raise
        self.leader = proc
        self._session = proc.pid
        with _lock:
            _live_leaders.add(proc.pid)
        return proc

    def record(self) -> dict[str, str | None]:
        """What a later process needs to end this unit (see :func:`kill_recorded`)."""
        return {
            "token": self.token,
            "mechanism": self.mechanism,
            "cgroup": str(self.cgroup) if self.cgroup else None,
        }

    def members(self) -> list[int]:
        """The unit's live processes (the leader too, until it exits)."""
        if self.cgroup is not None:
            return _cgroup_procs(self.cgroup)
        return _token_procs(self.token, self._live_session())

    def _live_session(self) -> int | None:
        """The leader's session id, while the unreaped leader keeps that number ours."""
        leader = self.leader
        return self._session if leader is not None and leader.returncode is None else None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to every process of the unit (SIGTERM: a polite request)."""
        for pid in self.members():
            _send(pid, sig)

    def kill(self) -> bool:
        """SIGKILL everything in the unit and wait until it is gone; True when it is.

        The leader is left for its Popen to reap; escapees that became this
        process's children (the subreaper) are reaped here.
        """
        if self.cgroup is not None:
            done = _kill_cgroup(self.cgroup)
        else:
            done = _kill_by_token(self.token, self._live_session())
        if not done:
            log.warning(
                "%s unit %s: processes still alive %gs after SIGKILL",
                self.kind,
                self.token,
                KILL_WAIT_S,
            )
        return done

    def close(self) -> None:
        """Forget the leader (after its Popen reaped it) and remove the unit's cgroup."""
        if self.leader is not None:
            with _lock:
                _live_leaders.discard(self.leader.pid)
        if self.cgroup is not None:
            _rmdir(self.cgroup)
        _reap_zombies()


#: the child's first act: join the cgroup (``echo`` is a builtin, so the shell moves
#: itself), then become the command. It never forks before it is in, so nothing the
#: command starts can be outside; and Popen keeps its fast vfork path (a preexec_fn
#: would force a full fork of this process, ~3 ms a run).
_JOIN = 'echo 0 > "$0" || exit 125; exec "$@"'


def _spawn_into(
    cgroup: Path, argv: Sequence[str], env: Mapping[str, str], **kw: Any
) -> subprocess.Popen[bytes]:
    """Popen whose child joins ``cgroup`` before it runs ``argv``.

    ``argv[0]`` is looked up first, as exec would, so a missing or non-executable
    command raises FileNotFoundError or PermissionError here, as Popen itself would.
    """
    _resolve(argv[0], env, kw.get("cwd"))
    wrapped = ["/bin/sh", "-c", _JOIN, str(cgroup / "cgroup.procs"), *argv]
    return subprocess.Popen(wrapped, env=dict(env), start_new_session=True, **kw)


def _resolve(exe: str, env: Mapping[str, str], cwd: Any) -> None:
    """Raise what execvp would for ``exe``: ENOENT when missing, EACCES when not runnable."""
    if cwd is not None and not os.path.isdir(cwd):
        return  # Popen reports the missing directory itself
    if "/" in exe:
        candidates = [os.path.join(os.fspath(cwd), exe) if cwd is not None else exe]
    else:
        dirs = env.get("PATH", os.defpath).split(os.pathsep)
        candidates = [os.path.join(d or ".", exe) for d in dirs]
    denied = False
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return
            denied = True
        elif os.path.isdir(path) and "/" in exe:
            denied = True
    if denied:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), exe)
    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), exe)


def _become_subreaper() -> None:
    global _subreaper
    if _subreaper:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    except (OSError, AttributeError) as exc:
        log.warning("cannot become a child subreaper (%s); escapees are still found by token", exc)
        return
    _subreaper = True


# ---------------------------------------------------------------- finding processes


def _cgroup_procs(cgroup: Path) -> list[int]:
    try:
        with open(cgroup / "cgroup.procs") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session) of ``pid``, or None when it is gone."""
    fields = proc_stat(pid)
    return None if fields is None else (fields[0].decode(), int(fields[1]), int(fields[3]))


def _token_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    key = TOKEN_VAR.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(key):
            return item[len(key) :].decode(errors="replace")
    return None


def _token_procs(token: str, session: int | None) -> list[int]:
    me = os.getpid()
    out = []
    for pid in _pids():
        if pid == me:
            continue
        st = _stat(pid)
        if st is None or st[0] in "ZX":
            continue
        if _token_of(pid) == token or (session is not None and st[2] == session):
            out.append(pid)
    return out


def kill_group(pgid: int) -> None:
    """SIGKILL a process group; the caller has proved ``pgid`` is not a recycled pid."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _send(pid: int, sig: int) -> bool:
    """False when the kernel refused the signal (EPERM): it will refuse it again."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        return False
    return True


def _wait_empty(pids_of: Any, deadline: float, kill: bool) -> bool:
    delay = 0.001
    while True:
        left = pids_of()
        if not left:
            return True
        if kill and not [pid for pid in left if _send(pid, signal.SIGKILL)]:
            return False  # every kill refused: waiting cannot make them die
        _reap_zombies()
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _kill_cgroup(cgroup: Path) -> bool:
    try:
        with open(cgroup / "cgroup.kill", "w") as fh:
            fh.write("1")
    except FileNotFoundError:
        return True  # already removed: nothing left in it
    except OSError as exc:
        log.warning("cannot write %s/cgroup.kill: %s", cgroup, exc)
    return _wait_empty(lambda: _cgroup_procs(cgroup), time.monotonic() + KILL_WAIT_S, kill=False)


def _kill_by_token(token: str, session: int | None) -> bool:
    # a process may fork between a scan and its kill: scan and kill until a scan finds none
    return _wait_empty(
        lambda: _token_procs(token, session), time.monotonic() + KILL_WAIT_S, kill=True
    )


def _reap_zombies() -> None:
    """Reap escapees that died as this (subreaper) process's children.

    Only children outside this process's session that no Popen waits for: git and
    other direct children share our session, unit leaders are in ``_live_leaders``.
    """
    if not _subreaper:
        return
    me, own_session = os.getpid(), os.getsid(0)
    with _lock:
        leaders = set(_live_leaders)
    for pid in _pids():
        st = _stat(pid)
        if st is None or st[0] != "Z" or st[1] != me or st[2] == own_session or pid in leaders:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _rmdir(cgroup: Path) -> None:
    for _ in range(50):
        try:
            os.rmdir(cgroup)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                log.warning("cannot remove the cgroup %s: %s", cgroup, exc)
                return
            time.sleep(0.01)  # the last process is still on its way out
    log.warning("cannot remove the cgroup %s: still busy", cgroup)


# ---------------------------------------------------------------- later: records and orphans


def kill_recorded(record: Mapping[str, Any]) -> bool:
    """End a unit another process recorded (see :meth:`Unit.record`), on this host.

    The record is read from disk, so it is checked: a token of our form, and a
    cgroup only when it is named after that token.
    """
    token = record.get("token")
    if not isinstance(token, str) or not (
        _TOKEN.fullmatch(token) or _LEGACY_TOKEN.fullmatch(token)
    ):
        return False
    found = False
    cg = record.get("cgroup")
    if isinstance(cg, str) and os.path.basename(cg) == _CGROUP_PREFIX + token:
        path = Path(cg)
        if (path / "cgroup.kill").exists():
            found = bool(_cgroup_procs(path))
            _kill_cgroup(path)
            _rmdir(path)
    procs = _token_procs(token, None)
    if procs:
        _kill_by_token(token, None)
    return found or bool(procs)


@dataclass(frozen=True)
class Orphan:
    """A unit on this host whose owner is dead and whose processes still run."""

    token: str
    pids: tuple[int, ...]
    #: the ``FARRO_*`` variables of its first process (which job, which workspace)
    farro_env: Mapping[str, str]


def _farro_env(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return {}
    out = {}
    for item in data.split(b"\0"):
        key, eq, value = item.partition(b"=")
        if eq and key.startswith(b"FARRO_"):
            out[key.decode(errors="replace")] = value.decode(errors="surrogateescape")
    return out


def orphans() -> list[Orphan]:
    """What :func:`reap_orphans` would end (found by their token), ending nothing:
    ``farro fsck`` reports them, and ends them with ``--repair``."""
    me = os.getpid()
    found: dict[str, list[int]] = {}
    dead: dict[str, bool] = {}
    for pid in _pids():
        token = _token_of(pid) if pid != me else None
        if token is None:
            continue
        if token not in dead:
            owner = _parse_token(token)
            dead[token] = owner is not None and not _owner_alive(owner)
        st = _stat(pid) if dead[token] else None
        if st is not None and st[0] not in "ZX":
            found.setdefault(token, []).append(pid)
    return [Orphan(t, tuple(pids), _farro_env(pids[0])) for t, pids in found.items()]


def end_orphan(orphan: Orphan) -> tuple[int, ...]:
    """End one unit :func:`orphans` found (its cgroup too, when it has one); the pids
    of it still alive after the wait, none when all died.

    A kill the kernel refused (EPERM) or a process stuck in uninterruptible sleep
    (a hung network file system) outlives the wait: whoever reuses what the unit
    worked in must know, not only that it was found.
    """
    cg = _cgroup_of(orphan.pids[0], orphan.token)
    kill_recorded({"token": orphan.token, "cgroup": str(cg) if cg else None})
    left = set(_token_procs(orphan.token, None))
    if cg is not None:
        left.update(p for p in _cgroup_procs(cg) if (st := _stat(p)) and st[0] not in "ZX")
    return tuple(sorted(left))


_orphan_lock = threading.Lock()


def reap_orphans(prefer: Preference = "auto") -> list[str]:
    """Kill every unit on this host whose owner process is dead; the tokens reaped.

    Found two ways: processes whose environment holds a token, and ``farro.*``
    cgroups beside this process's own units.
    """
    if not _orphan_lock.acquire(blocking=False):
        return []  # another thread of this process is at it
    try:
        dead: dict[str, bool] = {}
        reaped: list[str] = []
        for pid in _pids():
            token = _token_of(pid)
            if token is None or token in dead:
                continue
            owner = _parse_token(token)
            dead[token] = owner is not None and not _owner_alive(owner)
            if dead[token]:
                cg = _cgroup_of(pid, token)
                kill_recorded({"token": token, "cgroup": str(cg) if cg else None})
                reaped.append(token)
        where = containment(prefer).cgroup_dir
        if where is not None:
            with contextlib.suppress(OSError):
                for name in os.listdir(where):
                    token = name[len(_CGROUP_PREFIX) :]
                    owner = _parse_token(token) if name.startswith(_CGROUP_PREFIX) else None
                    if owner is None or _owner_alive(owner):
                        continue
                    if _cgroup_procs(where / name):
                        kill_recorded({"token": token, "cgroup": str(where / name)})
                        if token not in reaped:
                            reaped.append(token)
                    else:
                        _rmdir(where / name)
        if reaped:
            log.warning(
                "killed the processes of %d unit%s whose worker or manager died: %s",
                len(reaped),
                "" if len(reaped) == 1 else "s",
                ", ".join(reaped[:10]),
            )
        return reaped
    finally:
        _orphan_lock.release()


def _cgroup_of(pid: int, token: str) -> Path | None:
    """The unit cgroup ``pid`` is in, when it is named after ``token``."""
    path = _cgroup_path(pid)
    if path is None or not path.endswith("/" + _CGROUP_PREFIX + token):
        return None
    return _dir_of(path)


# ---------------------------------------------------------------- one process


def exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has ``proc`` exited? Does not reap it, so its pid stays ours."""
    if proc.returncode is not None:
        return True
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait up to ``timeout`` for ``proc`` to exit, without reaping it."""
    if exited(proc):
        return True
    try:  # a pidfd becomes readable the moment the process exits: no polling latency
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is not None:
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.poll(max(0.0, timeout) * 1000)
        finally:
            os.close(pidfd)
        return exited(proc)
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if exited(proc):
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.02)


def end(unit: Unit, proc: subprocess.Popen[bytes], grace_s: float | None) -> int:
    """End the unit: SIGTERM and up to ``grace_s`` for the leader (None: no grace),
    then SIGKILL for everything left; reap the leader and return its status."""
    if grace_s is not None and not exited(proc):
        unit.signal(signal.SIGTERM)
        wait_exit(proc, grace_s)
    try:
        unit.kill()
    finally:
        code = proc.wait()
        unit.close()
    return code
