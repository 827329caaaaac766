"""Three hosts share one root (docs/scaling.md): real processes, real namespaces, real clocks.

host-a runs 60 s ahead and is the manager first; host-b runs 60 s behind and is its
standby; host-c (right clock) only runs workers. The story, in order:

1. healthy jobs longer than ``stale_after_s`` all succeed at their first attempt:
   a manager 60 s ahead steals nothing (the old watchdog marked them all stale);
2. host-a dies whole (kill -9 of its every process): host-b takes the manager role,
   and host-a's running jobs are requeued;
3. host-c freezes (SIGSTOP: a dead NFS client whose locks the server still holds):
   host-b's manager, 60 s behind, marks its jobs stale by heartbeat (the old one
   never did) and leaves its own healthy jobs alone;
4. host-c's lease runs out (kill -9): its jobs are requeued, and every job
   finishes exactly once, the orphans on host-b;
5. no host ever signalled or probed a pid of another host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for, wait_until

from farro_core import audit, job
from farro_core.envelope import parse_spec
from farro_core.manager import read_holder
from farro_core.root import Root
from farro_core.transitions import TERMINAL, Status

from .harness import Host, load, remove_dead_units, require_hosts, transitions, unit_cgroups

STALE_S = 6.0  # generous: a loaded machine delays heartbeat threads by seconds
WAIT_S = 60.0  # generous deadlines: the machine is shared; nothing here is timed

SETTINGS = """\
heartbeat_s = 0.5
stale_after_s = {stale}
watchdog_interval_s = 0.5
rescan_s = 0.5
shutdown_grace_s = 0.5
kill_grace_s = 0.5
retry_backoff_s = 0.2
auto_requeue_stale = true
clock_skew_warn_s = 5
"""


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[tuple[Root, dict[str, Host]]]:
    require_hosts()
    root = Root.init(tmp_path / "root")
    (root.path / "farro.toml").write_text(SETTINGS.format(stale=STALE_S))
    hs = {
        "a": Host(tmp_path, root.path, "host-a", 0, +60),
        "b": Host(tmp_path, root.path, "host-b", 1, -60),
        "c": Host(tmp_path, root.path, "host-c", 2, 0),
    }
    units = unit_cgroups()
    try:
        yield Root.open(root.path), hs
    finally:
        for h in hs.values():
            h.kill()
        remove_dead_units(units)


def _submit(root: Root, n: int, agent: str, tag: str) -> list[str]:
    return [
        job.create(root, parse_spec({"prompt": f"{tag} {i}", "agent": agent, "max_attempts": 3})).id
        for i in range(n)
    ]


def _claim_host(root: Root, job_id: str) -> str | None:
    env = load(root, job_id)
    if env is None or env.status is not Status.IN_PROGRESS or env.lifecycle.claim is None:
        return None
    return env.lifecycle.claim.host


def _final_host(root: Root, job_id: str) -> str | None:
    """The host of the job's last claim (a finished job keeps it)."""
    env = load(root, job_id)
    return env.lifecycle.claim.host if env is not None and env.lifecycle.claim else None


def _done_by(root: Root, job_id: str) -> list[str]:
    """The workers of the job's succeeded commits (there must be exactly one)."""
    return [r["worker"] for r in transitions(root, job_id) if r["to"] == Status.SUCCEEDED.value]


