"""The start of an attempt: the worker's status file, a hostile attempt log, a lost claim.

* An idle worker is visible in run/workers/ from the moment it starts.
* A planted symlink (or FIFO, or directory) as the attempt log is never written
  through: the attempt fails with a reason that says so, instead of breaking off
  with a traceback (or, for a FIFO, hanging the worker for ever in ``open``).
* A worker stopped (SIGSTOP) between its claim and the start of its attempt may
  find the job gone (requeued) or claimed again by another worker: it drops the
  attempt quietly, as fenced, writes nothing into the job and starts no agent.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest
from support import wait_until

from farro_core import heartbeat, job, operations
from farro_core.envelope import Envelope
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
from farro_core.transitions import Actor, Status

from .helpers import load, make_worker, sh, submit


def test_status_file_is_written_as_the_worker_starts(wroot: Root) -> None:
    w = make_worker(wroot, "w-idle")
    w.start()
    path = wroot.workers_dir / "w-idle.json"
    assert path.exists(), "an idle worker must be visible at once"
    assert json.loads(path.read_text())["state"] == "idle"


# ---------------------------------------------------------------- hostile attempt log


def _plant(env: Envelope, kind: str, outside: Path) -> Path:
    logs = env.path / "logs"
    if kind == "logs-dir-symlink":
        outside.mkdir()
        os.symlink(outside, logs)
        return outside / "attempt-1.log"
    logs.mkdir(mode=0o700)
    target = logs / "attempt-1.log"
    if kind == "symlink":
        outside.write_text("do not touch\n")
        os.symlink(outside, target)
    elif kind == "fifo":
        os.mkfifo(target, 0o600)
    elif kind == "directory":
        target.mkdir()
    return target


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "logs-dir-symlink"])
def test_a_planted_attempt_log_fails_the_attempt_with_a_clear_reason(
    wroot: Root, tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = submit(wroot, "x", agent=sh("echo agent ran > ran.txt"))
    outside = tmp_path / "outside"
    planted = _plant(env, kind, outside)
    before = outside.read_text() if kind == "symlink" else None
    w = make_worker(wroot)
    w.start()  # the worker's own thread: a hang in it must not hang the test
    try:
        done = wait_until(
            lambda: load(wroot, env.id).status not in (Status.QUEUED, Status.IN_PROGRESS),
            "the attempt to be judged",
        )
        assert done
    except BaseException:
        # a worker stuck opening the FIFO (the bug this guards against) is unblocked,
        # so the test can end; a judged job's directory may move to done/ meanwhile,
        # so only then: opening the FIFO after the wait raced that move
        if kind == "fifo":
            fifo = wroot.locate(env.id) / "logs" / "attempt-1.log"
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        raise
    after = load(wroot, env.id)
    assert after.status is Status.FAILED, after.lifecycle.reason
    reason = after.lifecycle.reason
    assert "attempt log" in reason and "refus" in reason, reason
    assert ("symlink" in reason) if "symlink" in kind else ("not a regular file" in reason)
    res = after.lifecycle.result
    assert res is not None and res.error is not None and "attempt log" in res.error
    assert not (after.path / "work" / "ran.txt").exists(), "no agent may run without a log"
    if kind == "symlink":
        assert outside.read_text() == before, "written through the symlink"
    if kind == "logs-dir-symlink":
        assert not planted.exists(), "written through the symlinked logs/"
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("farro")]
    assert not tracebacks, [r.getMessage() for r in tracebacks]


# ---------------------------------------------------------------- claim lost before the start


def _claimed_then_moved_on(root: Root, reclaim: bool) -> tuple[Envelope, Envelope | None]:
    """What a worker SIGSTOPped right after its claim finds when it resumes."""
    ours = job.claim(root, WorkerIdentity.current("w1"))
    assert ours is not None
    stale = job.commit(ours, Status.STALE, Actor.WATCHDOG, "no heartbeat for 31 s")
    operations.requeue(root, ours.id, by="operator")
    other = None
    if reclaim:
        other = job.claim(root, WorkerIdentity.current("w2"))
        assert other is not None and other.lifecycle.attempt == 2
    assert stale.lifecycle.revision > ours.lifecycle.revision
    return ours, other


@pytest.mark.parametrize("reclaim", [False, True], ids=["requeued", "claimed-again"])
def test_a_claim_lost_before_the_attempt_starts_is_dropped_quietly(
    wroot: Root, reclaim: bool, caplog: pytest.LogCaptureFixture
) -> None:
    env = submit(wroot, "x", agent=sh("echo $FARRO_ATTEMPT >> ran.txt"))
    ours, other = _claimed_then_moved_on(wroot, reclaim)
    before = load(wroot, env.id)
    w = make_worker(wroot)
    caplog.set_level(logging.INFO)
    result: list[Envelope | None] = []
    t = threading.Thread(target=lambda: result.append(w._process(ours)))
    t.start()
    t.join(30)
    assert not t.is_alive()
    assert result == [None], "a fenced attempt returns nothing"
    after = load(wroot, env.id)
    assert after.lifecycle == before.lifecycle, "the job moved on without us: untouched"
    assert not (after.path / "logs" / "attempt-1.log").exists(), "nothing written into it"
    assert not (after.path / "work" / "ran.txt").exists(), "no agent started"
    assert not job.holds_claim(wroot, env.id, 1), "our claim lock is given back"
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    assert any("dropped" in r.getMessage() for r in caplog.records)
    if other is not None:
        job.release_claim(other)


# ---------------------------------------------------------------- an error before the attempt


def test_an_error_starting_the_heartbeat_gives_the_claim_back(
    wroot: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``can't start new thread`` (or any error) as the attempt begins: the attempt is
    recorded as failed and retried, the claim lock is never kept for ever, and the
    worker goes on serving."""

    real_start = heartbeat.Heartbeat.start
    calls: list[int] = []

    def flaky_start(self: heartbeat.Heartbeat) -> heartbeat.Heartbeat:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("can't start new thread")
        return real_start(self)

    monkeypatch.setattr(heartbeat.Heartbeat, "start", flaky_start)
    env = submit(wroot, "x", agent=sh("true"), max_attempts=2)
    w = make_worker(wroot, retry_backoff_s=0)
    w.start()
    done = wait_until(lambda: load(wroot, env.id).status is Status.SUCCEEDED, "the retry", 30)
    assert done
    after = load(wroot, env.id)
    assert after.lifecycle.attempt == 2
    assert not job.holds_claim(wroot, env.id, 1)
    # the claim of attempt 2 is released right after its final commit, not before it
    wait_until(lambda: not job.holds_claim(wroot, env.id, 2), "attempt 2's claim released", 30)
