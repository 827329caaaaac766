"""The heartbeat of a running attempt, and the fencing check that rides on it.

Every beat touches the job's ``heartbeat`` file (the watchdog reads its age) and
checks that the job is still this attempt's: still in active/, at the revision the
worker claimed it at. When it is not, :attr:`Heartbeat.lost` says why, and the
runner, the rubric and the worker stop acting on a job that moved on
(docs/spec.md §5.6).
"""

from __future__ import annotations

import logging
import os
import threading

from farro_core import fs, job
from farro_core.envelope import Envelope
from farro_core.errors import Corrupt

log = logging.getLogger("farro.worker")


class Heartbeat:
    """Touch the job's heartbeat every ``interval`` for the whole attempt.

    A thread of its own, so a slow workspace set-up, a long ``git add`` or a
    rubric check never looks like a hung worker. Each beat also checks that the
    job is still ours; :attr:`lost` then says why not, and the runner, the
    rubric and the worker act on it.
    """

    def __init__(self, env: Envelope, interval: float) -> None:
        self.env = env
        self.interval = interval
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"farro-heartbeat-{env.id}"
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> str | None:
        """Beat now, and say why the job is no longer ours (None while it is)."""
        if self.lost is None:
            self.lost = lost_reason(self.env)
        return self.lost

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if self.check() is not None:
                    return
            except Exception:
                log.exception("%s: heartbeat failed", self.env.id)


def lost_reason(env: Envelope) -> str | None:
    """Heartbeat, and say why the job is no longer ours (None while it is)."""
    if not job.heartbeat(env):
        return "the job left active/ (requeued or moved by someone else)"
    try:
        dfd = fs.open_dir(env.path)
    except FileNotFoundError:
        return "the job left active/ (requeued or moved by someone else)"
    except OSError:
        return None
    try:
        lc = job.read_lifecycle(dfd, env.id)
    except Corrupt as exc:
        log.warning("%s: cannot read job.json while running: %s", env.id, exc)
        return None
    finally:
        os.close(dfd)
    if lc.revision != env.lifecycle.revision:
        return (
            f"fenced: the job moved on (now {lc.status} at revision {lc.revision}: "
            f"{lc.reason}), so this attempt's commit would be refused"
        )
    return None