def test_hosts_with_skewed_clocks_share_a_root(
    hosts: tuple[Root, dict[str, Host]], tmp_path: Path
) -> None:
    root, h = hosts
    ran = tmp_path / "ran.log"
    record = f'echo "$FARRO_JOB_ID $(hostname)" >> {ran}'

    # ---- start: host-a (+60 s) is the manager, host-b (-60 s) its standby
    h["a"].start(workers=2, manager=True)
    wait_until(lambda: (x := read_holder(root)) and x.host == "host-a", "host-a to manage")
    h["b"].start(workers=2, manager=True)
    h["c"].start(workers=2, manager=False)
    for x in h.values():
        wait_until(lambda x=x: "host started" in x.log(), f"{x.name} to start:\n{x.log()}")

    # ---- 1. healthy jobs, longer than stale_after_s, under a manager 60 s ahead
    healthy = _submit(root, 6, f"sleep {STALE_S + 2}; {record}", "healthy")
    for jid in healthy:
        wait_until(
            lambda jid=jid: [r for r in transitions(root, jid) if r["to"] in TERMINAL],
            f"{jid} to finish",
            WAIT_S,
        )
    for jid in healthy:
        env = load(root, jid)
        assert env is not None
        assert (env.status, env.lifecycle.attempt) == (Status.SUCCEEDED, 1), (
            f"{jid}: a healthy job was taken from its worker: "
            f"{[r['reason'] for r in transitions(root, jid)]}"
        )
    stale_marks = [r for r in audit.read(root) if r.get("to") == Status.STALE.value]
    assert stale_marks == [], f"a manager 60 s ahead marked healthy jobs stale: {stale_marks}"
    by_host = {jid: _final_host(root, jid) for jid in healthy}
    assert set(by_host.values()) >= {"host-b", "host-c"}, by_host

    # each host's identity is its own, and its skew is measured against the file system
    claims = {}
    for jid in healthy:
        env = load(root, jid)
        assert env is not None and env.lifecycle.claim is not None
        claims[env.lifecycle.claim.host] = env.lifecycle.claim.boot_id
    for x in h.values():
        if x.name in claims:
            assert claims[x.name] == x.boot_id
    clocks = {
        json.loads(p.read_text())["host"]: json.loads(p.read_text())["skew_s"]
        for p in (root.run / "clocks").glob("*.json")
    }
    assert clocks.keys() >= {"host-a", "host-b"}
    assert clocks["host-a"] == pytest.approx(60, abs=5)
    assert clocks["host-b"] == pytest.approx(-60, abs=5)

    # ---- 2. long jobs on every worker; host-a dies whole; host-b takes over
    go = tmp_path / "go"
    held = _submit(root, 6, f"while [ ! -e {go} ]; do sleep 0.1; done; {record}", "held")
    on: dict[str, str] = {}
    for jid in held:
        on[jid] = wait_for(lambda jid=jid: _claim_host(root, jid), f"{jid} claimed", WAIT_S)
    assert sorted(on.values()) == ["host-a"] * 2 + ["host-b"] * 2 + ["host-c"] * 2, on

    h["a"].kill()
    wait_until(
        lambda: (x := read_holder(root)) and x.host == "host-b", "host-b to take over", WAIT_S
    )
    of_a = [j for j, x in on.items() if x == "host-a"]
    for jid in of_a:  # its claim locks died with it: worker gone, then requeued
        wait_until(lambda jid=jid: (e := load(root, jid)) and e.status is Status.QUEUED, jid)

    # ---- 3. host-c freezes: host-b's manager, 60 s behind, still sees it go silent
    h["c"].freeze()
    of_c = [j for j, x in on.items() if x == "host-c"]
    of_b = [j for j, x in on.items() if x == "host-b"]
    for jid in of_c:  # the audit line follows the commit: wait for the line itself
        stale = wait_until(
            lambda jid=jid: [r for r in transitions(root, jid) if r["to"] == Status.STALE.value],
            f"{jid} marked stale",
            WAIT_S,
        )
        reason = stale[-1]["reason"]
        m = re.fullmatch(r"no heartbeat for (\d+)s \(worker .*\)", reason)
        assert m, f"{jid}: stale for another reason: {reason!r}"
        # the silence is read by the file system's clock: nowhere near the 60 s skew
        assert int(m.group(1)) < STALE_S + 30, reason
    for jid in of_b:
        env = load(root, jid)
        assert env is not None and env.status is Status.IN_PROGRESS, "host-b's healthy job taken"
        assert env.lifecycle.attempt == 1

    # ---- 4. host-c's lease runs out; everything finishes exactly once, orphans on host-b
    h["c"].kill()
    go.touch()
    for jid in held:  # the audit line follows the commit: wait for the line itself
        wait_until(lambda jid=jid: _done_by(root, jid), f"{jid} to succeed", WAIT_S)
    lines = ran.read_text().split()
    for jid in healthy + held:
        assert len(_done_by(root, jid)) == 1, f"{jid} succeeded {len(_done_by(root, jid))} times"
        assert lines[0::2].count(jid) == 1, f"{jid}'s agent finished more than once"
    for jid in of_a + of_c:
        assert _final_host(root, jid) == "host-b"
        assert lines[lines.index(jid) + 1] == "host-b"
    assert len([r for r in transitions(root, of_c[0]) if r["to"] == Status.IN_PROGRESS.value]) == 2
    h["b"].stop()

    # ---- 5. no pid of a foreign host was ever signalled or probed
    for x in h.values():
        touched = x.signalled_pids()
        # pid 1 is every pid namespace's own first process (the host's init): a scan
        # of /proc (containment's reaping) sees it, and it is never another host's
        foreign = [
            (what, p) for what, p in touched if abs(p) != 1 and not x.pid_lo < abs(p) < x.pid_hi
        ]
        assert foreign == [], f"{x.name} touched pids outside its own: {foreign[:10]}"
    assert h["b"].signalled_pids(), "the pid log is empty: is the audit hook loaded?"
