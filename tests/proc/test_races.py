"""Real multi-process races: 8 processes claiming, creating, creating one id.

Every child waits at a start barrier (``ready`` ... ``go``) so they really race
instead of running one after another as Python starts up.
"""

from __future__ import annotations

import os
from collections import Counter

from farro_core import job, operations
from farro_core.envelope import JobSpec
from farro_core.fsck import Finding, fsck
from farro_core.identity import WorkerIdentity
from farro_core.ids import new_id
from farro_core.root import Root
from farro_core.transitions import TERMINAL, Actor, Status

from .child import EXIT_OK
from .helpers import Child, audit_lines, children, release_together, scan, wait_until

N_PROCS = 8


def test_eight_claimers_drain_500_jobs_each_attempt_claimed_once(root: Root) -> None:
    # One job in five is retried once by its worker, so attempt-2 claims race too.
    specs = [
        JobSpec(prompt=f"job {i}", labels={"retry": "1"} if i % 5 == 0 else {}) for i in range(500)
    ]
    envs = job.create_many(root, specs)
    created = {e.id for e in envs}
    retried = {e.id for e in envs if e.prompt.labels.get("retry") == "1"}
    assert len(created) == 500 and len(retried) == 100

    with children() as kids:
        for n in range(N_PROCS):
            kids.append(Child(root, "claim-loop", f"w{n}"))
        release_together(kids)
        codes = [c.finish() for c in kids]
        assert codes == [EXIT_OK] * N_PROCS, [c.stderr_text() for c in kids]
        said = {
            f"w{n}": [(ln.split()[1], ln.split()[2]) for ln in c.lines if ln.startswith("claimed ")]
            for n, c in enumerate(kids)
        }

    # Every (job, attempt) was claimed by exactly one process, as the processes tell it.
    claims = Counter(pair for pairs in said.values() for pair in pairs)
    expected = {(i, "1") for i in created} | {(i, "2") for i in retried}
    assert set(claims) == expected
    assert max(claims.values()) == 1
    assert sum(1 for pairs in said.values() if pairs) >= 2, "no race happened: one process won all"

    # On disk: every job succeeded exactly once, in done/, nothing anywhere else.
    jobs = scan(root)
    assert set(jobs) == created
    assert {j.queue for j in jobs.values()} == {"done"}
    for jid, j in jobs.items():
        assert j.lifecycle.status is Status.SUCCEEDED
        assert j.lifecycle.attempt == (2 if jid in retried else 1)
    assert os.listdir(root.tmp) == []

    # The audit log agrees: one claim per (job, attempt), by the process that said so,
    # and one terminal commit per job.
    recs = audit_lines(root)
    claim_recs = [r for r in recs if r["from"] == "queued" and r["to"] == "in-progress"]
    by_attempt = Counter((r["job"], str(r["attempt"])) for r in claim_recs)
    assert set(by_attempt) == expected and max(by_attempt.values()) == 1
    who = {(r["job"], str(r["attempt"])): r["worker"] for r in claim_recs}
    for name, pairs in said.items():
        for pair in pairs:
            assert who[pair] == name
    terminal = Counter(r["job"] for r in recs if r["to"] == "succeeded")
    assert set(terminal) == created and max(terminal.values()) == 1
    retries = Counter(r["job"] for r in recs if r["from"] == "in-progress" and r["to"] == "queued")
    assert set(retries) == retried and max(retries.values()) == 1
    created_recs = Counter(r["job"] for r in recs if r["event"] == "created")
    assert set(created_recs) == created and max(created_recs.values()) == 1
    # 500 created + 600 claims + 100 retries + 500 successes, nothing else.
    assert len(recs) == 500 + 600 + 100 + 500
    # Every revision of every job is in the log exactly once.
    revs = Counter((r["job"], r["revision"]) for r in recs)
    assert max(revs.values()) == 1
    for jid, j in jobs.items():
        assert {rev for (i, rev) in revs if i == jid} == set(range(1, j.lifecycle.revision + 1))


