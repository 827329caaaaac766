"""Liveness with real processes and real signals: kill -9, SIGSTOP, manager failover."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import pytest
from support import wait_for, wait_until

from farro_core import job, operations
from farro_core.api import submit
from farro_core.manager import current_manager, read_holder
from farro_core.system import System
from farro_core.transitions import Status

from .helpers import Headless, load, make_root, status_is, terminal_commits, transitions


def test_kill9_mid_job_goes_stale_then_is_requeued_and_finishes(
    tmp_path: Path, procs: list[Headless], systems: list[System]
) -> None:
    root = make_root(tmp_path / "root", stale=3.0, requeue=True)
    a = Headless(root, tmp_path / "a.log", "--workers", "1")
    procs.append(a)
    a.wait_log("manager role taken")
    env = submit(root, "slow on its first attempt")
    running = wait_for(lambda: status_is(root, env.id, Status.IN_PROGRESS), "A claims the job")
    assert running.lifecycle.claim is not None and running.lifecycle.claim.pid == a.pid
    # The claim's audit line follows its job.json write: killing A before it lands would
    # kill it mid-claim, a different crash point (tests/proc covers those).
    wait_until(lambda: transitions(root, env.id), "the claim's audit line")

    here = System(root, workers=1)  # the test's own System: a hot standby until A dies
    systems.append(here)
    here.start()
    wait_until(lambda: here.snapshot().manager.role == "elsewhere", "standby sees A")
    assert here.snapshot().manager.holder == f"{read_holder(root).host} pid {a.pid}"  # type: ignore[union-attr]

    a.signal(signal.SIGKILL)
    assert a.wait() == -signal.SIGKILL
    stale = wait_for(
        lambda: next((t for t in transitions(root, env.id) if t["to"] == "stale"), None),
        "the watchdog marks the job stale",
    )
    # stale as its claim lock freed with A, not after stale_after_s of heartbeat silence
    assert stale["reason"] == "worker gone"
    assert here.snapshot().manager.role == "here"

    done = wait_for(lambda: status_is(root, env.id, Status.SUCCEEDED), "the job finishes")
    assert done.lifecycle.attempt == 2
    wait_until(lambda: terminal_commits(root, env.id), "the audit line of the last commit")
    moves = [(t["from"], t["to"], t["actor"]) for t in transitions(root, env.id)]
    assert moves == [
        ("queued", "in-progress", "agent"),
        ("in-progress", "stale", "watchdog"),
        ("stale", "queued", "manager"),
        ("queued", "in-progress", "agent"),
        ("in-progress", "succeeded", "agent"),
    ]
    assert len(terminal_commits(root, env.id)) == 1


def test_sigstop_goes_stale_by_heartbeat_and_the_late_commit_is_refused(
    tmp_path: Path, procs: list[Headless], systems: list[System]
) -> None:
    # attempt 1 says it started, then sleeps 2 s: its agent exits while the worker is
    # stopped, so on SIGCONT the worker holds a finished attempt it would commit if
    # nothing fenced it
    started = tmp_path / "attempt-1-started"
    agent = f'if [ "$FARRO_ATTEMPT" = 1 ]; then touch {started}; sleep 2; fi; echo done'
    root = make_root(tmp_path / "root", agent=agent, stale=2.0, requeue=True)
    manager = System(root, workers=0)  # the watchdog lives here, not in the stopped process
    systems.append(manager)
    manager.start()
    wait_until(lambda: manager.snapshot().manager.role == "here", "the test is the manager")
    a = Headless(root, tmp_path / "a.log", "--workers", "1")
    procs.append(a)
    env = submit(root, "hung worker")
    running = wait_for(lambda: status_is(root, env.id, Status.IN_PROGRESS), "A claims the job")
    assert running.lifecycle.claim is not None and running.lifecycle.claim.pid == a.pid
    wait_until(started.exists, "A's agent runs")

    a.signal(signal.SIGSTOP)
    stale = wait_for(lambda: status_is(root, env.id, Status.STALE), "stale by heartbeat")
    assert stale.lifecycle.reason.startswith("no heartbeat for")
    # stale because its heartbeat stopped, not before: on the file system's clock, the stale
    # mark's job.json was written over stale_after_s after the stopped worker's last beat
    beat = (stale.path / ".claim-1.lock").stat().st_mtime
    marked = (stale.path / job.JOB).stat().st_mtime
    assert marked - beat > root.settings.stale_after_s, (beat, marked)
    # hung, not gone: the claim lock is held, so auto_requeue_stale leaves it to an operator
    assert not job.claim_is_free(root, stale.path, env.id, 1)
    swept = manager.snapshot().manager.last_sweep
    wait_until(
        lambda: (
            (s := manager.snapshot().manager.last_sweep) is not None
            and swept is not None
            and (s - swept).total_seconds() > 3 * root.settings.watchdog_interval_s
        ),
        "a few more watchdog sweeps",
    )
    assert status_is(root, env.id, Status.STALE) is not None

    operations.requeue(root, env.id, by="test")
    b = System(root, workers=1, manager=False)
    systems.append(b)
    b.start()
    done = wait_for(lambda: status_is(root, env.id, Status.SUCCEEDED), "B finishes attempt 2")
    wait_until(lambda: terminal_commits(root, env.id), "the audit line of B's commit")
    assert done.lifecycle.claim is not None and done.lifecycle.claim.worker in b.worker_names

    a.signal(signal.SIGCONT)
    a.wait_log("nothing recorded")  # the worker's own account of being fenced
    wait_until(lambda: job.claim_is_free(root, root.locate(env.id), env.id, 1), "A drops its claim")
    after = load(root, env.id)
    assert after is not None and after.lifecycle == done.lifecycle  # untouched by A
    ends = terminal_commits(root, env.id)
    assert [(e["to"], e["attempt"]) for e in ends] == [("succeeded", 2)]
    a_name = running.lifecycle.claim.worker
    assert [t["to"] for t in transitions(root, env.id) if t["worker"] == a_name] == ["in-progress"]
    a.signal(signal.SIGTERM)
    assert a.wait() == 0


def test_two_processes_one_manager_and_failover_after_kill9(
    tmp_path: Path, procs: list[Headless]
) -> None:
    root = make_root(tmp_path / "root", stale=30.0)  # stale only by "worker gone" here
    p1 = Headless(root, tmp_path / "p1.log", "--workers", "1")
    procs.append(p1)
    p1.wait_log("manager role taken")
    env = submit(root, "runs in p1")
    wait_for(lambda: status_is(root, env.id, Status.IN_PROGRESS), "p1 claims the job")
    p2 = Headless(root, tmp_path / "p2.log", "--workers", "1")
    procs.append(p2)
    p2.wait_log(f"standby: {read_holder(root).host} pid {p1.pid} is the manager")  # type: ignore[union-attr]
    holder = current_manager(root)
    assert holder is not None and holder.pid == p1.pid
    assert "manager role taken" not in p2.log()

    p1.signal(signal.SIGKILL)
    assert p1.wait() == -signal.SIGKILL
    # how fast the standby takes over is a benchmark (bench_workers); here, that it does,
    # once the holder is gone, and that its watchdog then finds p1's job orphaned
    p2.wait_log("manager role taken")
    holder = current_manager(root)
    assert holder is not None and holder.pid == p2.pid
    stale = wait_for(lambda: status_is(root, env.id, Status.STALE), "p2's watchdog")
    assert stale.lifecycle.reason == "worker gone"  # not 30 s of silence: the claim lock freed
    p2.signal(signal.SIGTERM)
    assert p2.wait() == 0
    assert status_is(root, env.id, Status.STALE) is not None  # stale stays for an operator


def test_a_hung_manager_is_reported_and_replaced_once_it_stops(
    tmp_path: Path, procs: list[Headless], systems: list[System], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="farro.manager")
    root = make_root(tmp_path / "root", stale=1.0)
    m = Headless(root, tmp_path / "m.log", "--workers", "0")
    procs.append(m)
    m.wait_log("manager role taken")
    standby = System(root, workers=0)
    systems.append(standby)
    standby.start()
    wait_until(lambda: standby.snapshot().manager.role == "elsewhere", "standby")

    m.signal(signal.SIGSTOP)
    wait_until(lambda: "has not swept" in caplog.text, "the standby says the manager hangs")
    assert standby.snapshot().manager.role == "elsewhere"  # a held lock cannot be taken
    m.signal(signal.SIGCONT)
    m.signal(signal.SIGTERM)
    assert m.wait() == 0
    wait_until(lambda: standby.snapshot().manager.role == "here", "takes over")


def test_three_workers_only_processes_share_one_root(tmp_path: Path, procs: list[Headless]) -> None:
    """The normal way to scale: every job done exactly once, one manager among them."""
    root = make_root(tmp_path / "root", agent="sleep 0.2; echo ok")
    for i in range(3):
        procs.append(Headless(root, tmp_path / f"p{i}.log", "--workers", "2"))
    for p in procs:
        p.wait_log("started:")
    request = root.inbox / ".batch.json.tmp"
    request.write_text(json.dumps({"jobs": [{"prompt": f"job {i}"} for i in range(40)]}))
    request.rename(root.inbox / "batch.json")
    wait_until(lambda: len(root.ids("done")) == 40, "all 40 jobs done", 60)
    ids = root.ids("done")
    assert all(status_is(root, i, Status.SUCCEEDED) for i in ids)
    # a commit moves the job to done/ before it appends the audit line
    wait_until(lambda: all(terminal_commits(root, i) for i in ids), "the last audit lines")
    assert [len(terminal_commits(root, i)) for i in ids] == [1] * 40
    pids = {p.pid for p in procs}
    ran_in = {load(root, i).lifecycle.claim.pid for i in ids}  # type: ignore[union-attr]
    assert ran_in <= pids and len(ran_in) >= 2, "the work was shared"
    managers = [p for p in procs if "manager role taken" in p.log()]
    assert len(managers) == 1
    for p in procs:
        p.signal(signal.SIGTERM)
    assert [p.wait() for p in procs] == [0, 0, 0]
