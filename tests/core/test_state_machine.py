"""A hypothesis state machine driving the core against a simple in-memory model.

Rules: create (one or a batch, and a refused duplicate id), claim, an agent finishing its
attempt (succeed / fail / retry / kill), the watchdog marking a job stale, the manager
requeueing a stale job whose worker is gone, a worker dying
(its claim lock freed, nothing committed), a claim crashing after its step 3 or 4 (hand-made
partial steps), fsck with and without --repair, operator requeue and kill, and commits the
table forbids. After every step the invariants of the spec are checked against the disk:
each job in exactly one queue directory, the one its status names (except where a crash
left it, until fsck); job.json parses and matches the model; prompt.json is byte-identical
to creation and 0444; every revision is in the audit log exactly once (as a transition,
or as a recovered line after fsck); every audited transition is in the table.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from farro_core import audit, fs, job, locks, operations
from farro_core.clock import utcnow
from farro_core.envelope import Claim, Envelope, dump, load_lifecycle, parse_spec
from farro_core.errors import AlreadyExists, Conflict, IllegalTransition
from farro_core.fsck import fsck
from farro_core.identity import WorkerIdentity
from farro_core.locks import CLAIMS, claim_lock_name
from farro_core.root import QUEUES, Root
from farro_core.transitions import QUEUE_DIR, TABLE, Actor, Status

S, A = Status, Actor

# tmpfs when there is one: the machine checks logic, and fsync there costs nothing
_BASE = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@dataclass
class Model:
    status: Status
    priority: int
    prompt_bytes: bytes
    serial: int  # creation order
    revision: int = 1
    attempt: int = 0
    attempt_base: int = 0
    delayed: bool = False  # not_before in the future
    misplaced: str | None = None  # the queue a crash left it in, until fsck moves it
    unaudited: set[int] = field(default_factory=set)
    kill_for: int | None = None  # the attempt a control/kill request names


class FarroMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="farro-sm-", dir=_BASE)
        self.root = Root.init(Path(self.tmp) / "root")
        self.jobs: dict[str, Model] = {}
        self.holders: list[Envelope] = []  # live workers' claims (their locks are held)
        self.serial = 0

    def teardown(self) -> None:
        for env in self.holders:
            job.release_claim(env)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ------------------------------------------------------------ helpers

    def _pick(self, data: st.DataObject, pred: object = None) -> str | None:
        ids = [i for i, m in self.jobs.items() if pred is None or pred(m)]  # type: ignore[operator]
        ids.sort(key=lambda i: self.jobs[i].serial)
        return data.draw(st.sampled_from(ids)) if ids else None

    def _live_holder(self, jid: str, attempt: int) -> bool:
        return any(h.id == jid and h.lifecycle.attempt == attempt for h in self.holders)

    def _bump(self, m: Model, status: Status) -> None:
        m.revision += 1
        m.status = status

    def _disk(self, jid: str) -> bytes:
        return (self.root.locate(jid) / "job.json").read_bytes()

    # ------------------------------------------------------------ create

    @initialize(priorities=st.lists(st.integers(-2, 2), min_size=1, max_size=4))
    def start_with_jobs(self, priorities: list[int]) -> None:
        self.create(priorities)

    @rule(priorities=st.lists(st.integers(-2, 2), min_size=1, max_size=3))
    def create(self, priorities: list[int]) -> None:
        specs = []
        for p in priorities:
            self.serial += 1
            # ids of one batch share a millisecond and would sort randomly: replays must
            # claim the same jobs, so the machine names its jobs in creation order
            jid = f"sm-{self.serial:06d}"
            specs.append(parse_spec({"prompt": f"job {self.serial}", "priority": p, "id": jid}))
        envs = job.create_many(self.root, specs)
        assert len(envs) == len(priorities)
        for env, p in zip(envs, priorities, strict=True):
            assert env.id not in self.jobs
            raw = (env.path / "prompt.json").read_bytes()
            self.jobs[env.id] = Model(S.QUEUED, p, raw, serial=len(self.jobs))

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def create_duplicate_refused(self, data: st.DataObject) -> None:
        jid = self._pick(data)
        assert jid is not None
        self.serial += 1
        try:
            job.create_many(
                self.root,
                [parse_spec({"prompt": "new"}), parse_spec({"prompt": "dup", "id": jid})],
            )
        except AlreadyExists:
            pass
        else:
            raise AssertionError("a duplicate id was created")

    # ------------------------------------------------------------ claim

    @rule(
        name=st.sampled_from(["w1", "w2", "w3"]),
        then=st.sampled_from([None, "succeed", "fail", "retry", "kill"]),
        delayed=st.booleans(),
    )
    def claim(self, name: str, then: str | None, delayed: bool) -> None:
        """Claim the best job; ``then`` lets its worker end the attempt straight away."""
        ready = [
            (-m.priority, jid)
            for jid, m in self.jobs.items()
            if m.status is S.QUEUED and not m.delayed
        ]
        env = job.claim(self.root, WorkerIdentity.current(name))
        if not ready:
            assert env is None, "claimed a job that is not claimable"
            return
        expected = min(ready)[1]
        assert env is not None, f"nothing claimed, {expected} was claimable"
        assert env.id == expected, "claim order is priority, then id"
        m = self.jobs[env.id]
        m.attempt += 1
        self._bump(m, S.IN_PROGRESS)
        assert (env.lifecycle.attempt, env.lifecycle.revision) == (m.attempt, m.revision)
        self.holders.append(env)
        if then is not None:
            self._finish(env, then, delayed)

    # ------------------------------------------------------------ the agent ends its attempt

    @precondition(lambda self: bool(self.holders))
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["succeed", "fail", "retry", "kill"]),
        delayed=st.booleans(),
    )
    def agent_finishes(self, data: st.DataObject, outcome: str, delayed: bool) -> None:
        self._finish(data.draw(st.sampled_from(self.holders)), outcome, delayed)

    def _finish(self, env: Envelope, outcome: str, delayed: bool) -> None:
        """The worker holding ``env`` commits its outcome (a retry may back off)."""
        m = self.jobs[env.id]
        if job.kill_requested(env.path, env.lifecycle.attempt) or (
            m.kill_for == env.lifecycle.attempt and m.revision == env.lifecycle.revision
        ):
            outcome = "kill"  # a worker honours control/kill
        to = {"succeed": S.SUCCEEDED, "fail": S.FAILED, "retry": S.QUEUED, "kill": S.KILLED}[
            outcome
        ]
        delayed = delayed and outcome == "retry"
        changes = {"not_before": utcnow() + timedelta(hours=1)} if delayed else {}
        fenced = m.revision != env.lifecycle.revision
        before = self._disk(env.id)
        assert env.lifecycle.claim is not None
        try:
            job.commit(env, to, A.AGENT, outcome, worker=env.lifecycle.claim.worker, **changes)
        except Conflict:
            assert fenced, "a current claim was refused"
            assert self._disk(env.id) == before
        else:
            assert not fenced, "a worker whose claim went stale committed (fencing failed)"
            self._bump(m, to)
            m.delayed = delayed
            m.kill_for = None
        job.release_claim(env)
        self.holders.remove(env)

    # ------------------------------------------------------------ watchdog, crashes

    @precondition(lambda self: any(m.status is S.IN_PROGRESS for m in self.jobs.values()))
    @rule(
        data=st.data(),
        wakes=st.sampled_from([None, "succeed", "fail", "retry", "kill"]),
    )
    def watchdog_marks_stale(self, data: st.DataObject, wakes: str | None) -> None:
        """A hung worker (or a dead one) loses its job; ``wakes``: the hung one comes back."""
        jid = self._pick(data, lambda m: m.status is S.IN_PROGRESS)
        assert jid is not None
        job.commit(job.load(self.root, jid), S.STALE, A.WATCHDOG, "no heartbeat")
        m = self.jobs[jid]
        self._bump(m, S.STALE)
        m.misplaced = None  # commit moved it to active/ whatever queue it sat in
        hung = [h for h in self.holders if h.id == jid and h.lifecycle.attempt == m.attempt]
        if hung and wakes is not None:
            self._finish(hung[0], wakes, False)  # fenced: must be refused

    @precondition(
        lambda self: any(m.status is S.QUEUED and not m.delayed for m in self.jobs.values())
    )
    @rule(outcome=st.sampled_from(["succeed", "fail", "retry", "kill"]))
    def hung_worker_is_fenced(self, outcome: str) -> None:
        """Claim, hang until the watchdog gives the job up, then wake and try to commit."""
        self.claim("hung", None, False)
        env = self.holders[-1]
        m = self.jobs[env.id]
        job.commit(job.load(self.root, env.id), S.STALE, A.WATCHDOG, "no heartbeat")
        self._bump(m, S.STALE)
        before = self.jobs[env.id].revision
        self._finish(env, outcome, False)
        assert m.revision == before and m.status is S.STALE  # refused: nothing moved

    @precondition(lambda self: bool(self.holders))
    @rule(data=st.data())
    def worker_dies(self, data: st.DataObject) -> None:
        env = data.draw(st.sampled_from(self.holders))
        CLAIMS.release(job.claim_key(self.root, env.id, env.lifecycle.attempt))  # the kernel
        self.holders.remove(env)

    @precondition(
        lambda self: any(m.status is S.QUEUED and not m.delayed for m in self.jobs.values())
    )
    @rule(data=st.data(), step=st.sampled_from([3, 4]))
    def claim_crashes_after_step(self, data: st.DataObject, step: int) -> None:
        """claim's steps by hand, then death: job.json in-progress, (step 4) moved, no audit."""
        jid = self._pick(data, lambda m: m.status is S.QUEUED and not m.delayed)
        assert jid is not None
        m = self.jobs[jid]
        dfd = fs.open_dir(self.root.incoming / jid)
        try:
            held = locks.try_lock(dfd, claim_lock_name(m.attempt + 1))  # step 1
            assert held is not None
            with job.commit_lock(dfd):  # step 2
                lc = job.read_lifecycle(dfd, jid)
                me = WorkerIdentity.current("doomed")
                new = lc.model_copy(
                    update={
                        "status": S.IN_PROGRESS,
                        "attempt": lc.attempt + 1,
                        "revision": lc.revision + 1,
                        "claim": Claim(
                            worker=me.name,
                            host=me.host,
                            boot_id=me.boot_id,
                            pid=me.pid,
                            pid_started_at=me.pid_started_at,
                            token="dead",
                            claimed_at=utcnow(),
                        ),
                        "reason": "claimed by doomed",
                    }
                )
                fs.write_at(dfd, "job.json", dump(new))  # step 3
                if step == 4:
                    fs.move(self.root.incoming / jid, self.root.active / jid)
            held.release()  # the process died: the kernel frees its locks
        finally:
            os.close(dfd)
        m.attempt += 1
        self._bump(m, S.IN_PROGRESS)
        m.unaudited.add(m.revision)
        m.misplaced = "incoming" if step == 3 else None

    # ------------------------------------------------------------ fsck

    def _expected_findings(self) -> list[tuple[str, str]]:
        out = []
        for jid, m in self.jobs.items():
            if m.misplaced:
                out.append(("misplaced", jid))
            if m.status is S.IN_PROGRESS and not self._live_holder(jid, m.attempt):
                out.append(("stale", jid))
            out += [("unaudited", jid)] * len(m.unaudited)
        return sorted(out)

    def _tree(self) -> dict[Path, bytes]:
        return {
            p: (p.read_bytes() if p.is_file() else b"")
            for p in Path(self.root.path).rglob("*")
            if not p.name.endswith(".lock") and p.name != "heartbeat"
        }

    @rule(repair=st.booleans())
    def fsck_pass(self, repair: bool) -> None:
        """Always a report first (it must change nothing), then maybe the repair."""
        expected = self._expected_findings()
        before = self._tree()
        found = fsck(self.root)
        assert sorted((f.kind, Path(f.path).name) for f in found) == expected
        assert not any(f.repaired for f in found)
        assert self._tree() == before, "fsck without --repair changed the disk"
        if not repair:
            return
        found = fsck(self.root, repair=True)
        assert sorted((f.kind, Path(f.path).name) for f in found) == expected
        assert all(f.repaired for f in found)
        for jid, m in self.jobs.items():
            m.misplaced = None
            m.unaudited.clear()
            if m.status is S.IN_PROGRESS and not self._live_holder(jid, m.attempt):
                self._bump(m, S.STALE)
        assert fsck(self.root) == []

    # ------------------------------------------------------------ the operator

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def operator_requeues(self, data: st.DataObject) -> None:
        jid = self._pick(data)
        assert jid is not None
        m = self.jobs[jid]
        before = self._disk(jid)
        try:
            env = operations.requeue(self.root, jid)
        except IllegalTransition:
            assert m.status not in (S.STALE, S.FAILED)
            assert self._disk(jid) == before
        else:
            assert m.status in (S.STALE, S.FAILED)
            self._bump(m, S.QUEUED)
            m.attempt_base = m.attempt
            m.delayed = False
            assert env.lifecycle.attempts_left(3) == 3

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data())
    def operator_kills(self, data: st.DataObject) -> None:
        jid = self._pick(data)
        assert jid is not None
        m = self.jobs[jid]
        before = self._disk(jid)
        try:
            env = operations.kill(self.root, jid, wait_s=0)
        except IllegalTransition:
            assert m.status in (S.SUCCEEDED, S.FAILED, S.KILLED)
            assert self._disk(jid) == before
            return
        if m.status is S.IN_PROGRESS:  # through its worker: only control/kill is written
            assert env.status is S.IN_PROGRESS and self._disk(jid) == before
            assert job.kill_requested(env.path, m.attempt) is not None
            m.kill_for = m.attempt
        else:
            assert m.status in (S.QUEUED, S.STALE)
            self._bump(m, S.KILLED)

    @precondition(lambda self: any(m.status is S.STALE for m in self.jobs.values()))
    @rule(data=st.data())
    def manager_requeues_stale(self, data: st.DataObject) -> None:
        """auto_requeue_stale: only a stale job whose claim lock is free (its worker gone)."""
        jid = self._pick(data, lambda m: m.status is S.STALE)
        assert jid is not None
        m = self.jobs[jid]
        env = job.load(self.root, jid)
        free = job.claim_is_free(self.root, env.path, jid, m.attempt)
        assert free == (not self._live_holder(jid, m.attempt))
        if not free:
            return  # a hung worker still holds it: that waits for an operator
        job.commit(env, S.QUEUED, A.MANAGER, "auto requeue", claim=None)
        self._bump(m, S.QUEUED)
        m.delayed = False

    @precondition(lambda self: bool(self.jobs))
    @rule(data=st.data(), to=st.sampled_from(list(Status)), actor=st.sampled_from(list(Actor)))
    def forbidden_commit_refused(self, data: st.DataObject, to: Status, actor: Actor) -> None:
        jid = self._pick(data)
        assert jid is not None
        m = self.jobs[jid]
        if actor in TABLE.get((m.status, to), ()):
            return  # legal: the other rules make those moves
        before = self._disk(jid)
        try:
            job.commit(job.load(self.root, jid), to, actor, "forbidden")
        except IllegalTransition:
            pass
        else:
            raise AssertionError(f"{actor} moved a {m.status} job to {to}")
        assert self._disk(jid) == before

    # ------------------------------------------------------------ invariants

    @invariant()
    def every_job_in_exactly_one_queue_matching_its_status(self) -> None:
        on_disk = {q: set(os.listdir(self.root.path / q)) for q in QUEUES}
        assert set().union(*on_disk.values()) == set(self.jobs), "unknown or lost jobs"
        for jid, m in self.jobs.items():
            holding = [q for q in QUEUES if jid in on_disk[q]]
            want = m.misplaced or QUEUE_DIR[m.status]
            assert holding == [want], f"{jid} ({m.status}) is in {holding}, not {want}"

    @invariant()
    def job_json_parses_and_matches_the_model(self) -> None:
        for jid, m in self.jobs.items():
            path = self.root.path / (m.misplaced or QUEUE_DIR[m.status]) / jid
            lc = load_lifecycle((path / "job.json").read_bytes(), jid)
            assert (lc.status, lc.revision, lc.attempt, lc.attempt_base) == (
                m.status,
                m.revision,
                m.attempt,
                m.attempt_base,
            )
            if m.status is S.QUEUED:  # a retry's backoff; meaningless once it left the queue
                assert (lc.not_before is not None and lc.not_before > utcnow()) == m.delayed

    @invariant()
    def prompt_json_never_changes(self) -> None:
        for jid, m in self.jobs.items():
            p = self.root.path / (m.misplaced or QUEUE_DIR[m.status]) / jid / "prompt.json"
            assert p.read_bytes() == m.prompt_bytes
            assert stat.S_IMODE(os.lstat(p).st_mode) == 0o444

    @invariant()
    def audit_has_every_revision_once_and_only_legal_moves(self) -> None:
        revs: dict[str, list[int]] = {}
        for rec in audit.read(self.root):
            revs.setdefault(rec["job"], []).append(rec["revision"])
            if rec["event"] == "transition":
                move = (Status(rec["from"]), Status(rec["to"]))
                assert Actor(rec["actor"]) in TABLE.get(move, ()), f"illegal move audited: {rec}"
            elif rec["event"] == "created":
                assert (rec["revision"], rec["to"]) == (1, "queued")
            else:
                assert rec["event"] == "recovered" and rec["actor"] == "fsck"
        assert set(revs) <= set(self.jobs)
        for jid, m in self.jobs.items():
            got = revs.get(jid, [])
            assert len(got) == len(set(got)), f"{jid}: a revision audited twice: {got}"
            assert set(got) == set(range(1, m.revision + 1)) - m.unaudited, (jid, got)

    @invariant()
    def nothing_quarantined_or_left_in_tmp(self) -> None:
        assert os.listdir(self.root.quarantine) == []
        assert os.listdir(self.root.tmp) == []

    @invariant()
    def kill_requests_name_their_attempt(self) -> None:
        for jid, m in self.jobs.items():
            if m.status is S.IN_PROGRESS:
                path = self.root.path / (m.misplaced or QUEUE_DIR[m.status]) / jid
                asked = job.kill_requested(path, m.attempt) is not None
                assert asked == (m.kill_for == m.attempt)


FarroMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestFarroMachine = FarroMachine.TestCase