def test_eight_creators_make_800_distinct_jobs(root: Root) -> None:
    with children() as kids:
        for _ in range(N_PROCS):
            kids.append(Child(root, "create", "100"))
        release_together(kids)
        codes = [c.finish() for c in kids]
        assert codes == [EXIT_OK] * N_PROCS, [c.stderr_text() for c in kids]
        reported = [ln for c in kids for ln in c.lines if ln != "ready"]

    assert len(reported) == 800
    assert len(set(reported)) == 800, "two creates returned the same id"
    jobs = scan(root)
    assert set(jobs) == set(reported)
    assert all(j.queue == "incoming" and j.lifecycle.revision == 1 for j in jobs.values())
    assert os.listdir(root.tmp) == []
    created = Counter(r["job"] for r in audit_lines(root) if r["event"] == "created")
    assert set(created) == set(reported) and max(created.values()) == 1


def test_eight_creators_of_the_same_ids_exactly_one_wins_each(root: Root) -> None:
    ids = [new_id() for _ in range(20)]
    with children() as kids:
        for n in range(N_PROCS):
            kids.append(Child(root, "create-ids", f"c{n}", *ids))
        release_together(kids)
        codes = [c.finish() for c in kids]
        assert codes == [EXIT_OK] * N_PROCS, [c.stderr_text() for c in kids]
        outcomes = {
            f"c{n}": {ln.split()[1]: ln.split()[0] for ln in c.lines if ln != "ready"}
            for n, c in enumerate(kids)
        }

    jobs = scan(root)
    assert set(jobs) == set(ids)
    for jid in ids:
        winners = [tag for tag, got in outcomes.items() if got[jid] == "won"]
        losers = [tag for tag, got in outcomes.items() if got[jid] == "lost"]
        assert len(winners) == 1, f"{jid}: winners {winners}"
        assert len(losers) == N_PROCS - 1  # each got AlreadyExists
        # The job on disk is the winner's, untouched by any loser.
        assert job.load(root, jid).prompt.prompt == f"created by {winners[0]}"
        assert jobs[jid].queue == "incoming" and jobs[jid].lifecycle.revision == 1
    assert os.listdir(root.tmp) == [], "a losing create left its staging dir behind"
    assert os.listdir(root.quarantine) == []
    created = Counter(r["job"] for r in audit_lines(root) if r["event"] == "created")
    assert created == Counter(dict.fromkeys(ids, 1))


def test_claimers_killed_anywhere_lose_nothing(root: Root) -> None:
    """SIGKILL two of eight claimers mid-run, wherever they are; the rest drain the queue.

    The named crash points cover each step; this lands a kill -9 at an arbitrary
    instruction (mid-write, mid-rename, while holding the commit lock) instead.
    """
    envs = job.create_many(root, [JobSpec(prompt=f"job {i}") for i in range(200)])
    created = {e.id for e in envs}
    with children() as kids:
        for n in range(N_PROCS):
            kids.append(Child(root, "claim-loop", f"w{n}"))
        release_together(kids)
        victims, survivors = kids[:2], kids[2:]
        for n, v in enumerate(victims):
            for _ in range(5 + 7 * n):  # kill each after a few claims, at different points
                v.expect("claimed ")
            v.kill()
        codes = [c.finish() for c in survivors]
        assert codes == [EXIT_OK] * len(survivors), [c.stderr_text() for c in survivors]

    # Each killed claimer held at most one job; fsck finds it (or its leftovers).
    fsck(root, repair=True)
    jobs = scan(root)
    assert set(jobs) == created, "a job was lost"
    unfinished = [j for j, d in jobs.items() if d.lifecycle.status not in TERMINAL]
    assert len(unfinished) <= 2
    assert all(jobs[j].lifecycle.status is Status.STALE for j in unfinished)
    for jid in unfinished:
        operations.requeue(root, jid, by="test-operator")
        env = job.claim(root, WorkerIdentity.current("after"), ids=[jid])
        assert env is not None
        job.release_claim(job.commit(env, Status.SUCCEEDED, Actor.AGENT, "ok", worker="after"))

    jobs = scan(root)
    assert all(d.lifecycle.status is Status.SUCCEEDED for d in jobs.values())
    assert os.listdir(root.tmp) == []
    recs = audit_lines(root)
    claims = Counter((r["job"], r["attempt"]) for r in recs if r["to"] == "in-progress")
    assert max(claims.values()) == 1, "an attempt was claimed twice"
    ends = Counter(r["job"] for r in recs if r["to"] == "succeeded")
    assert set(ends) == created and max(ends.values()) == 1, "a job succeeded twice"
    for jid, d in jobs.items():
        assert {r["revision"] for r in recs if r["job"] == jid} >= set(
            range(1, d.lifecycle.revision + 1)
        )
    assert fsck(root) == []


