"""Several "hosts" on one machine, sharing one root, each with real processes.

A host is ``unshare --uts --pid --mount --fork --mount-proc``: its own host name,
its own pid space, and (a file bind-mounted over /proc/sys/kernel/random/boot_id
in its mount namespace) its own boot id, which is where farro_core/identity.py
reads it. Its clock is shifted with libfaketime (``FAKETIME=+60s``), with
``DONT_FAKE_MONOTONIC=1`` (timeouts and sleeps stay real), ``NO_FAKE_STAT=1`` and
``FAKE_UTIME=1`` (mtimes stay the kernel's, as a file server's would), so any use
of a host's local clock against another's shows. Each host's pids start at its
own base (``ns_last_pid``), so a pid in a log says which host it belongs to, and
sitecustomize.py logs every pid a host signals or probes.

Needs root, unshare and libfaketime (``make tools`` installs it). Where the
machine lacks them the tests fail with a line saying so (skip only off CI, as a
non-root developer).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from support import wait_until

from farro_core import audit, job, procs
from farro_core.envelope import Envelope
from farro_core.errors import FarroError
from farro_core.root import Root

HERE = Path(__file__).parent
REPO = HERE.parent.parent
FAKETIME_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
)
UNSHARE = ("unshare", "--uts", "--pid", "--mount", "--fork", "--mount-proc")
#: host i's pids run from 1000 + PID_SPAN * i, PID_SPAN of them: three hosts fit under
#: the default pid_max (32768); a host under a second suite's load used over 5,000
PID_SPAN = 10_000


def faketime_lib() -> str | None:
    return next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)


def require_hosts() -> None:
    """Fail (or, off CI and not root, skip) with the reason this machine cannot run hosts."""
    why = None
    if os.geteuid() != 0:
        why = "needs root (unshare of UTS/PID/mount namespaces, bind mounts)"
    elif shutil.which("unshare") is None:
        why = "needs unshare (util-linux)"
    elif faketime_lib() is None:
        why = "needs libfaketime: `make tools` installs it (apt-get install faketime)"
    else:
        probe = subprocess.run(
            [*UNSHARE, "true"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode != 0:
            why = f"this machine does not allow namespaces: {probe.stderr.strip()}"
    if why is None:
        return
    if os.environ.get("CI") or os.geteuid() == 0:
        pytest.fail(f"multi-host tests cannot run here: {why}")
    pytest.skip(f"multi-host tests: {why}")


class Host:
    """One host: started by :meth:`start`, killed whole by :meth:`kill` (SIGKILL to its init)."""

    def __init__(self, tmp: Path, root: Path, name: str, index: int, offset_s: int) -> None:
        self.name = name
        self.root = root
        self.offset_s = offset_s
        self.pid_lo = 1000 + PID_SPAN * index
        self.pid_hi = self.pid_lo + PID_SPAN
        self.boot_id = str(uuid.uuid4())
        self.boot_file = tmp / f"boot-{name}"
        self.boot_file.write_text(self.boot_id + "\n")
        self.pidlog = tmp / f"pids-{name}.log"
        self.log_path = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, workers: int, manager: bool) -> None:
        script = (
            f"hostname {self.name} && "
            f"mount --bind {self.boot_file} /proc/sys/kernel/random/boot_id && "
            f"echo {self.pid_lo} > /proc/sys/kernel/ns_last_pid && "
            f'"$FARRO_TEST_PYTHON" {HERE / "hostproc.py"} {self.root} {workers} '
            f"{1 if manager else 0}"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FARRO_", "FAKE"))}
        env.update(
            FARRO_TEST_PYTHON=sys.executable,
            FARRO_TEST_PIDLOG=str(self.pidlog),
            PYTHONPATH=os.pathsep.join([str(HERE / "site"), str(REPO)]),
            LD_PRELOAD=faketime_lib() or "",
            FAKETIME=f"{self.offset_s:+d}s",
            DONT_FAKE_MONOTONIC="1",
            FAKE_UTIME="1",
            NO_FAKE_STAT="1",
        )
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    "unshare",
                    "--uts",
                    "--pid",
                    "--mount",
                    "--fork",
                    "--mount-proc",
                    "sh",
                    "-c",
                    script,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def init_pid(self) -> int | None:
        """The host's pid 1, as this (outer) pid namespace numbers it."""
        assert self.proc is not None
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return None
        first = kids.split()
        return int(first[0]) if first else None

    def outer_pids(self) -> list[int]:
        """Every process of this host (outer pids): those in its pid namespace."""
        init = self.init_pid()
        if init is None:
            return []
        try:
            ns = os.readlink(f"/proc/{init}/ns/pid")
        except OSError:
            return []
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == ns:
                        out.append(int(entry))
                except OSError:
                    continue
        return out

    def freeze(self) -> None:
        """SIGSTOP every process of the host, until none is left running (they fork)."""

        def all_stopped() -> bool:
            running = [p for p in self.outer_pids() if _state(p) not in ("T", "Z", None)]
            for p in running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGSTOP)
            return not running

        wait_until(all_stopped, f"{self.name}: every process stopped")

    def kill(self) -> None:
        """The whole host dies: SIGKILL to its pid 1 kills every process in its namespace."""
        init = self.init_pid()
        if init is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM to the System (its process in the namespace), then wait for the host."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for p in self.outer_pids():
            if _cmdline(p).find("hostproc.py") >= 0:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()

    def signalled_pids(self) -> list[tuple[str, int]]:
        """(what, pid) for each pid the host signalled or probed, by its own numbering."""
        try:
            text = self.pidlog.read_text()
        except FileNotFoundError:
            return []
        return [
            (m.group(1), int(m.group(2)))
            for m in re.finditer(r"^(\S+) (-?\d+) by \d+$", text, re.MULTILINE)
        ]


def unit_cgroups() -> set[Path]:
    """The ``farro.*`` unit cgroups beside this process's own (where hosts make theirs)."""
    where = procs.containment().cgroup_dir
    return set(where.glob("farro.*")) if where is not None else set()


def remove_dead_units(before: set[Path]) -> None:
    """Remove the empty unit cgroups the (now dead) hosts left.

    A host killed whole leaves its units' cgroups empty, and nothing of a dead pid
    namespace comes back to reap them; rmdir only ever removes an empty cgroup.
    """
    for cgroup in unit_cgroups() - before:
        with contextlib.suppress(OSError):
            cgroup.rmdir()


def _state(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rindex(b")") + 2 :].split()[0].decode()


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def load(root: Root, job_id: str) -> Envelope | None:
    try:
        return job.load(root, job_id)
    except FarroError:
        return None  # mid-move: look again


def transitions(root: Root, job_id: str) -> list[dict[str, Any]]:
    return [r for r in audit.read(root, job_id) if r.get("event") == "transition"]
