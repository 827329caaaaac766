"""Real `farro-tui --workers-only` processes, and deadline-bounded waits on a root.

Nothing here sleeps and hopes: every wait polls a condition on disk (or in a
process's log) until a deadline (support.wait_until), and every process a test
starts is killed and reaped on the way out, whatever the test did.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

from support import DEADLINE_S as DEADLINE_S
from support import wait_for as wait_for
from support import wait_until as wait_until

from farro_core import audit, job
from farro_core.envelope import Envelope
from farro_core.errors import FarroError
from farro_core.root import Root
from farro_core.transitions import TERMINAL, Status

PYTHON = sys.executable

#: timings that make every liveness rule show within a couple of seconds
FAST_TOML = """\
heartbeat_s = 0.2
stale_after_s = {stale}
watchdog_interval_s = 0.2
rescan_s = 0.5
shutdown_grace_s = 0.5
kill_grace_s = 0.5
retry_backoff_s = 0.2
auto_requeue_stale = {requeue}
agent = {agent}
"""

#: an agent that is slow on its first attempt and quick after: a kill mid-job is certain
SLOW_FIRST = 'if [ "$FARRO_ATTEMPT" = 1 ]; then sleep 60; fi; echo finished attempt $FARRO_ATTEMPT'

T = TypeVar("T")


def make_root(
    path: Path,
    *,
    agent: str = SLOW_FIRST,
    stale: float = 2.0,
    requeue: bool = False,
    extra: str = "",
) -> Root:
    Root.init(path)
    toml = FAST_TOML.format(stale=stale, requeue=str(requeue).lower(), agent=json.dumps(agent))
    toml += extra
    (path / "farro.toml").write_text(toml)
    return Root.open(path)


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}


class Headless:
    """One ``farro-tui --workers-only`` process; its log goes to a file we can poll."""

    def __init__(
        self,
        root: Root,
        log: Path,
        *args: str,
        python_flags: tuple[str, ...] = (),
        entry: tuple[str, ...] = ("-m", "farro_tui.main"),
    ):
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in close()
        argv = [PYTHON, *python_flags, *entry, "--workers-only"]
        self.proc = subprocess.Popen(
            [*argv, "--root", str(root.path), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout: float = DEADLINE_S) -> None:
        wait_until(
            lambda: text in self.log() or self.proc.poll() is not None,
            f"{text!r} in the log of pid {self.pid}",
            timeout,
        )
        assert text in self.log(), f"pid {self.pid} ended (rc={self.proc.poll()}):\n{self.log()}"

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = DEADLINE_S) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)  # works on a stopped process too
        self.proc.wait(DEADLINE_S)
        self._log.close()


@contextmanager
def processes() -> Iterator[list[Headless]]:
    started: list[Headless] = []
    try:
        yield started
    finally:
        for p in started:
            p.close()


def load(root: Root, job_id: str) -> Envelope | None:
    try:
        return job.load(root, job_id)
    except FarroError:
        return None  # mid-move: look again


def status_is(root: Root, job_id: str, *statuses: Status) -> Envelope | None:
    env = load(root, job_id)
    return env if env is not None and env.status in statuses else None


def transitions(root: Root, job_id: str) -> list[dict[str, Any]]:
    return [r for r in audit.read(root, job_id) if r.get("event") == "transition"]


def terminal_commits(root: Root, job_id: str) -> list[dict[str, Any]]:
    return [r for r in transitions(root, job_id) if r["to"] in {s.value for s in TERMINAL}]


def nothing_in_progress(root: Root) -> bool:
    for job_id in root.ids("active") + root.ids("incoming"):
        env = load(root, job_id)
        if env is not None and env.status is Status.IN_PROGRESS:
            return False
    return True