def test_fsck_repair_on_a_live_root_disturbs_no_live_job(root: Root) -> None:
    """An operator may run ``fsck --repair`` while workers run: it must repair nothing.

    Eight claimers drain jobs that each go round twice (claim, retry to queued,
    claim again, succeed), so jobs keep moving between incoming/ and active/ while
    fsck scans. Nothing is broken, so fsck must not quarantine, mark stale, move or
    recover anything, and no worker may be fenced out of its own job.
    """
    specs = [JobSpec(prompt=f"job {i}", labels={"retry": "1"}) for i in range(200)]
    created = {e.id for e in job.create_many(root, specs)}
    repaired: list[Finding] = []
    rounds = 0
    with children() as kids:
        for n in range(N_PROCS):
            kids.append(Child(root, "claim-loop", f"w{n}"))
        release_together(kids)

        def fsck_until_claimers_finish() -> bool:
            nonlocal rounds
            if all(c.proc.poll() is not None for c in kids):
                return True
            repaired.extend(f for f in fsck(root, repair=True) if f.repaired)
            rounds += 1
            return False

        wait_until(fsck_until_claimers_finish, "the claimers to finish", 120)
        codes = [c.finish() for c in kids]
        assert codes == [EXIT_OK] * N_PROCS, [c.stderr_text() for c in kids]

    assert rounds >= 3, "fsck never overlapped the claimers"
    assert repaired == [], f"fsck 'repaired' live jobs: {repaired[:5]}"
    assert os.listdir(root.quarantine) == []
    jobs = scan(root)
    assert set(jobs) == created
    assert all(d.lifecycle.status is Status.SUCCEEDED for d in jobs.values())
    recs = audit_lines(root)
    assert not [r for r in recs if r["event"] == "recovered" or r["to"] == "stale"]
    revs = Counter((r["job"], r["revision"]) for r in recs)
    assert max(revs.values()) == 1
    assert len(revs) == 200 * 5  # created, claim, retry, claim, succeed


def test_max_queued_is_a_hard_cap_for_concurrent_creators(root: Root) -> None:
    """Backpressure: with ``max_queued = 40``, 8 processes trying 20 creates each
    leave exactly 40 jobs; every other create is refused with QueueFull."""
    (root.path / "farro.toml").write_text("max_queued = 40\n")
    with children() as kids:
        for _ in range(N_PROCS):
            kids.append(Child(root, "create-until", "20"))
        release_together(kids)
        codes = [c.finish() for c in kids]
        assert codes == [EXIT_OK] * N_PROCS, [c.stderr_text() for c in kids]
        said = [ln for c in kids for ln in c.lines if ln != "ready"]
    made = {ln.split()[1] for ln in said if ln.startswith("ok ")}
    assert len(said) == N_PROCS * 20
    assert set(scan(root)) == made
    assert len(made) == 40, f"{len(made)} jobs queued with max_queued = 40"
    assert said.count("full") == N_PROCS * 20 - 40
    assert os.listdir(root.tmp) == []
