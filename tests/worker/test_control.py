"""Control of a running attempt: kill, timeout, retries, stop, pause, wake, fencing."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from support import wait_for, wait_until

from farro_core import audit, heartbeat, job, operations, runner, workspace
from farro_core.clock import utcnow
from farro_core.envelope import Envelope
from farro_core.root import Root
from farro_core.settings import Settings
from farro_core.transitions import Actor, Status
from farro_core.worker import Worker, WorkerStatus, stop_all

from .helpers import WORKERS, current_log, load, make_worker, pid_alive, sh, status_is, submit

# writes its pid and a background child's pid into the job dir, then sleeps
SLEEPER = sh(
    'sleep 30 & echo $! > "$FARRO_JOB_DIR/child.pid"; echo $$ > "$FARRO_JOB_DIR/agent.pid"; '
    "echo started; wait"
)


def pids(env: Envelope) -> list[int]:
    return [int((env.path / f"{n}.pid").read_text()) for n in ("agent", "child")]


def said(root: Root, job_id: str, line: str) -> bool:
    """The agent printed ``line``: a whole line, since the log starts with the command."""
    return line in current_log(root, job_id).splitlines()


def started(root: Root, job_id: str) -> Envelope:
    """The running job once its agent wrote both pid files (whole lines: the agent echoes
    'started' after them, but the runner's own log notes can say 'started' first)."""

    def both_pids() -> Envelope | None:
        env = load(root, job_id)
        for name in ("agent", "child"):
            try:
                if not (env.path / f"{name}.pid").read_text().endswith("\n"):
                    return None
            except FileNotFoundError:
                return None
        return env

    return wait_for(both_pids, "the agent and its child to write their pids")


def test_control_kill_ends_the_attempt_by_sigterm(wroot: Root) -> None:
    """The kill request, not the job's timeout nor its own end, stops the agent: SIGTERM
    to its group, which it obeys, so no SIGKILL is needed. (How fast: benchmarks.)"""
    env = submit(wroot, "long", agent=SLEEPER, timeout_s=3600)
    make_worker(wroot).start()
    running = started(wroot, env.id)
    agent_pid, child_pid = pids(running)
    out = operations.kill(wroot, env.id, by="tester", wait_s=60)
    assert out.status == "killed" and out.lifecycle.reason.startswith("killed by tester")
    res = out.lifecycle.result
    assert res is not None and res.killed and not res.timed_out
    # the shell died of its SIGTERM, or (its child signalled first) exited with its child's
    assert res.exit_code in (-signal.SIGTERM, 128 + signal.SIGTERM), res
    wait_until(lambda: not pid_alive(agent_pid) and not pid_alive(child_pid), "the group dead")
    log = current_log(wroot, env.id)
    assert "kill requested by tester: SIGTERM to every process of the agent" in log
    assert "SIGKILL" not in log


def test_kill_request_for_another_attempt_is_ignored(wroot: Root) -> None:
    env = submit(wroot, "x", agent=sh("sleep 0.6"))
    claimed = job.claim(wroot, make_worker(wroot).identity)
    assert claimed is not None
    stale_request = claimed.model_copy(
        update={"lifecycle": claimed.lifecycle.model_copy(update={"attempt": 7})}
    )
    job.request_kill(stale_request, "late operator")
    job.release_claim(claimed)
    # hand it to a worker: it must not honour a request naming attempt 7
    job.commit(claimed, "stale", Actor.WATCHDOG, "test")
    operations.requeue(wroot, env.id)
    out = make_worker(wroot, "w2").run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason


def test_timeout_term_then_kill_then_retry_with_backoff(wroot: Root) -> None:
    # on TERM it says so and lives on: five more rounds of its loop (several runner ticks,
    # well inside the 2 s grace) show the grace was given before the SIGKILL
    agent = sh(
        "trap 'echo got TERM, ignoring; n=0' TERM; echo $$ > \"$FARRO_JOB_DIR/agent.pid\"; "
        'while :; do sleep 0.05; if [ -n "$n" ]; then n=$((n + 1)); '
        'if [ "$n" = 5 ]; then echo alive after TERM; fi; fi; done'
    )
    env = submit(wroot, "hang", agent=agent, timeout_s=0.5, max_attempts=2)
    out = make_worker(wroot, retry_backoff_s=60, kill_grace_s=2).run_once()
    assert out is not None and out.status == "queued", out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.timed_out and res.exit_code == -9 and not res.killed
    assert out.lifecycle.not_before is not None
    assert out.lifecycle.not_before > utcnow() + timedelta(seconds=30)
    assert "timed out" in out.lifecycle.reason
    lines = current_log(wroot, env.id).splitlines()  # whole lines: the command says them too
    term = lines.index("[farro] timed out after 0.5s: SIGTERM to every process of the agent")
    kill = lines.index("[farro] the agent outlived the 2s grace: SIGKILL")
    assert term < lines.index("got TERM, ignoring") < lines.index("alive after TERM") < kill
    assert not pid_alive(int((out.path / "agent.pid").read_text()))
    # not claimable before not_before
    assert make_worker(wroot, "w2").run_once() is None
    assert load(wroot, env.id).status == "queued"


def test_demo_agent_hang_marker_times_out(wroot: Root) -> None:
    submit(wroot, "[fast] [hang] wait forever", timeout_s=0.5, max_attempts=1)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed"
    assert out.lifecycle.result is not None and out.lifecycle.result.timed_out


def test_backoff_honoured_then_budget_exhausted(wroot: Root) -> None:
    env = submit(wroot, "fail", agent=sh("echo nope; exit 3"), max_attempts=3)
    w = make_worker(wroot, retry_backoff_s=0.4)
    first = w.run_once()
    assert first is not None and first.status == "queued"
    assert "retry in 0.4s" in first.lifecycle.reason
    nb1 = first.lifecycle.not_before
    assert nb1 is not None
    # not claimable an instant before not_before (the claim's clock given, not hoped for)
    assert job.claim(wroot, w.identity, now=nb1 - timedelta(milliseconds=1)) is None
    wait_until(lambda: utcnow() >= nb1, "utcnow() >= nb1")
    second = wait_until(w.run_once, "the retry")
    assert second.lifecycle.attempt == 2 and second.status == "queued"
    assert "retry in 0.8s" in second.lifecycle.reason  # doubled
    nb2 = second.lifecycle.not_before
    assert nb2 is not None
    assert job.claim(wroot, w.identity, now=nb2 - timedelta(milliseconds=1)) is None
    third = wait_until(w.run_once, "the last retry")
    assert third.lifecycle.attempt == 3 and third.status == "failed"
    assert (
        "agent exited 3" in third.lifecycle.reason and "no attempts left" in third.lifecycle.reason
    )
    assert third.lifecycle.result is not None and third.lifecycle.result.exit_code == 3
    assert third.path == wroot.done / env.id


def test_stop_release_requeues_without_using_an_attempt(wroot: Root) -> None:
    env = submit(wroot, "long", agent=SLEEPER, max_attempts=1)
    w = make_worker(wroot)
    w.start()
    running = started(wroot, env.id)
    assert w.status().state == "busy" and w.status().job == env.id
    agent_pid, child_pid = pids(running)
    w.stop(release=True, grace_s=0.2)
    assert w.status().state == "stopped"
    out = load(wroot, env.id)
    assert out.status == "queued" and out.path == wroot.incoming / env.id
    assert out.lifecycle.attempt == 1 and out.lifecycle.attempt_base == 1
    assert out.lifecycle.attempts_left(out.prompt.max_attempts) == 1
    assert out.lifecycle.claim is None and out.lifecycle.not_before is None
    assert out.lifecycle.reason.startswith("released: worker stopping")
    assert not list(wroot.active.iterdir())
    assert not pid_alive(agent_pid) and not pid_alive(child_pid)
    # the release ended the agent (its sleep would have let it succeed)
    log = current_log(wroot, env.id)
    assert "the worker is stopping: releasing the job: SIGTERM" in log
    assert "agent killed by SIGTERM" in log
    # and the released job is claimable again at once, by anyone
    again = job.claim(wroot, make_worker(wroot, "w2").identity)
    assert again is not None and again.lifecycle.attempt == 2


def test_stop_without_release_waits_for_the_attempt(wroot: Root) -> None:
    env = submit(wroot, "short", agent=sh("echo started; sleep 1; echo finished"))
    w = make_worker(wroot)
    w.start()
    wait_until(lambda: said(wroot, env.id, "started"), "the agent started")
    w.stop(release=False, grace_s=0.1)
    out = load(wroot, env.id)
    assert out.status == "succeeded", out.lifecycle.reason
    assert "finished" in current_log(wroot, env.id)
    assert w.status().state == "stopped" and w.status().jobs_done == 1


def woken(w: Worker) -> None:
    """Wake ``w`` and wait until its loop took the wake (only the loop clears the flag)."""
    w.wake()
    wait_until(lambda: not w._wake.is_set(), "the worker's loop to take the wake")


def test_pause_and_resume(wroot: Root) -> None:
    w = make_worker(wroot, rescan_s=60)  # no rescan of its own: only wakes drive its loop
    w.start()
    w.pause()
    wait_until(lambda: w.status().state == "paused", what="paused")
    env = submit(wroot, "x", agent=["true"])
    woken(w)  # the wake a paused worker must not claim on
    woken(w)  # its loop went round once more after it: a claim would be committed by now
    assert load(wroot, env.id).status == "queued"
    w.resume()
    wait_until(lambda: status_is(wroot, env.id, "succeeded"), "the job after resume")


def test_pause_lets_the_running_attempt_finish(wroot: Root) -> None:
    env = submit(wroot, "x", agent=sh("echo started; sleep 0.5"))
    other = submit(wroot, "y", agent=["true"])
    w = make_worker(wroot)
    w.start()
    wait_until(lambda: said(wroot, env.id, "started"), "the agent started")
    w.pause()
    wait_until(lambda: status_is(wroot, env.id, "succeeded"), "success")
    wait_until(lambda: w.status().state == "paused", 'w.status().state == "paused"')
    assert load(wroot, other.id).status == "queued"


def test_wake_claims_without_waiting_for_the_rescan(wroot: Root) -> None:
    first = submit(wroot, "first", agent=["true"])
    w = make_worker(wroot, rescan_s=60)
    w.start()
    wait_until(lambda: status_is(wroot, first.id, "succeeded"), "the first job", 30)
    # after a job the loop looks once more, finds nothing, says idle, waits its 60 s
    wait_until(lambda: w.status().state == "idle" and w.status().jobs_done == 1, "idle", 30)
    env = submit(wroot, "x", agent=["true"])
    w.wake()
    # well inside the 60 s: only the wake can have sent the worker to look again
    wait_until(lambda: status_is(wroot, env.id, "succeeded"), "the job, on the wake", 30)


def test_rescan_finds_jobs_without_a_wake(wroot: Root) -> None:
    w = make_worker(wroot, rescan_s=0.2)
    w.start()
    env = submit(wroot, "x", agent=["true"])
    wait_until(lambda: status_is(wroot, env.id, "succeeded"), "success")


def _in_thread(w: Worker) -> tuple[threading.Thread, list[Envelope | None]]:
    box: list[Envelope | None] = []
    t = threading.Thread(target=lambda: box.append(w.run_once()), daemon=True)
    t.start()
    return t, box


def test_fenced_after_stale_and_requeue(wroot: Root) -> None:
    agent = sh(
        'if [ "$FARRO_ATTEMPT" = 1 ]; then '
        'sleep 30 & echo $! > "$FARRO_JOB_DIR/child.pid"; echo $$ > "$FARRO_JOB_DIR/agent.pid"; '
        "echo started; wait; fi; echo attempt $FARRO_ATTEMPT done"
    )
    env = submit(wroot, "fence me", agent=agent)
    w = make_worker(wroot)
    t, box = _in_thread(w)
    running = started(wroot, env.id)
    agent_pid, child_pid = pids(running)
    stale = job.commit(running, Status.STALE, Actor.WATCHDOG, "no heartbeat for 30 s (test)")
    requeued = operations.requeue(wroot, env.id, by="tester")
    t.join(60)  # a failure bound only
    assert not t.is_alive() and box == [None]
    wait_until(lambda: not pid_alive(agent_pid) and not pid_alive(child_pid), "agent killed")
    now = load(wroot, env.id)
    assert now.status == "queued" and now.lifecycle.revision == requeued.lifecycle.revision
    assert now.lifecycle.result is None and now.path == wroot.incoming / env.id
    assert stale.lifecycle.revision < requeued.lifecycle.revision
    assert "attempt dropped" in (now.path / "logs" / "attempt-1.log").read_text()
    # the claim lock of attempt 1 was released
    assert not job.holds_claim(wroot, env.id, 1)
    out = w.run_once()
    assert out is not None and out.status == "succeeded" and out.lifecycle.attempt == 2
    assert out.lifecycle.result is not None and out.lifecycle.result.attempt == 2
    transitions = [(r["from"], r["to"], r["actor"]) for r in job_audit(wroot, env.id)]
    assert transitions == [
        (None, "queued", "creator"),
        ("queued", "in-progress", "agent"),
        ("in-progress", "stale", "watchdog"),
        ("stale", "queued", "operator"),
        ("queued", "in-progress", "agent"),
        ("in-progress", "succeeded", "agent"),
    ]


def test_stale_while_running_kills_agent_and_records_nothing(wroot: Root) -> None:
    """The SIGSTOP case seen from the worker: marked stale, not (yet) requeued."""
    env = submit(wroot, "x", agent=SLEEPER)
    w = make_worker(wroot)
    t, box = _in_thread(w)
    running = started(wroot, env.id)
    agent_pid, _ = pids(running)
    stale = job.commit(running, Status.STALE, Actor.WATCHDOG, "no heartbeat (test)")
    t.join(60)  # a failure bound only
    assert box == [None]
    now = load(wroot, env.id)
    assert now.status == "stale" and now.lifecycle.revision == stale.lifecycle.revision
    assert not pid_alive(agent_pid)
    assert job.claim_is_free(wroot, now.path, env.id, 1)


def test_commit_refused_when_fenced_after_the_last_check(
    wroot: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the job moves on after the runner last looked, the commit is refused."""
    monkeypatch.setattr(heartbeat, "lost_reason", lambda env: None)
    env = submit(
        wroot,
        "x",
        agent=sh('echo started; while [ ! -e "$FARRO_JOB_DIR/go" ]; do sleep 0.02; done'),
    )
    w = make_worker(wroot)
    t, box = _in_thread(w)
    running = wait_for(
        lambda: load(wroot, env.id) if said(wroot, env.id, "started") else None,
        "the agent started",
    )
    stale = job.commit(running, Status.STALE, Actor.WATCHDOG, "test")
    Path(stale.path / "go").touch()
    t.join(60)  # a failure bound only
    assert box == [None]
    now = load(wroot, env.id)
    assert now.status == "stale" and now.lifecycle.result is None
    assert "commit refused" in (now.path / "logs" / "attempt-1.log").read_text()


def job_audit(root: Root, job_id: str) -> list[dict[str, object]]:
    return list(audit.read(root, job_id))


def test_stop_during_a_long_rubric_check_releases(wroot: Root) -> None:
    checks = [{"id": "slow", "check": 'echo checking > "$FARRO_JOB_DIR/checking"; sleep 30'}]
    env = submit(wroot, "x", agent=["true"], rubric=checks, max_attempts=1)
    w = make_worker(wroot)
    w.start()
    wait_until(lambda: (load(wroot, env.id).path / "checking").exists(), what="the check")
    w.stop(release=True, grace_s=0.2)
    out = load(wroot, env.id)
    assert out.status == "queued" and out.lifecycle.attempt_base == 1
    assert "interrupted" in current_log(wroot, env.id)


def test_kill_during_a_rubric_check(wroot: Root) -> None:
    checks = [{"id": "slow", "check": 'echo checking > "$FARRO_JOB_DIR/checking"; sleep 30'}]
    env = submit(wroot, "x", agent=["true"], rubric=checks)
    make_worker(wroot).start()
    wait_until(lambda: (load(wroot, env.id).path / "checking").exists(), what="the check")
    out = operations.kill(wroot, env.id, wait_s=60)
    assert out.status == "killed", out.lifecycle.reason  # its 30 s check would have passed


def test_stop_all_shares_one_grace(wroot: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not 3 x grace: the first worker waits out the grace its attempt did not use, and
    the others, stopped once it has passed, release theirs at once (a grace of 0)."""
    envs = [submit(wroot, f"job {i}", agent=SLEEPER) for i in range(3)]
    ws = [make_worker(wroot, f"w{i}") for i in range(3)]
    for w in ws:
        w.start()
    for env in envs:
        started(wroot, env.id)
    graces: list[float | None] = []
    real_stop = Worker.stop

    def stop(self: Worker, *, release: bool = True, grace_s: float | None = None) -> None:
        graces.append(grace_s)
        real_stop(self, release=release, grace_s=grace_s)

    monkeypatch.setattr(Worker, "stop", stop)
    stop_all(ws, release=True, grace_s=0.3)
    first, *rest = graces
    assert first is not None and 0 < first <= 0.3 and rest == [0.0, 0.0], graces
    assert all(load(wroot, e.id).status == "queued" for e in envs)
    for e in envs:  # released, their agents killed: their sleeps would have succeeded
        assert "releasing the job: SIGTERM" in current_log(wroot, e.id)
    assert all(w.status().state == "stopped" for w in ws)


def test_an_internal_error_counts_as_a_failed_attempt(
    wroot: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(root: Root, env: Envelope, **_: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(workspace, "prepare", broken)
    env = submit(wroot, "x", agent=["true"], max_attempts=2)
    assert make_worker(wroot).run_once() is None
    out = load(wroot, env.id)
    assert out.status == "queued" and "worker error: disk on fire" in out.lifecycle.reason
    assert not job.holds_claim(wroot, env.id, 1)


def test_heartbeat_goes_on_during_a_slow_rubric_check(wroot: Root) -> None:
    """A slow but healthy worker is never mistaken for a hung one."""
    check = (
        'echo checking > "$FARRO_JOB_DIR/checking"; '
        'while [ ! -e "$FARRO_JOB_DIR/go" ]; do sleep 0.05; done'
    )
    checks = [{"id": "slow", "check": check}]
    env = submit(wroot, "x", agent=["true"], rubric=checks)
    make_worker(wroot).start()
    path = wait_for(
        lambda: p.parent if (p := load(wroot, env.id).path / "checking").exists() else None,
        '(p := load(wroot, env.id).path / "checking").exists() and p.parent',
    )
    first = (path / ".claim-1.lock").stat().st_mtime_ns
    # the check runs until the test says go: the beat comes while it runs, however slowly
    wait_until(lambda: (path / ".claim-1.lock").stat().st_mtime_ns > first, "a later heartbeat")
    (path / "go").touch()
    wait_until(lambda: status_is(wroot, env.id, "succeeded"), "success")


def test_fenced_during_a_rubric_check(wroot: Root) -> None:
    checks = [{"id": "slow", "check": 'echo checking > "$FARRO_JOB_DIR/checking"; sleep 30'}]
    env = submit(wroot, "x", agent=["true"], rubric=checks)
    w = make_worker(wroot)
    t, box = _in_thread(w)
    path = wait_until(
        lambda: (p := load(wroot, env.id).path / "checking").exists() and p.parent,
        '(p := load(wroot, env.id).path / "checking").exists() and p.parent',
    )
    job.commit(load(wroot, env.id), Status.STALE, Actor.WATCHDOG, "test")
    assert path.exists()
    t.join(60)  # a failure bound only
    assert not t.is_alive() and box == [None]
    assert load(wroot, env.id).status == "stale"


def test_a_later_attempt_kills_the_agent_that_outlived_its_worker(wroot: Root) -> None:
    """A worker killed with -9 leaves its agent running; the next attempt ends it."""
    env = submit(wroot, "x", agent=["true"])
    claimed = job.claim(wroot, make_worker(wroot, "dead").identity)
    assert claimed is not None
    orphan = subprocess.Popen(["sleep", "30"], start_new_session=True)
    (claimed.path / "logs").mkdir()
    runner.record_agent(claimed, orphan.pid)
    job.release_claim(claimed)  # the worker "dies"
    job.commit(claimed, Status.STALE, Actor.WATCHDOG, "worker gone")
    operations.requeue(wroot, env.id)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded" and out.lifecycle.attempt == 2
    assert orphan.wait(timeout=60) == -signal.SIGKILL
    log = (out.path / "logs" / "attempt-2.log").read_text()
    assert f"killed the agent of attempt 1 (pid {orphan.pid})" in log


def test_a_recycled_pid_is_never_signalled(wroot: Root, tmp_path: Path) -> None:
    submit(wroot, "x", agent=["true"])
    claimed = job.claim(wroot, make_worker(wroot).identity)
    assert claimed is not None
    (claimed.path / "logs").mkdir()
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        runner.record_agent(claimed, other.pid)
        rec = claimed.path / "logs" / "attempt-1.agent.json"
        body = json.loads(rec.read_text())
        # the same pid, but not the process that started then: a recycled pid
        rec.write_text(json.dumps({**body, "started_at": body["started_at"] - 1}))
        later = claimed.model_copy(
            update={"lifecycle": claimed.lifecycle.model_copy(update={"attempt": 2})}
        )
        sink = runner.AttemptLog(tmp_path / "x.log", 4096)
        runner.kill_leftovers(later, sink)
        sink.close()
        assert other.poll() is None and pid_alive(other.pid)
        assert "killed" not in (tmp_path / "x.log").read_text()
    finally:
        other.kill()
        other.wait()


class _Recording(Worker):
    """A worker that also notes each status it writes to run/workers/ (it still writes it)."""

    written: list[tuple[str, str | None]]

    def _write_status(self, st: WorkerStatus) -> None:
        self.written.append((st.state, st.job))
        super()._write_status(st)


def test_a_worker_going_from_job_to_job_writes_its_status_once_per_tick(wroot: Root) -> None:
    """Busy from job to job, the status file is rewritten at most once per heartbeat tick
    (each write makes and frees an inode); every change of state is written at once."""
    envs = [submit(wroot, f"job {i}", agent=["true"]) for i in range(3)]
    settings = Settings.model_validate(
        {**wroot.settings.model_dump(), "heartbeat_s": 600, "stale_after_s": 1200}
    )
    w = _Recording(wroot, "w-rec", settings=settings)
    w.written = []
    WORKERS.append(w)
    w.start()
    wait_until(lambda: w.status().state == "idle" and w.status().jobs_done == 3, "3 jobs done")
    # idle at start, busy on the first job, idle when the queue is empty: neither "idle"
    # between two jobs nor each next job within the tick
    first = min(envs, key=lambda e: (e.lifecycle.created_at, e.id)).id
    assert w.written == [("idle", None), ("busy", first), ("idle", None)]
    body = json.loads((wroot.workers_dir / "w-rec.json").read_text())
    assert body["state"] == "idle" and body["jobs_done"] == 3


def test_the_heartbeat_tick_writes_the_job_a_worker_went_on_to(wroot: Root, tmp_path: Path) -> None:
    """A job change left unwritten is written by the next beat, so a reader of run/workers/
    learns the job the worker runs within a tick."""
    go = tmp_path / "go"
    quick = submit(wroot, "quick", agent=["true"], priority=2)
    slow = submit(wroot, "slow", agent=sh(f'while [ ! -e "{go}" ]; do sleep 0.01; done'))
    w = _Recording(wroot, "w-tick", settings=wroot.settings.model_copy(update={"heartbeat_s": 0.2}))
    w.written = []
    WORKERS.append(w)
    w.start()
    path = wroot.workers_dir / "w-tick.json"
    wait_until(lambda: json.loads(path.read_text())["job"] == slow.id, "the file names the job")
    assert ("busy", quick.id) in w.written
    go.touch()
    wait_until(lambda: status_is(wroot, slow.id, "succeeded"), "the slow job done")


def _beat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("farro-heartbeat")]


def test_one_heartbeat_thread_serves_a_worker_from_job_to_job(wroot: Root, tmp_path: Path) -> None:
    """No thread is started (and joined) per job for the heartbeat; it still beats."""
    go = tmp_path / "go"
    hold = sh(f'echo started; while [ ! -e "{go}" ]; do sleep 0.01; done; rm -f "{go}"')
    envs = [submit(wroot, f"job {i}", agent=hold) for i in range(2)]
    w = make_worker(wroot, heartbeat_s=0.05, stale_after_s=30)
    w.start()
    seen = []
    for env in sorted(envs, key=lambda e: (e.lifecycle.created_at, e.id)):
        wait_until(lambda e=env: said(wroot, e.id, "started"), f"{env.id} started")
        beat = wroot.active / env.id / ".claim-1.lock"
        first = beat.stat().st_mtime_ns
        wait_until(lambda b=beat, f=first: b.stat().st_mtime_ns > f, "a heartbeat")
        seen.append([t for t in _beat_threads() if t.name.endswith(w.name)])
        go.touch()
        wait_until(lambda e=env: status_is(wroot, e.id, "succeeded"), f"{env.id} done")
    assert len(seen[0]) == 1 and seen[0] == seen[1]
    w.stop()
    assert not [t for t in _beat_threads() if t.name.endswith(w.name)]


def test_no_heartbeat_after_stop_returns(wroot: Root) -> None:
    """The shared beater keeps running other attempts' heartbeats: once it has beaten
    another one twice after ``stop()``, a beat of the stopped one would have shown."""
    envs = [submit(wroot, f"x{i}", agent=["true"]) for i in range(2)]
    ident = make_worker(wroot).identity
    running = [job.claim(wroot, ident) for _ in envs]
    assert all(r is not None for r in running)
    stopped_env, other_env = [r for r in running if r is not None]
    beater = heartbeat.Beater("farro-heartbeat-test")
    try:
        beat = heartbeat.Heartbeat(stopped_env, 0.01, beater).start()
        path = stopped_env.path / ".claim-1.lock"
        first = path.stat().st_mtime_ns
        wait_until(lambda: path.stat().st_mtime_ns > first, "a heartbeat")
        beat.stop()
        stopped = path.stat().st_mtime_ns
        other = heartbeat.Heartbeat(other_env, 0.01, beater).start()
        opath = other_env.path / ".claim-1.lock"
        for _ in range(2):
            mark = opath.stat().st_mtime_ns
            wait_until(lambda m=mark: opath.stat().st_mtime_ns > m, "the other job's heartbeat")
        other.stop()
        assert path.stat().st_mtime_ns == stopped
        assert beat.lost is None
    finally:
        beater.close()
        for r in (stopped_env, other_env):
            job.release_claim(r)
