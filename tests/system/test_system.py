"""The System in one process: start, stop, restart, pause; and the --demo seeding."""

from __future__ import annotations

import json
import os
import subprocess
from functools import partial
from pathlib import Path

from support import wait_for, wait_until

from farro_core import demo, listing
from farro_core.api import submit
from farro_core.envelope import Envelope
from farro_core.root import Root
from farro_core.system import System
from farro_core.transitions import Status

from .helpers import (
    DEADLINE_S,
    PYTHON,
    child_env,
    make_root,
    nothing_in_progress,
    status_is,
)


def attempt_runs(root: Root, job_id: str, attempt: int) -> Envelope | None:
    env = status_is(root, job_id, Status.IN_PROGRESS)
    return env if env is not None and env.lifecycle.attempt == attempt else None


#: attempts 1 and 2 run "for ever"; attempt 3 finishes at once
THIRD_TIME_LUCKY = 'if [ "$FARRO_ATTEMPT" -ge 3 ]; then echo ok; else sleep 60; fi'


def test_start_stop_restart_in_one_process(tmp_path: Path, systems: list[System]) -> None:
    root = make_root(tmp_path / "root", agent=THIRD_TIME_LUCKY)
    system = System(root, workers=2)
    systems.append(system)
    assert not system.snapshot().running
    envs = [submit(root, f"job {i}") for i in range(2)]

    system.start()
    system.start()  # idempotent
    snap = system.snapshot()
    assert snap.running and len(snap.workers) == 2
    assert len({w.name for w in snap.workers}) == 2
    for env in envs:
        wait_for(partial(status_is, root, env.id, Status.IN_PROGRESS), "attempt 1 runs")
    wait_until(lambda: system.snapshot().manager.role == "here", "this System manages")
    wait_until(lambda: {w.state for w in system.snapshot().workers} == {"busy"}, "both busy")

    system.restart()  # releases both jobs, then claims them again: attempt 2
    for env in envs:
        wait_for(
            partial(attempt_runs, root, env.id, 2),
            "attempt 2 runs after the restart",
        )

    system.stop(release=True, grace_s=0.2)
    assert nothing_in_progress(root) and root.ids("active") == []
    snap = system.snapshot()
    assert not snap.running and snap.workers == ()
    assert snap.manager.role == "off" and snap.manager.holder is None  # nobody manages now
    for env in envs:
        back = status_is(root, env.id, Status.QUEUED)
        assert back is not None and back.lifecycle.attempt == 2

    system.start()  # the same object again: attempt 3 succeeds
    for env in envs:
        wait_for(partial(status_is, root, env.id, Status.SUCCEEDED), "attempt 3 finishes")
    system.stop()
    assert not system.running


def test_pause_stops_claiming_and_resume_starts_again(
    tmp_path: Path, systems: list[System]
) -> None:
    root = make_root(tmp_path / "root", agent="true")
    system = System(root, workers=1)
    systems.append(system)
    system.pause()  # before start: the workers start paused
    system.start()
    wait_until(lambda: [w.state for w in system.snapshot().workers] == ["paused"], "paused")
    assert system.paused and system.snapshot().paused
    env = submit(root, "waits for resume")
    status_file = root.workers_dir / f"{system.worker_names[0]}.json"
    wait_until(
        lambda: status_file.exists() and json.loads(status_file.read_text())["state"] == "paused",
        "the worker's status file says paused",
    )
    assert status_is(root, env.id, Status.QUEUED) is not None
    system.resume()
    wait_for(lambda: status_is(root, env.id, Status.SUCCEEDED), "resumed worker runs it")
    assert not system.paused


def test_a_system_without_manager_names_the_manager_elsewhere(
    tmp_path: Path, systems: list[System]
) -> None:
    root = make_root(tmp_path / "root", agent="true")
    first = System(root, workers=0)
    second = System(root, workers=0)  # same process, second System: a standby
    observer = System(root, workers=0, manager=False)
    systems += [first, second, observer]
    first.start()
    wait_until(lambda: first.snapshot().manager.role == "here", "first manages")
    second.start()
    wait_until(lambda: second.snapshot().manager.role == "elsewhere", "second stands by")
    observer.start()
    m = observer.snapshot().manager
    assert m.role == "off" and m.holder == first.snapshot().manager.holder
    assert m.since is not None

    first.stop()  # the role passes to the standby within about a second
    wait_until(lambda: second.snapshot().manager.role == "here", "second takes over")


