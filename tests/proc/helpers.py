"""Spawning real child processes (tests/proc/child.py) and checking a root on disk.

Nothing here sleeps and hopes: children announce each step on stdout and the
test waits for that line with a deadline; processes are reaped with timeouts.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import DEADLINE_S
from support import wait_until as wait_until  # for the tests here

from farro_core import audit
from farro_core.envelope import Lifecycle, load_lifecycle, load_prompt
from farro_core.root import QUEUES, Root
from farro_core.transitions import QUEUE_DIR

CHILD = Path(__file__).with_name("child.py")
PYTHON = sys.executable


def child_env(crash_at: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    if crash_at is not None:
        env["FARRO_CRASH_AT"] = crash_at
    return env


class Child:
    """A running child.py with line-oriented, deadline-bounded reads of its stdout."""

    def __init__(self, root: Root, *args: str, crash_at: str | None = None) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            [PYTHON, str(CHILD), str(root.path), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(crash_at),
        )
        self._buf = b""
        self.lines: list[str] = []  # every line read so far

    @property
    def pid(self) -> int:
        return self.proc.pid

    def readline(self, timeout: float = DEADLINE_S) -> str:
        """The next stdout line; fails the test on EOF or when the deadline passes."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"child {self.args} said nothing for {timeout}s")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(
                    f"child {self.args} ended (rc={self.proc.wait(timeout)}) "
                    f"without a line; stderr:\n{self.stderr_text()}"
                )
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        text = line.decode()
        self.lines.append(text)
        return text

    def expect(self, prefix: str, timeout: float = DEADLINE_S) -> str:
        """Read the next line, which must start with ``prefix``; return the rest."""
        line = self.readline(timeout)
        assert line.startswith(prefix), f"child {self.args}: expected {prefix!r}, got {line!r}"
        return line[len(prefix) :].strip()

    def expect_json(self, prefix: str, timeout: float = DEADLINE_S) -> dict[str, Any]:
        data = json.loads(self.expect(prefix, timeout))
        assert isinstance(data, dict)
        return data

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def finish(self, timeout: float = DEADLINE_S) -> int:
        """Close stdin, drain stdout into :attr:`lines`, reap; return the exit code."""
        rest, err = self.proc.communicate(timeout=timeout)
        self._stderr = err
        data = self._buf + rest
        self._buf = b""
        self.lines += [ln for ln in data.decode().split("\n") if ln]
        return self.proc.returncode

    def stderr_text(self) -> str:
        err = getattr(self, "_stderr", None)
        if err is None and self.proc.poll() is not None and self.proc.stderr is not None:
            err = self._stderr = self.proc.stderr.read()
        return (err or b"").decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL (works on a stopped process too) and reap."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=DEADLINE_S)

    def close(self) -> None:
        """Teardown: never leave a child behind, whatever the test did."""
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with suppress(OSError):
                    stream.close()


@contextmanager
def children() -> Iterator[list[Child]]:
    """Collect the children a test starts; all are killed and reaped on the way out."""
    started: list[Child] = []
    try:
        yield started
    finally:
        for c in started:
            c.close()


def run_child(
    root: Root, *args: str, crash_at: str | None = None, timeout: float = DEADLINE_S
) -> subprocess.CompletedProcess[str]:
    """Run child.py to completion (stdin closed) and return what it did."""
    return subprocess.run(
        [PYTHON, str(CHILD), str(root.path), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=child_env(crash_at),
        timeout=timeout,
    )


def release_together(kids: Iterable[Child]) -> None:
    """A start barrier: wait until every child said ``ready``, then let them all go."""
    kids = list(kids)
    for c in kids:
        c.expect("ready")
    for c in kids:
        c.send("go")


def process_state(pid: int) -> str:
    """The one-letter state from /proc/PID/stat (R, S, T for stopped, Z ...)."""
    raw = Path(f"/proc/{pid}/stat").read_bytes()
    return raw[raw.rindex(b")") + 2 :].split()[0].decode()


# ---------------------------------------------------------------- checking a root


@dataclass(frozen=True)
class OnDisk:
    queue: str
    path: Path
    lifecycle: Lifecycle
    job_bytes: bytes
    prompt_bytes: bytes


def scan(root: Root) -> dict[str, OnDisk]:
    """Every job in the queues, checked against the spec's invariants.

    Each job dir is a real directory holding a job.json and a prompt.json that
    both parse (no torn file) and name the job; the queue it sits in is the one its
    status names; no id is in two queues; no temp file of a write is left behind.
    """
    found: dict[str, OnDisk] = {}
    for q in QUEUES:
        for entry in os.scandir(root.path / q):
            path = Path(entry.path)
            assert entry.is_dir(follow_symlinks=False), f"{q}/{entry.name} is not a real dir"
            names = os.listdir(path)
            assert not [n for n in names if ".tmp." in n], f"temp files left in {q}/{entry.name}"
            job_bytes = (path / "job.json").read_bytes()
            prompt_bytes = (path / "prompt.json").read_bytes()
            lc = load_lifecycle(job_bytes, f"{q}/{entry.name}/job.json")
            prompt = load_prompt(prompt_bytes, f"{q}/{entry.name}/prompt.json")
            assert lc.id == prompt.id == entry.name
            assert QUEUE_DIR[lc.status] == q, f"{entry.name} is {lc.status} but sits in {q}/"
            twice = entry.name in found and found[entry.name].queue
            assert not twice, f"{entry.name} is in {twice}/ and {q}/"
            found[entry.name] = OnDisk(q, path, lc, job_bytes, prompt_bytes)
    return found


def audit_lines(root: Root) -> list[dict[str, Any]]:
    """Every audit record; each line must be whole JSON (appends are single writes)."""
    try:
        raw = root.audit_file.read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.splitlines()
    records = [json.loads(line) for line in lines]
    assert records == list(audit.read(root))
    return records


def audited_revisions(root: Root, job_id: str) -> set[int]:
    return {r["revision"] for r in audit_lines(root) if r["job"] == job_id}


def assert_fully_audited(root: Root, job_id: str, revision: int) -> None:
    """Every revision 1..revision of the job has an audit line (a transition or recovered)."""
    missing = set(range(1, revision + 1)) - audited_revisions(root, job_id)
    assert not missing, f"revisions {sorted(missing)} of {job_id} are not in the audit log"


def backdate(path: Path, seconds: float) -> None:
    """Make ``path`` look ``seconds`` old, as a crash long ago would have left it."""
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
