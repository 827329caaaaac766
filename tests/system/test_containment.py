"""Containment with real processes and signals: nothing an agent, a check or the planner
starts outlives it, however it ends (normal end, `farro kill`, timeout, kill -9 of its
worker or manager, then reaped by the next worker or manager on the host).

Every agent, check and planner here starts a ``setsid`` child, a double-forked
grandchild and a ``nohup`` child, each of which would otherwise sleep for minutes.
Both mechanisms run: ``auto`` (cgroup v2 on this machine) and ``fallback``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from support import wait_for, wait_until

from farro_core import operations
from farro_core import procs as units
from farro_core.api import submit
from farro_core.planner import PlannerError, run_planner
from farro_core.root import Root
from farro_core.settings import Settings
from farro_core.transitions import Status

from .helpers import DEADLINE_S, PYTHON, Headless, child_env, make_root, status_is

NAMES = ("leader", "setsid", "double", "nohup")
PLAN = '[{"prompt": "planned", "agent": ["true"]}]'


def escaper(d: Path, then: str, *, per_run: bool = False) -> str:
    """Shell text that leaves three escapees behind, records every pid, then runs ``then``.

    ``per_run``: the pids go to ``d/<leader pid>/``, so a second run does not overwrite them.
    """
    where = f"{d}/$$" if per_run else str(d)
    return (
        f"D={where}; export D; mkdir -p $D; echo $$ > $D/leader.pid; "
        "setsid sh -c 'echo $$ > $D/setsid.tmp; mv $D/setsid.tmp $D/setsid.pid; "
        "exec sleep 300' & "
        "sh -c '(sleep 300 & echo $! > $D/double.tmp; mv $D/double.tmp $D/double.pid) &'; "
        "nohup sleep 300 > /dev/null 2>&1 & echo $! > $D/nohup.pid; "
        "while [ ! -e $D/setsid.pid ] || [ ! -e $D/double.pid ]; do sleep 0.01; done; "
        f"{then}"
    )


def alive(pid: int) -> bool:
    """Running (a zombie is dead: it only waits to be reaped by its parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return False
    return raw[raw.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X")


def pids_of(d: Path) -> dict[str, int]:
    wait_until(lambda: all((d / f"{n}.pid").exists() for n in NAMES), f"every pid in {d}")
    return {n: int((d / f"{n}.pid").read_text()) for n in NAMES}


def all_gone(pids: dict[str, int], what: str) -> None:
    wait_until(
        lambda: not [n for n, p in pids.items() if alive(p)],
        f"{what}: {[n for n, p in pids.items() if alive(p)]} still alive",
    )


@pytest.fixture
def leftovers() -> Iterator[list[int]]:
    """Pids a test saw; whatever happens, none outlives the test."""
    seen: list[int] = []
    yield seen
    for pid in seen:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def headless(root: Root, log: Path, procs_: list[Headless], *args: str) -> Headless:
    h = Headless(root, log, *args)
    procs_.append(h)
    return h


def toml(mode: str, planner: str) -> str:
    return f"containment = {json.dumps(mode)}\nplanner = {json.dumps(planner)}\n"


def test_cgroup_v2_is_what_this_machine_offers() -> None:
    """The suite must exercise the mechanism that really works here: cgroup v2 (CI: root)."""
    got = units.containment()
    assert got.mechanism == "cgroup", got.detail
    assert units.containment("fallback").mechanism == "fallback"


@pytest.mark.parametrize("mode", ["auto", "fallback"])
def test_every_ending_kills_every_escapee(
    tmp_path: Path, procs: list[Headless], leftovers: list[int], mode: str
) -> None:
    d = tmp_path / "pids"
    planner = escaper(d / "planner", f"echo '{PLAN}'")
    root = make_root(tmp_path / "root", agent="true", extra=toml(mode, planner))
    jobs = {
        "agent-ends": submit(root, "a", agent=escaper(d / "agent-ends", "exit 0")),
        "agent-killed": submit(root, "b", agent=escaper(d / "agent-killed", "sleep 300")),
        "agent-timeout": submit(
            root, "c", agent=escaper(d / "agent-timeout", "sleep 300"), timeout_s=1, max_attempts=1
        ),
        "check-ends": submit(
            root, "d", rubric=[{"id": "c", "check": escaper(d / "check-ends", "exit 0")}]
        ),
        "check-killed": submit(
            root, "e", rubric=[{"id": "c", "check": escaper(d / "check-killed", "sleep 300")}]
        ),
        "check-timeout": submit(
            root,
            "f",
            rubric=[
                {"id": "c", "check": escaper(d / "check-timeout", "sleep 300"), "timeout_s": 1}
            ],
        ),
    }
    (root.inbox / "goal.json.tmp").write_text(json.dumps({"goal": "- one"}))
    os.rename(root.inbox / "goal.json.tmp", root.inbox / "goal.json")
    h = headless(root, tmp_path / "h.log", procs, "--workers", str(len(jobs)))
    pids = {name: pids_of(d / name) for name in [*jobs, "planner"]}
    leftovers.extend(p for group in pids.values() for p in group.values())
    for name in ("agent-killed", "check-killed"):
        out = operations.kill(root, jobs[name].id, by="tester", wait_s=DEADLINE_S)
        assert out.status == "killed"
    expected = {
        "agent-ends": Status.SUCCEEDED,
        "agent-timeout": Status.FAILED,
        "check-ends": Status.SUCCEEDED,
        "check-timeout": Status.FAILED,
    }
    for name, status in expected.items():
        got = wait_for(partial(status_is, root, jobs[name].id, status), f"{name} {status}")
        assert got.lifecycle.result is not None
    wait_until(lambda: (root.inbox / "accepted" / "goal.json").exists(), "the goal accepted")
    for name, group in pids.items():
        all_gone(group, name)
    mechanism = "cgroup" if mode == "auto" else "fallback"
    assert (
        json.loads(next(root.workers_dir.glob("*.json")).read_text())["containment"]["mechanism"]
        == mechanism
    )
    h.signal(signal.SIGTERM)
    assert h.wait() == 0, h.log()


WORKER_ONLY = (
    "import sys, threading\n"
    "from farro_core.root import Root\n"
    "from farro_core.system import System\n"
    "s = System(Root.open(sys.argv[1]), workers=1, manager=False)\n"
    "s.start(); print('started', flush=True)\n"
    "sys.stdin.read(); s.stop()\n"
)


@pytest.mark.parametrize("mode", ["auto", "fallback"])
@pytest.mark.parametrize("next_one", ["worker", "manager"])
def test_kill_9_of_the_worker_then_the_next_worker_or_manager_reaps(
    tmp_path: Path, procs: list[Headless], leftovers: list[int], mode: str, next_one: str
) -> None:
    d = tmp_path / "pids"
    planner = escaper(d / "planner", "sleep 300", per_run=True)
    root = make_root(tmp_path / "root", agent="true", extra=toml(mode, planner))
    submit(root, "a", agent=escaper(d / "agent", "sleep 300"))
    submit(root, "b", rubric=[{"id": "c", "check": escaper(d / "check", "sleep 300")}])
    (root.inbox / "goal.json").write_text(json.dumps({"goal": "- one"}))
    a = headless(root, tmp_path / "a.log", procs, "--workers", "2")
    wait_until(lambda: (d / "planner").exists() and any((d / "planner").iterdir()), "a planner")
    (first,) = (d / "planner").iterdir()
    pids = {"agent": pids_of(d / "agent"), "check": pids_of(d / "check"), "planner": pids_of(first)}
    leftovers.extend(p for group in pids.values() for p in group.values())
    a.proc.send_signal(signal.SIGKILL)
    a.wait()
    escapees = {
        f"{name} {n}": p for name, group in pids.items() for n, p in group.items() if n != "leader"
    }
    assert all(alive(p) for p in escapees.values()), "nothing reaps them before the next one"
    if next_one == "manager":
        b = headless(root, tmp_path / "b.log", procs, "--workers", "0")
        all_gone(escapees, "after the next manager started")
        # the goal is still in inbox/: the new manager plans it again; its stop (SIGTERM)
        # cancels that planner, and the planner's escapees go with it
        wait_until(lambda: len(list((d / "planner").iterdir())) == 2, "the second planner")
        (second,) = set((d / "planner").iterdir()) - {first}
        again = pids_of(second)
        leftovers.extend(again.values())
        b.signal(signal.SIGTERM)
        assert b.wait() == 0, b.log()
        all_gone(again, "after the manager stopped mid-plan")
    else:
        w = subprocess.Popen(
            [PYTHON, "-c", WORKER_ONLY, str(root.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
        )
        try:
            assert w.stdout is not None and w.stdout.readline() == b"started\n"
            all_gone(escapees, "after the next worker started")
        finally:
            w.communicate(b"", timeout=DEADLINE_S)
        assert w.returncode == 0


UNIT_THEN_DIE = (
    "import os, subprocess, sys\n"
    "from farro_core import procs\n"
    "u = procs.Unit('attempt', sys.argv[1])\n"
    "p = u.popen(['sleep', '300'], dict(os.environ),\n"
    "            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(p.pid, flush=True)\n"
    "os.kill(os.getpid(), 9)\n"
)


@pytest.mark.parametrize("mode", ["auto", "fallback"])
def test_a_dead_worker_nobody_waited_for_is_dead(leftovers: list[int], mode: str) -> None:
    """Killed with -9, a worker stays a zombie until its parent waits for it, and a
    container's init may never do so: its units must be reaped all the same."""
    with subprocess.Popen(
        [PYTHON, "-c", UNIT_THEN_DIE, mode], stdout=subprocess.PIPE, env=child_env()
    ) as owner:  # waited for on the way out, and only then
        assert owner.stdout is not None
        agent = int(owner.stdout.readline())
        leftovers.append(agent)
        wait_until(lambda: not alive(owner.pid), "the owner dead (and not waited for)")
        assert os.path.exists(f"/proc/{owner.pid}")  # a zombie: its start time still there
        assert alive(agent)
        units.reap_orphans()
        all_gone({"agent": agent}, "after reap_orphans")


PLANNER_TIMEOUT = (
    "import sys\n"
    "from farro_core.planner import PlannerError, run_planner\n"
    "from farro_core.settings import Settings\n"
    "try:\n"
    "    run_planner(sys.argv[1], 'g', timeout_s=0.5,"
    " settings=Settings(containment=sys.argv[2], kill_grace_s=0.2))\n"
    "except PlannerError as exc:\n"
    "    print(exc)\n"
)


@pytest.mark.parametrize("mode", ["auto", "fallback"])
def test_a_planner_that_times_out_takes_its_escapees_with_it(
    tmp_path: Path, leftovers: list[int], mode: str
) -> None:
    d = tmp_path / "pids"
    planner = escaper(d, "sleep 300")
    if mode == "auto":  # in this process: cgroups leave no subreaper behind in pytest
        with pytest.raises(PlannerError, match=r"timed out after 0\.5 s"):
            run_planner(planner, "g", timeout_s=0.5, settings=Settings(kill_grace_s=0.2))
    else:
        out = subprocess.run(
            [PYTHON, "-c", PLANNER_TIMEOUT, planner, mode],
            capture_output=True,
            text=True,
            timeout=DEADLINE_S,
            env=child_env(),
        )
        assert "timed out after 0.5 s" in out.stdout, out.stderr
    pids = pids_of(d)
    leftovers.extend(pids.values())
    all_gone(pids, "after the planner timed out")


def test_a_unit_record_from_disk_is_checked_before_use(tmp_path: Path) -> None:
    """A record naming a cgroup that is not its token's is never killed."""
    victim = subprocess.Popen(["sleep", "300"])
    try:
        where = units.containment().cgroup_dir
        assert where is not None
        assert not units.kill_recorded({"token": "bad token", "cgroup": str(where)})
        assert not units.kill_recorded({"token": "1.1.2.3", "cgroup": str(where)})
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("token", ["4026531836.1234.99.1", "4026531836.5.1234.99.1"])
def test_a_recorded_unit_is_ended_whatever_token_version_wrote_it(token: str) -> None:
    """A record of this boot written before tokens named their namespace's start
    (four parts) still ends its unit: an upgrade must not strand a running agent."""
    where = units.containment().cgroup_dir
    assert where is not None, "this machine offers cgroup v2 (CI runs on the same kind)"
    cgroup = where / f"farro.{token}"
    os.mkdir(cgroup, 0o755)
    victim = units._spawn_into(cgroup, ["sleep", "300"], os.environ)
    try:
        wait_until(lambda: units._cgroup_procs(cgroup), "the process in its cgroup")
        assert units.kill_recorded({"token": token, "cgroup": str(cgroup)})
        assert victim.wait(timeout=DEADLINE_S) == -signal.SIGKILL
        assert not cgroup.exists()
    finally:
        victim.kill()
        victim.wait()
        with contextlib.suppress(OSError):
            cgroup.rmdir()


CLEARED_SCRIPT = (
    "env -i sleep 300 & echo $! > D/insession.pid; "
    # the pid is written once the child is in its own session; only then does the leader exit
    "env -i setsid /bin/sh -c 'echo $$ > D/setsid.tmp; exec sleep 300' & "
    "while [ ! -s D/setsid.tmp ]; do sleep 0.01; done; mv D/setsid.tmp D/setsid.pid"
)
CLEARED_ENV = (
    "import os, subprocess, sys\n"
    "from farro_core import procs\n"
    "unit = procs.Unit('t', sys.argv[1])\n"
    "quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "proc = unit.popen(['/bin/sh', '-c', sys.argv[2]], dict(os.environ), **quiet)\n"
    "procs.wait_exit(proc, 30)\n"
    "print(procs.end(unit, proc, None))\n"
)


@pytest.mark.parametrize("mode", ["auto", "fallback"])
def test_a_process_that_clears_its_environment(
    tmp_path: Path, leftovers: list[int], mode: str
) -> None:
    """cgroup: nothing escapes. Fallback: the run's session still finds it; leaving the
    session *and* clearing the environment escapes (documented)."""
    out = subprocess.run(
        [PYTHON, "-c", CLEARED_ENV, mode, CLEARED_SCRIPT.replace("D/", f"{tmp_path}/")],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        env=child_env(),
    )
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stderr
    insession = int((tmp_path / "insession.pid").read_text())
    setsid = int((tmp_path / "setsid.pid").read_text())
    leftovers.extend([insession, setsid])
    all_gone({"in session": insession}, "env -i in the run's session")
    if mode == "auto":
        all_gone({"setsid": setsid}, "env -i setsid under cgroup")
    else:
        assert alive(setsid), "the fallback's known escape (README: Containment)"


def test_a_hung_workers_attempt_is_ended_by_the_next_attempt(
    tmp_path: Path, leftovers: list[int]
) -> None:
    """The owner is alive (stopped, say), so no orphan sweep touches it: the record does."""
    from farro_core import job, runner
    from farro_core.identity import WorkerIdentity
    from farro_core.transitions import Actor
    from farro_core.worker import Worker

    root = make_root(tmp_path / "root", agent="true")
    env = submit(root, "x")
    claimed = job.claim(root, WorkerIdentity.current("hung"))
    assert claimed is not None
    d = tmp_path / "pids"
    unit = units.Unit("attempt")
    proc = unit.popen(["/bin/sh", "-c", escaper(d, "exit 0")], dict(os.environ))
    pids = pids_of(d)
    leftovers.extend(pids.values())
    (claimed.path / "logs").mkdir(exist_ok=True)
    runner.record_agent(claimed, proc.pid, unit)
    proc.wait()  # the agent itself is done; its escapees run on
    job.release_claim(claimed)
    job.commit(claimed, Status.STALE, Actor.WATCHDOG, "no heartbeat")
    operations.requeue(root, env.id)
    out = Worker(root, "next").run_once()
    assert out is not None and out.status == "succeeded" and out.lifecycle.attempt == 2
    all_gone({k: v for k, v in pids.items() if k != "leader"}, "after the next attempt")
    assert "killed the agent of attempt 1" in (out.path / "logs" / "attempt-2.log").read_text()
    unit.close()


@pytest.mark.parametrize(("mode", "mechanism"), [("auto", "cgroup"), ("fallback", "fallback")])
def test_stats_shows_the_mechanism_in_force(tmp_path: Path, mode: str, mechanism: str) -> None:
    root = make_root(tmp_path / "root", agent="true", extra=f'containment = "{mode}"\n')
    farro = [PYTHON, "-m", "farro_core.cli", "stats", "--root", str(root.path)]
    text = subprocess.run(farro, capture_output=True, text=True, env=child_env(), check=True)
    line = [ln for ln in text.stdout.splitlines() if ln.startswith("contain ")]
    assert line and line[0].split()[1] == mechanism, text.stdout
    data = json.loads(
        subprocess.run(
            [*farro, "--json"], capture_output=True, text=True, env=child_env(), check=True
        ).stdout
    )
    assert data["containment"]["mechanism"] == mechanism


@pytest.mark.parametrize("namespace", ["ours", "another", "recycled"])
def test_a_unit_of_another_pid_namespace_is_never_reaped(namespace: str) -> None:
    """A dead owner's unit is reaped only when the owner's pid is ours to look up.

    cgroups are shared across pid namespaces (containers; tests/hosts' "hosts" on one
    kernel), so a pid from another one must never be judged dead from here: that
    killed every healthy job of the other hosts in the multi-host test. "recycled" is
    a dead namespace whose inode the kernel gave to ours: the unit it left (same
    inode, another pid 1) probed pids of ours in the multi-host test.
    """
    where = units.containment().cgroup_dir
    assert where is not None, "this machine offers cgroup v2 (CI runs on the same kind)"
    inode, init_start = units._pid_namespace().split(".")
    ns = {
        "ours": f"{inode}.{init_start}",
        "another": f"{int(inode) + 1}.{init_start}",
        "recycled": f"{inode}.{int(init_start) + 1}",
    }[namespace]
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid whose owner is gone, as a worker killed with -9 leaves
    token = f"{ns}.{dead.pid}.1.1"
    cgroup = where / f"farro.{token}"
    os.mkdir(cgroup, 0o755)
    victim = units._spawn_into(cgroup, ["sleep", "300"], os.environ)
    try:
        wait_until(lambda: units._cgroup_procs(cgroup), "the process in its cgroup")
        reaped = units.reap_orphans()
        if namespace == "ours":
            assert token in reaped
            assert victim.wait(timeout=DEADLINE_S) == -signal.SIGKILL
        else:
            assert token not in reaped
            assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
        if cgroup.exists():  # reaping removes the cgroup it emptied
            wait_until(lambda: not units._cgroup_procs(cgroup), "the cgroup empty")
            os.rmdir(cgroup)


def test_a_unit_whose_leader_cannot_start_leaves_no_cgroup(tmp_path: Path) -> None:
    """Every caller gives up on a unit that could not start: it must not leave its cgroup."""
    unit = units.Unit("check")
    assert unit.cgroup is not None and unit.cgroup.is_dir()
    with pytest.raises(OSError):
        unit.popen([str(tmp_path / "no-such-program")], dict(os.environ))
    assert not unit.cgroup.exists()