def test_demo_seed_shows_every_status(tmp_path: Path, systems: list[System]) -> None:
    root = Root.init(tmp_path / "demo")
    seeded = demo.seed(root)
    assert (root.path / "farro.toml").exists() and (root.inbox / "demo-goal.json").exists()
    assert set(seeded) >= {"queued", "in-progress", "succeeded", "failed", "killed", "stale"}
    root = Root.open(root.path)
    system = System(root)
    systems.append(system)
    system.start()
    assert len(system.snapshot().workers) == 2  # from the demo farro.toml
    want = {"queued", "in-progress", "stale", "succeeded", "failed", "killed"}

    def shown() -> bool:
        rows = list(listing.scan(root))
        failed = [r for r in rows if r.status == "failed"]
        return want <= {r.status for r in rows} and len(failed) >= 2

    wait_until(shown, "every status on screen")
    rows = list(listing.scan(root))
    stale = [r for r in rows if r.status == "stale"]
    assert [r.reason for r in stale] == ["worker gone"]
    failed = {r.title for r in rows if r.status == "failed"}
    assert any("[escape]" in t for t in failed) and any("[fail]" in t for t in failed)
    wait_until(
        lambda: any(r.labels.get("goal") == "demo-goal.json" for r in listing.scan(root)),
        "the demo goal planned into jobs",
    )
    system.stop(release=True, grace_s=0)
    assert nothing_in_progress(root)


def test_file_events_wake_the_manager_and_the_workers(
    tmp_path: Path, systems: list[System]
) -> None:
    """With hour-long timers, only the watcher's hints can make this finish within the
    waits' failure bounds."""
    root = make_root(tmp_path / "root", agent="true", extra="")
    toml = (root.path / "farro.toml").read_text()
    toml = toml.replace("watchdog_interval_s = 0.2", "watchdog_interval_s = 3600")
    toml = toml.replace("rescan_s = 0.5", "rescan_s = 3600")
    (root.path / "farro.toml").write_text(toml)
    root = Root.open(root.path)
    system = System(root, workers=1)
    systems.append(system)
    system.start()
    wait_until(lambda: system.snapshot().manager.last_sweep is not None, "first sweep")
    wait_until(lambda: [w.state for w in system.snapshot().workers] == ["idle"], "idle worker")

    tmp = root.inbox / ".req.json.tmp"
    tmp.write_text(json.dumps({"prompt": "woken by an event"}))
    tmp.rename(root.inbox / "req.json")
    wait_until(lambda: (root.accepted / "req.json").exists(), "the manager ingests")
    [job_id] = [r.id for r in listing.scan(root)]
    wait_for(lambda: status_is(root, job_id, Status.SUCCEEDED), "the worker runs it")
    assert system.snapshot().manager.last_ingest == "accepted req.json: 1 job"


#: in a fresh process (nothing imported yet, as in farro-tui): start a System, list the
#: inodes of this process's inotify watches at once, stop; twice (a restart)
WATCHES_AT_START = """
import json, os, sys
from pathlib import Path
from farro_core.root import Root
from farro_core.system import System

def watched():
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        for line in info.splitlines():
            if line.startswith("inotify wd:"):
                inodes.add(int(dict(f.split(":", 1) for f in line.split()[1:])["ino"], 16))
    return sorted(inodes)

system = System(Root.open(sys.argv[1]), workers=1)
sys.setswitchinterval(1e-6)  # look at once, not after other threads had their 5 ms turns
seen = []
for _ in range(2):
    system.start()
    seen.append(watched())
    system.stop()
print(json.dumps(seen))
"""


def test_start_returns_with_the_file_watch_registered(tmp_path: Path) -> None:
    """An event made as soon as start() returns must wake someone: the watch is live."""
    root = make_root(tmp_path / "root", agent="true")
    out = subprocess.run(
        [PYTHON, "-c", WATCHES_AT_START, str(root.path)],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=DEADLINE_S,
    )
    assert out.returncode == 0, out.stderr
    wanted = {os.stat(root.incoming).st_ino, os.stat(root.inbox).st_ino}
    first, after_restart = json.loads(out.stdout)
    assert wanted <= set(first)
    assert wanted <= set(after_restart)


def _gone(pid: int) -> bool:
    """No such process, or only its zombie left."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_stop_kills_a_running_planner_and_leaves_its_file_in_the_inbox(
    tmp_path: Path, systems: list[System]
) -> None:
    started, pidfile = tmp_path / "planner-started", tmp_path / "planner.pid"
    planner = json.dumps(f"echo $$ > {pidfile}; touch {started}; exec sleep 60")
    root = make_root(tmp_path / "root", agent="true", extra=f"planner = {planner}\n")
    system = System(root, workers=0)
    systems.append(system)
    system.start()
    (root.inbox / "goal.json").write_text(json.dumps({"goal": "- a"}))
    wait_until(started.exists, "the planner runs")
    pid = int(pidfile.read_text())
    system.stop()
    # killed, not waited for: its sleep is not over, and its goal was neither taken nor refused
    assert _gone(pid)
    assert (root.inbox / "goal.json").exists()
    assert os.listdir(root.rejected) == [] and os.listdir(root.accepted) == []
