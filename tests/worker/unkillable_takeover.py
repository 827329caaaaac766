"""A worker takes over a slot whose dead worker's agent it cannot kill (run by test_pool).

Run as pid 1 of a pid namespace of its own (``unshare --pid --fork --mount-proc``): the
agent's token then names that namespace, so the workers other test suites start on this
host never judge its owner dead and reap it first (they reap every unit on the host
whose owner died), and everything it starts dies with it.

The agent runs as uid 65534 and the taking worker has no CAP_KILL: the kernel refuses
its SIGKILL (EPERM), as a process stuck on a hung network file system outlives one; it
may still read the agent's environment (CAP_SYS_PTRACE), so it finds the unit.

``main ROOT FIRST_JOB NEXT_JOB ELSEWHERE [take|repair]`` prints one JSON line: the
agent's pid, the slot it was started in, whether it is alive after the takeover, what
the taking worker printed (the path the next job got; with ``repair``, what ``fsck
--repair`` did of the orphan) and its stderr. ELSEWHERE, when not empty, is where the
agent runs (its ``FARRO_WORKSPACE`` and working directory) instead of its slot.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support

from support import wait_until

from farro_core import pool, procs, runner, workspace
from farro_core.job import load
from farro_core.root import Root

NO_CAP_KILL = ["setpriv", "--bounding-set=-kill", "--inh-caps=-kill"]
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def dead_worker(root_dir: str, job_id: str, elsewhere: str) -> None:
    """Start the job's agent in its slot, print its pid and the slot, die with -9."""
    root = Root.open(root_dir)
    env = load(root, job_id)
    ws = workspace.prepare(root, env, slots=pool.Pool(root))
    agent_env = runner.agent_env(env, ws.path, "w0")
    if elsewhere:
        agent_env["FARRO_WORKSPACE"] = elsewhere
    unit = procs.Unit("agent", prefer="fallback")  # a cgroup's kill needs no CAP_KILL
    p = unit.popen(
        [*AS_NOBODY, "sleep", "1000"],
        agent_env,
        cwd=elsewhere or ws.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(p.pid, ws.path, flush=True)
    os.kill(os.getpid(), 9)


def take(root_dir: str, job_id: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    root = Root.open(root_dir)
    print(workspace.prepare(root, load(root, job_id), slots=pool.Pool(root)).path)


def repair(root_dir: str) -> None:
    """What ``farro fsck --repair`` says of the orphans, one JSON line each."""
    from farro_core.fsck import fsck

    for f in fsck(Root.open(root_dir), repair=True):
        if f.kind == "orphan":
            print(json.dumps({"action": f.action, "repaired": f.repaired}))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"


def main(root_dir: str, first: str, nxt: str, elsewhere: str, how: str = "take") -> None:
    me = [sys.executable, __file__]
    dead = subprocess.run(
        [*me, "dead", root_dir, first, elsewhere], capture_output=True, text=True, check=False
    )
    assert dead.returncode == -9, dead.stderr
    agent, slot = int(dead.stdout.split()[0]), dead.stdout.split()[1]
    # setpriv has dropped root once it runs sleep (before, the kill would work)
    comm = Path(f"/proc/{agent}/comm")
    wait_until(lambda: comm.read_text().strip() == "sleep", "the agent running as 65534")
    (Path(slot) / "junk.log").write_text("the dead job's\n")
    taker = subprocess.run(
        [*NO_CAP_KILL, *me, how, root_dir, *([nxt] if how == "take" else [])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert taker.returncode == 0, taker.stderr
    out = {
        "agent": agent,
        "slot": slot,
        "alive": _alive(agent),
        "got": taker.stdout.strip(),
        "stderr": taker.stderr,
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    steps: dict[str, Callable[..., None]] = {
        "main": main,
        "dead": dead_worker,
        "take": take,
        "repair": repair,
    }
    steps[sys.argv[1]](*sys.argv[2:])
