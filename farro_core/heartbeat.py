"""The heartbeat of a running attempt, and the fencing check that rides on it.

Every beat touches the attempt's claim lock file (the watchdog reads its mtime) and
checks that the job is still this attempt's: still in active/, at the revision the
worker claimed it at. When it is not, :attr:`Heartbeat.lost` says why, and the
runner, the rubric and the worker stop acting on a job that moved on
(docs/spec.md §5.6).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from farro_core import fs, job
from farro_core.envelope import Envelope
from farro_core.errors import Corrupt

log = logging.getLogger("farro.worker")


class Heartbeat:
    """Touch the attempt's heartbeat every ``interval`` for the whole attempt.

    Beaten by a thread of its own (a :class:`Beater`), so a slow workspace set-up, a
    long ``git add`` or a rubric check never looks like a hung worker. Each beat also
    checks that the job is still ours; :attr:`lost` then says why not, and the
    runner, the rubric and the worker act on it. A worker passes its own
    :class:`Beater`, which lives as long as the worker: no thread is started and
    joined per job.
    """

    def __init__(
        self,
        env: Envelope,
        interval: float,
        beater: Beater | None = None,
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        self.env = env
        self.interval = interval
        #: run by the beating thread after each beat while the job is ours (the worker
        #: writes its status file there, see Worker._set)
        self.on_beat = on_beat
        self.lost: str | None = None
        self._own = beater is None
        self._beater = beater if beater is not None else Beater(f"farro-heartbeat-{env.id}")
        self._beating = threading.Lock()  # held for the length of one beat

    def start(self) -> Heartbeat:
        self._beater.add(self)
        return self

    def stop(self) -> None:
        """No beat runs once this returns (one under way is waited for)."""
        self._beater.remove(self)
        if self._own:
            self._beater.close()

    def check(self) -> str | None:
        """Beat now, and say why the job is no longer ours (None while it is)."""
        if self.lost is None:
            self.lost = lost_reason(self.env)
        return self.lost


class Beater:
    """One thread that beats the heartbeats given to it, each every its ``interval``.

    A worker keeps one for its life (it runs one attempt at a time, so a slow beat of
    one job never delays another's); :meth:`close` ends the thread.
    """

    def __init__(self, name: str = "farro-heartbeat") -> None:
        self._name = name
        self._cond = threading.Condition()
        self._due: dict[Heartbeat, float] = {}  # the next beat of each, monotonic
        self._thread: threading.Thread | None = None

    def add(self, beat: Heartbeat) -> None:
        with self._cond:
            if self._thread is None:
                thread = threading.Thread(target=self._run, daemon=True, name=self._name)
                thread.start()  # may raise ("can't start new thread"): nothing recorded yet
                self._thread = thread
            self._due[beat] = time.monotonic() + beat.interval
            self._cond.notify()

    def remove(self, beat: Heartbeat) -> None:
        with self._cond:
            self._due.pop(beat, None)
        with beat._beating:  # a beat under way ends first; no later one starts (see _run)
            pass

    def close(self) -> None:
        """End the thread (a later :meth:`add` starts another)."""
        with self._cond:
            self._due.clear()
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                if self._thread is not me:
                    return  # closed (and maybe another thread took over)
                now = time.monotonic()
                due = [b for b, at in self._due.items() if at <= now]
                if not due:
                    wait = min(self._due.values(), default=now + 3600.0) - now
                    self._cond.wait(wait)
                    continue
            for beat in due:
                self._beat(beat)

    def _beat(self, beat: Heartbeat) -> None:
        with beat._beating:
            with self._cond:
                if beat not in self._due:
                    return  # stopped meanwhile: no beat after stop()
            try:
                lost = beat.check()
                if lost is None and beat.on_beat is not None:
                    beat.on_beat()
            except Exception:
                log.exception("%s: heartbeat failed", beat.env.id)
                lost = None
            with self._cond:
                if beat in self._due:
                    if lost is None:
                        self._due[beat] = time.monotonic() + beat.interval
                    else:
                        del self._due[beat]  # the job is not ours: no more beats


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
