"""The three transactions: create, claim, commit (docs/spec.md §5), and load."""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from farro_core import dirwatch, fs, job, locks, ranking
from farro_core.clock import utcnow
from farro_core.envelope import Envelope, JobSpec, Lifecycle, Result
from farro_core.errors import (
    AlreadyExists,
    BadInput,
    Conflict,
    Corrupt,
    DurabilityError,
    IllegalTransition,
    NotFound,
    QueueFull,
)
from farro_core.locks import CLAIMS, claim_lock_name
from farro_core.root import Root
from farro_core.transitions import QUEUE_DIR, TABLE, Actor, Status

from .helpers import (
    audit_of,
    claim_elsewhere,
    claimed,
    create_elsewhere,
    queues_holding,
    snapshot,
    spec,
    worker,
)

S, A = Status, Actor


# ---------------------------------------------------------------- create


def test_create_writes_a_queued_job(root: Root) -> None:
    env = job.create(root, spec("hello\nworld", priority=3, labels={"k": "v"}), created_by="ann")
    d = root.incoming / env.id
    assert env.path == d and queues_holding(root, env.id) == ["incoming"]
    assert sorted(os.listdir(d)) == ["job.json", "prompt.json"]
    assert stat.S_IMODE(os.stat(d / "prompt.json").st_mode) == 0o444
    assert stat.S_IMODE(os.stat(d / "job.json").st_mode) == 0o600
    p = json.loads((d / "prompt.json").read_bytes())
    assert p["id"] == env.id and p["prompt"] == "hello\nworld" and p["title"] == "hello"
    assert p["priority"] == 3 and p["labels"] == {"k": "v"} and p["created_by"] == "ann"
    lc = json.loads((d / "job.json").read_bytes())
    assert (lc["status"], lc["attempt"], lc["revision"], lc["claim"]) == ("queued", 0, 1, None)
    assert os.listdir(root.tmp) == []
    [line] = audit_of(root, env.id)
    assert line["event"] == "created"
    assert (line["from"], line["to"], line["actor"]) == (None, "queued", "creator")
    assert (line["attempt"], line["revision"], line["worker"]) == (0, 1, None)


def test_create_default_creator_is_user_at_host(root: Root) -> None:
    env = job.create(root, spec())
    assert "@" in env.prompt.created_by


def test_create_with_given_id(root: Root) -> None:
    env = job.create(root, spec(id="my-job-0001"))
    assert env.id == "my-job-0001" and (root.incoming / "my-job-0001").is_dir()


@pytest.mark.parametrize("queue", ["incoming", "active", "done"])
def test_create_never_overwrites_an_existing_id(root: Root, queue: str) -> None:
    env = job.create(root, spec("first", id="my-job-0001"))
    if queue != "incoming":
        os.rename(env.path, root.path / queue / env.id)
    before = snapshot(root)
    with pytest.raises(AlreadyExists, match="my-job-0001 exists already"):
        job.create(root, spec("second", id="my-job-0001"))
    assert snapshot(root) == before
    assert os.listdir(root.tmp) == []


def test_create_many_is_all_or_nothing_on_existing_id(root: Root) -> None:
    job.create(root, spec(id="taken-00001"))
    before = snapshot(root)
    with pytest.raises(AlreadyExists):
        job.create_many(root, [spec("a"), spec("b", id="taken-00001"), spec("c")])
    assert snapshot(root) == before
    assert os.listdir(root.tmp) == []


def test_create_many_is_all_or_nothing_on_a_duplicate_id_in_the_batch(root: Root) -> None:
    before = snapshot(root)
    with pytest.raises(AlreadyExists):
        job.create_many(root, [spec("a", id="twice-00001"), spec("b", id="twice-00001")])
    assert snapshot(root) == before
    assert root.ids("incoming") == [] and os.listdir(root.tmp) == []


def test_create_many_is_all_or_nothing_on_a_failure_in_the_middle(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = fs.create_at  # a batch's stage files are created in place, fsynced all at once
    calls = []

    def failing(dfd: int, name: str, data: bytes, mode: int = 0o600) -> None:
        calls.append(name)
        if len(calls) == 5:  # the third job's prompt.json
            raise OSError(28, "No space left on device")
        real(dfd, name, data, mode)

    monkeypatch.setattr(fs, "create_at", failing)
    before = snapshot(root)
    with pytest.raises(OSError, match="No space"):
        job.create_many(root, [spec(str(i)) for i in range(5)])
    assert snapshot(root) == before
    assert os.listdir(root.tmp) == [] and root.ids("incoming") == []


def test_create_many_is_all_or_nothing_on_a_bad_spec_in_the_middle(root: Root) -> None:
    """A spec that slipped past validation (built without it) fails as its prompt is made."""
    bad = JobSpec.model_construct(prompt="x", title="t" * 300)  # title over 200 characters
    before = snapshot(root)
    with pytest.raises(ValidationError, match="title exceeds 200"):
        job.create_many(root, [spec("a"), spec("b"), bad, spec("d")])
    assert snapshot(root) == before
    assert os.listdir(root.tmp) == [] and root.ids("incoming") == []


def test_create_many_creates_all(root: Root) -> None:
    envs = job.create_many(root, [spec(str(i)) for i in range(20)])
    assert sorted(root.ids("incoming")) == sorted(e.id for e in envs)
    assert len({e.id for e in envs}) == 20
    assert [e.prompt.prompt for e in envs] == [str(i) for i in range(20)]
    assert all(len(audit_of(root, e.id)) == 1 for e in envs)


def test_concurrent_creates_lose_nothing(root: Root) -> None:
    made: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(15):
            env = job.create(root, spec(f"{n}-{i}"))
            with lock:
                made.append(env.id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 60
    assert sorted(root.ids("incoming")) == sorted(made)


def test_max_queued_backpressure(tmp_path: Path) -> None:
    root = Root.init(tmp_path / "r")
    (root.path / "farro.toml").write_text("max_queued = 3\n")
    root = Root.open(root.path)
    job.create_many(root, [spec("a"), spec("b")])
    with pytest.raises(QueueFull, match="queue full: 2 queued"):
        job.create_many(root, [spec("c"), spec("d")])  # 2 + 2 > 3: none of them
    assert root.count("incoming") == 2
    job.create(root, spec("c"))
    with pytest.raises(QueueFull, match="queue full: 3 queued") as info:
        job.create(root, spec("d"))
    assert info.value.exit_code == 1
    assert root.count("incoming") == 3
    claimed(root)  # a claimed job leaves incoming/, making room
    job.create(root, spec("d"))
    assert root.count("incoming") == 3


# ---------------------------------------------------------------- claim


def test_claim_moves_to_active_and_holds_the_lock(root: Root) -> None:
    env = job.create(root, spec())
    w = worker("w7")
    c = job.claim(root, w)
    assert c is not None and c.id == env.id
    lc = c.lifecycle
    assert (lc.status, lc.attempt, lc.revision) == (S.IN_PROGRESS, 1, 2)
    assert lc.claim is not None
    assert (lc.claim.worker, lc.claim.pid, lc.claim.host) == ("w7", os.getpid(), w.host)
    assert lc.claim.pid_started_at == w.pid_started_at and lc.claim.token
    assert c.path == root.active / env.id and queues_holding(root, env.id) == ["active"]
    # the claim lock's mtime is the heartbeat: no file of its own
    assert (c.path / ".claim-1.lock").is_file() and not (c.path / "heartbeat").exists()
    on_disk = job.load(root, env.id).lifecycle
    assert on_disk == lc
    assert job.holds_claim(root, env.id, 1)
    dfd = fs.open_dir(c.path)
    try:
        assert not locks.is_free(dfd, claim_lock_name(1))
        job.release_claim(c)
        assert locks.is_free(dfd, claim_lock_name(1))
    finally:
        os.close(dfd)
    assert not job.holds_claim(root, env.id, 1)
    line = audit_of(root, env.id)[-1]
    assert (line["from"], line["to"], line["actor"], line["worker"]) == (
        "queued",
        "in-progress",
        "agent",
        "w7",
    )
    assert (line["attempt"], line["revision"], line["event"]) == (1, 2, "transition")


def test_claim_tokens_differ_per_attempt(root: Root) -> None:
    job.create(root, spec())
    a = claimed(root)
    job.commit(a, S.QUEUED, A.AGENT, "retry")
    b = claimed(root)
    assert a.lifecycle.claim and b.lifecycle.claim
    assert a.lifecycle.claim.token != b.lifecycle.claim.token
    assert b.lifecycle.attempt == 2


def test_claim_none_when_empty(root: Root) -> None:
    assert job.claim(root, worker()) is None


def test_claim_order_priority_then_id(root: Root) -> None:
    # created in this order; ids sort by creation time
    specs = [("p0-a", 0), ("p5-a", 5), ("p0-b", 0), ("pm1", -1), ("p5-b", 5), ("p9", 9)]
    envs = {e.prompt.prompt: e for e in (job.create(root, spec(p, priority=n)) for p, n in specs)}
    assert envs["p0-a"].id < envs["p0-b"].id
    got = []
    while (c := job.claim(root, worker())) is not None:
        got.append(c.prompt.prompt)
    assert got == ["p9", "p5-a", "p5-b", "p0-a", "p0-b", "pm1"]


def test_claim_order_is_created_at_not_the_id(root: Root) -> None:
    """A caller's own id says nothing about age: the older job is claimed first."""
    first = job.create(root, spec("first", id="zzzz-first"))
    second = job.create(root, spec("second", id="aaaa-second"))
    assert first.prompt.created_at < second.prompt.created_at
    batch = job.create_many(root, [spec("b1", id="yyyy-batch-1"), spec("b2", id="bbbb-batch-2")])
    assert job.candidates(root) == [first.id, second.id, *(e.id for e in batch)]
    got = []
    while (c := job.claim(root, worker())) is not None:
        got.append(c.id)
    assert got == ["zzzz-first", "aaaa-second", "yyyy-batch-1", "bbbb-batch-2"]


def test_candidates_order(root: Root) -> None:
    low = job.create(root, spec(priority=-5))
    high = job.create(root, spec(priority=5))
    mid = job.create(root, spec())
    assert job.candidates(root) == [high.id, mid.id, low.id]


# A claim keeps incoming/ ranked between claims (ranking.Ranking) and patches the
# ranking with what changed, seen by listing incoming/ again or, for a long queue
# on a local file system, by an inotify watch: these fail on a cache that misses a
# change, each both ways.


@pytest.fixture(params=["listed", "watched"])
def kept(request: pytest.FixtureRequest, root: Root, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the claim's kept queue follows incoming/: listing it, or watching it."""
    monkeypatch.setattr(ranking, "_WATCH_FROM", 0 if request.param == "watched" else 10**9)
    return str(request.param)


def _check_kept(root: Root, kept: str) -> None:
    """The queue follows incoming/ the way the test asked (a watch needs a local fs)."""
    job.candidates(root)  # the queue looked at once at least
    can_watch = dirwatch.fs_magic(root.incoming) in dirwatch.WATCHABLE
    assert job._queue(root).watching == (kept == "watched" and can_watch)


def test_claim_sees_a_job_created_elsewhere_between_two_claims(root: Root, kept: str) -> None:
    first, second = job.create(root, spec("first")), job.create(root, spec("second"))
    assert claimed(root).id == first.id  # the queue is ranked, and kept
    _check_kept(root, kept)
    create_elsewhere(root, "urgent-elsewhere", "urgent", priority=5)
    assert job.candidates(root) == ["urgent-elsewhere", second.id]
    assert claimed(root).id == "urgent-elsewhere"
    assert claimed(root).id == second.id
    assert job.claim(root, worker()) is None


def test_claim_skips_a_job_claimed_elsewhere_since_the_last_claim(root: Root, kept: str) -> None:
    a, b, c = (job.create(root, spec(p)) for p in ("a", "b", "c"))
    assert job.candidates(root) == [a.id, b.id, c.id]
    _check_kept(root, kept)
    claim_elsewhere(root, a.id)
    assert job.candidates(root) == [b.id, c.id]
    assert claimed(root).id == b.id
    claim_elsewhere(root, c.id)
    assert job.claim(root, worker()) is None
    assert job.load(root, a.id).status is S.IN_PROGRESS
    assert job.load(root, c.id).lifecycle.claim.worker == "elsewhere"  # type: ignore[union-attr]


def test_an_id_back_as_another_directory_is_ranked_by_its_own_prompt(root: Root, kept: str) -> None:
    """Quarantined, then created again elsewhere with another priority: the ranking kept
    for the old directory must not place (or pass by) the new one."""
    old = job.create(root, spec("old", id="back-again-0001", priority=-5))
    other = job.create(root, spec("other"))
    assert job.candidates(root) == [other.id, old.id]
    _check_kept(root, kept)
    os.rename(old.path, root.quarantine / old.id)
    create_elsewhere(root, old.id, "new", priority=5)
    assert job.candidates(root) == [old.id, other.id]
    c = claimed(root)
    assert (c.id, c.prompt.prompt, c.prompt.priority) == (old.id, "new", 5)


def test_a_ranking_broken_off_midway_is_not_kept(
    root: Root, kept: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error while ranking new entries (an I/O error reading a prompt, say) must not
    leave them listed as seen but unranked: the next claim would never see them."""
    a = job.create(root, spec("a"))
    assert job.candidates(root) == [a.id]
    b, c = job.create(root, spec("b")), job.create(root, spec("c"))
    real = job._queued

    def failing(root: Root, job_id: str, ino: int, **kw: bool) -> tuple[int, float, str | None]:
        if job_id == c.id:
            raise OSError(5, "Input/output error")
        return real(root, job_id, ino, **kw)

    monkeypatch.setattr(job, "_queued", failing)
    with pytest.raises(OSError):
        job.claim(root, worker())
    monkeypatch.setattr(job, "_queued", real)
    assert job.candidates(root) == [a.id, b.id, c.id]
    _check_kept(root, kept)
    d = job.create(root, spec("d"))
    assert job.candidates(root) == [a.id, b.id, c.id, d.id]


def test_a_claim_passing_by_the_whole_head_of_the_queue_goes_on_to_the_rest(
    root: Root, kept: str
) -> None:
    """A claim copies only the ranking's head first (job._HEAD jobs): when it passes all
    of them by, it must still reach the jobs below, best first, and try each only once."""
    passed = job.create_many(
        root, [spec(f"p{i}", priority=1, agent={"preset": "claude"}) for i in range(job._HEAD + 2)]
    )
    rest = job.create_many(root, [spec(f"r{i}") for i in range(3)])
    _check_kept(root, kept)
    asked: list[str | None] = []

    def pass_by(preset: str | None) -> bool:
        asked.append(preset)
        return preset == "claude"

    c = job.claim(root, worker(), pass_by=pass_by)
    assert c is not None and c.id == rest[0].id
    assert asked == ["claude"] * len(passed) + [None]
    assert job.candidates(root) == [e.id for e in passed] + [e.id for e in rest[1:]]


def test_a_watch_whose_events_overflowed_lists_incoming_again(root: Root) -> None:
    """More changes between two claims than the kernel queues events for: the job made
    after the events were dropped is seen all the same."""
    first = job.create(root, spec("first"))
    ranking._WATCH_FROM, saved = 0, ranking._WATCH_FROM
    try:
        assert job.candidates(root) == [first.id]
        _check_kept(root, "watched")
        limit = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
        flood = root.incoming / ".flood"
        for _ in range(min(limit, 100_000) // 2 + 1):  # two events each
            os.mkdir(flood)
            os.rmdir(flood)
        create_elsewhere(root, "after-the-flood", "late", priority=1)
        assert job.candidates(root) == ["after-the-flood", first.id]
    finally:
        ranking._WATCH_FROM = saved


def test_a_forked_child_never_reads_the_parents_watch(root: Root) -> None:
    """A fork shares the watch's queue of events: were the child to read it, the parent
    would never learn of what those events named."""
    first = job.create(root, spec("first"))
    ranking._WATCH_FROM, saved = 0, ranking._WATCH_FROM
    try:
        assert job.candidates(root) == [first.id]
        _check_kept(root, "watched")
        go_r, go_w = os.pipe()
        done_r, done_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: look at the queue once the parent made a job, then report
            try:
                os.read(go_r, 1)
                os.write(done_w, ",".join(job.candidates(root)).encode() or b"-")
            finally:
                os._exit(0)
        os.close(go_r)
        os.close(done_w)
        second = job.create(root, spec("second"))
        os.write(go_w, b"x")
        seen_by_child = os.read(done_r, 4096).decode()
        os.waitpid(pid, 0)
        for fd in (go_w, done_r):
            os.close(fd)
        assert seen_by_child == f"{first.id},{second.id}"
        assert job.candidates(root) == [first.id, second.id]
    finally:
        ranking._WATCH_FROM = saved


def test_a_watched_name_made_again_with_the_same_inode_is_read_again(root: Root) -> None:
    """Removed and made again between two claims, a directory can get the inode number
    its predecessor freed: the watch names it, and its prompt is read again, not the
    order kept for the old one. (Made here by putting the same directory back with
    another prompt: the same inode for certain.)"""
    old = job.create(root, spec("old", id="made-again-0001", priority=-5))
    other = job.create(root, spec("other"))
    ranking._WATCH_FROM, saved = 0, ranking._WATCH_FROM
    try:
        assert job.candidates(root) == [other.id, old.id]
        _check_kept(root, "watched")
        aside = root.tmp / old.id
        os.rename(old.path, aside)
        prompt = aside / "prompt.json"
        again = job.load(root, aside).prompt.model_copy(update={"priority": 9})
        prompt.chmod(0o600)
        prompt.write_text(again.model_dump_json())
        prompt.chmod(0o444)
        os.rename(aside, old.path)
        assert job.candidates(root) == [old.id, other.id]
    finally:
        ranking._WATCH_FROM = saved


def test_a_watched_incoming_replaced_is_listed_again(root: Root, kept: str) -> None:
    first = job.create(root, spec("first"))
    assert job.candidates(root) == [first.id]
    _check_kept(root, kept)
    os.rename(root.incoming, root.tmp / "old-incoming")
    os.mkdir(root.incoming, 0o700)
    second = job.create(root, spec("second"))
    assert job.candidates(root) == [second.id]
    assert claimed(root).id == second.id


def test_the_kept_ranking_equals_a_fresh_one_through_many_changes(root: Root, kept: str) -> None:
    """Creates (one, and batches big enough to re-sort), claims, requeues, jobs taken
    out and put back by hand: after each, the kept ranking is what a process seeing the
    root for the first time ranks, highest priority, then oldest, then id."""
    rng = random.Random(11)
    claims: list[Envelope] = []
    for step in range(40):
        move = rng.choice(["one", "batch", "claim", "requeue", "out-and-back"])
        if move == "one":
            job.create(root, spec(f"one {step}", priority=rng.randint(-2, 2)))
        elif move == "batch":
            n = rng.choice([2, 30])
            job.create_many(
                root, [spec(f"b{step}.{i}", priority=rng.randint(-2, 2)) for i in range(n)]
            )
        elif move == "claim" and (c := job.claim(root, worker())) is not None:
            claims.append(c)
        elif move == "requeue" and claims:
            c = claims.pop(rng.randrange(len(claims)))
            job.commit(c, S.QUEUED, A.AGENT, "again", claim=None)
            job.release_claim(c)
        elif move == "out-and-back" and (queued := job.candidates(root)):
            moved = rng.choice(queued)
            os.rename(root.incoming / moved, root.tmp / moved)
            assert moved not in job.candidates(root)
            os.rename(root.tmp / moved, root.incoming / moved)
        _check_kept(root, kept)
        fresh = Root.open(root.path)  # no caches: incoming/ listed and sorted from scratch
        assert job.candidates(root) == job.candidates(fresh), f"step {step}: {move}"
        keys = [job.load(fresh, i).prompt for i in job.candidates(fresh)]
        assert keys == sorted(keys, key=lambda p: (-p.priority, p.created_at, p.id))


def test_not_before_honoured(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)
    later = utcnow() + timedelta(seconds=60)
    job.commit(c, S.QUEUED, A.AGENT, "retry", not_before=later)
    job.release_claim(c)
    assert job.claim(root, worker()) is None
    assert job.claim(root, worker(), now=later - timedelta(seconds=1)) is None
    again = job.claim(root, worker(), now=later)
    assert again is not None and again.id == env.id and again.lifecycle.attempt == 2
    assert again.lifecycle.not_before is None  # cleared by the claim


def test_not_before_does_not_block_others(root: Root) -> None:
    first = job.create(root, spec("first", priority=9))
    second = job.create(root, spec("second"))
    c = claimed(root)
    assert c.id == first.id
    job.commit(c, S.QUEUED, A.AGENT, "retry", not_before=utcnow() + timedelta(hours=1))
    assert claimed(root).id == second.id


def test_claim_skips_non_queued_in_incoming(root: Root) -> None:
    stuck = job.create(root, spec("stuck", priority=9))
    ok = job.create(root, spec("ok"))
    # a crash after claim step 3: in-progress, still in incoming/
    dfd = fs.open_dir(stuck.path)
    try:
        lc = job.read_lifecycle(dfd, stuck.id)
        fs.write_at(
            dfd,
            "job.json",
            lc.model_copy(update={"status": S.IN_PROGRESS, "attempt": 1})
            .model_dump_json()
            .encode(),
        )
    finally:
        os.close(dfd)
    before = (stuck.path / "job.json").read_bytes()
    c = claimed(root)
    assert c.id == ok.id
    assert job.claim(root, worker()) is None
    assert (stuck.path / "job.json").read_bytes() == before


@pytest.mark.parametrize("queue", ["active", "done"])
def test_claim_never_takes_a_job_with_a_copy_in_another_queue(root: Root, queue: str) -> None:
    """A copy put back by hand is another job of the same id: neither may run."""
    env = job.create(root, spec("copied"))
    shutil.copytree(env.path, root.path / queue / env.id)
    before = (env.path / "job.json").read_bytes()
    assert job.claim(root, worker()) is None
    assert (env.path / "job.json").read_bytes() == before


def test_claim_skips_a_job_whose_claim_lock_is_held(root: Root) -> None:
    busy = job.create(root, spec("busy", priority=9))
    free = job.create(root, spec("free"))
    dfd = fs.open_dir(busy.path)
    try:
        held = locks.try_lock(dfd, claim_lock_name(1))  # another worker, mid-claim
        assert held is not None
        assert claimed(root).id == free.id
        assert job.claim(root, worker()) is None
        held.release()
        assert claimed(root).id == busy.id
    finally:
        os.close(dfd)


def test_claim_skips_corrupt_and_symlinked_entries(root: Root, tmp_path: Path) -> None:
    bad = job.create(root, spec("bad", priority=9))
    os.chmod(bad.path / "job.json", 0o600)
    (bad.path / "job.json").write_bytes(b'{"trunc')
    outside = tmp_path / "outside-job"
    outside.mkdir()
    os.symlink(outside, root.incoming / "symlinked-0001")
    good = job.create(root, spec("good"))
    assert claimed(root).id == good.id
    assert job.claim(root, worker()) is None


def test_claim_only_given_ids(root: Root) -> None:
    a = job.create(root, spec(priority=9))
    b = job.create(root, spec())
    c = job.claim(root, worker(), ids=[b.id])
    assert c is not None and c.id == b.id
    assert job.claim(root, worker(), ids=[b.id]) is None
    assert queues_holding(root, a.id) == ["incoming"]


def test_claim_by_two_threads_claims_each_job_once(root: Root, kept: str) -> None:
    made = {e.id for e in job.create_many(root, [spec(str(i)) for i in range(30)])}
    _check_kept(root, kept)
    got: list[str] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        while (c := job.claim(root, worker(f"w{n}"))) is not None:
            with lock:
                got.append(c.id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(made)


# ---------------------------------------------------------------- commit


def test_commit_happy_path_and_audit(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)
    done = job.commit(c, S.SUCCEEDED, A.AGENT, "all\nchecks passed", worker="w1")
    assert done.path == root.done / env.id and queues_holding(root, env.id) == ["done"]
    lc = job.load(root, env.id).lifecycle
    assert (lc.status, lc.revision, lc.attempt) == (S.SUCCEEDED, 3, 1)
    assert lc.reason == "all checks passed"
    assert lc.updated_at >= c.lifecycle.updated_at
    assert done.lifecycle == lc
    line = audit_of(root, env.id)[-1]
    assert line == {
        "ts": line["ts"],
        "event": "transition",
        "job": env.id,
        "from": "in-progress",
        "to": "succeeded",
        "actor": "agent",
        "worker": "w1",
        "attempt": 1,
        "revision": 3,
        "reason": "all checks passed",
    }
    assert [r["revision"] for r in audit_of(root, env.id)] == [1, 2, 3]


def test_commit_accepts_string_status_and_actor(root: Root) -> None:
    job.create(root, spec())
    c = claimed(root)
    assert job.commit(c, "failed", "agent", "no").status is S.FAILED


def test_commit_with_changes(root: Root) -> None:
    job.create(root, spec())
    c = claimed(root)
    now = utcnow()
    result = Result(attempt=1, exit_code=0, started_at=now, finished_at=now, duration_s=0.5)
    new = job.commit(c, S.SUCCEEDED, A.AGENT, "ok", result=result)
    assert new.lifecycle.result is not None and new.lifecycle.result.exit_code == 0
    assert job.load(root, c.id).lifecycle.result == new.lifecycle.result


def test_commit_refuses_invalid_changes_writing_nothing(root: Root) -> None:
    job.create(root, spec())
    c = claimed(root)
    before = snapshot(root)
    with pytest.raises(ValidationError):
        job.commit(c, S.FAILED, A.AGENT, "x", attempt_base=5)
    with pytest.raises(ValidationError):
        job.commit(c, S.FAILED, A.AGENT, "x", bogus_field=1)
    assert snapshot(root) == before


def test_commit_revision_cas_is_the_fencing(root: Root) -> None:
    env = job.create(root, spec())
    a = claimed(root, "A")
    stale = job.commit(job.load(root, env.id), S.STALE, A.WATCHDOG, "no heartbeat")
    assert stale.lifecycle.revision == 3
    before = snapshot(root)
    with pytest.raises(Conflict, match=r"moved on: it is stale at revision 3, not revision 2"):
        job.commit(a, S.SUCCEEDED, A.AGENT, "done late")
    assert snapshot(root) == before
    job.commit(stale, S.QUEUED, A.OPERATOR, "requeue")
    b = claimed(root, "B")
    assert b.lifecycle.attempt == 2
    with pytest.raises(Conflict):
        job.commit(a, S.SUCCEEDED, A.AGENT, "still late")  # A can never commit again
    assert job.commit(b, S.SUCCEEDED, A.AGENT, "B did it").lifecycle.revision == 6


def test_commit_twice_from_the_same_envelope_conflicts(root: Root) -> None:
    env = job.create(root, spec())
    job.commit(env, S.KILLED, A.OPERATOR, "cancel")
    with pytest.raises(Conflict):
        job.commit(env, S.KILLED, A.OPERATOR, "cancel again")
    assert [r["revision"] for r in audit_of(root, env.id)] == [1, 2]


def _drive_to(root: Root, status: Status) -> None:
    """Make one job of ``status`` (it is the only job in the root)."""
    env = job.create(root, spec())
    if status is S.QUEUED:
        return
    if status is S.KILLED:
        job.commit(env, S.KILLED, A.OPERATOR, "x")
        return
    c = claimed(root)
    if status is S.IN_PROGRESS:
        return
    job.commit(c, status, A.WATCHDOG if status is S.STALE else A.AGENT, "x")


@pytest.mark.parametrize("frm", list(Status))
def test_illegal_commits_refused_with_nothing_written(root: Root, frm: Status) -> None:
    _drive_to(root, frm)
    [jid] = [i for q in ("incoming", "active", "done") for i in root.ids(q)]
    env = job.load(root, jid)
    assert env.status is frm
    before = snapshot(root)
    refused = 0
    for to in Status:
        for actor in Actor:
            if actor in TABLE.get((frm, to), ()):
                continue
            with pytest.raises(IllegalTransition):
                job.commit(env, to, actor, "nope")
            refused += 1
            assert snapshot(root) == before
    assert refused == len(Status) * len(Actor) - sum(
        len(v) for (f, _), v in TABLE.items() if f is frm
    )


@pytest.mark.parametrize(("frm", "to"), list(TABLE))
def test_every_legal_commit_lands_in_its_queue_dir(root: Root, frm: Status, to: Status) -> None:
    _drive_to(root, frm)
    [jid] = [i for q in ("incoming", "active", "done") for i in root.ids(q)]
    env = job.load(root, jid)
    for actor in sorted(TABLE[(frm, to)]):
        cur = job.load(root, jid)
        if cur.status is not frm:
            break  # second actor of the same row: only the first one can run
        new = job.commit(cur, to, actor, "go")
        assert new.status is to
        assert queues_holding(root, jid) == [QUEUE_DIR[to]]
        assert new.path == root.path / QUEUE_DIR[to] / jid
        assert new.lifecycle.revision == env.lifecycle.revision + 1
        line = audit_of(root, jid)[-1]
        assert (line["from"], line["to"], line["actor"]) == (frm, to, actor)


def test_commit_finds_a_job_that_moved_without_a_commit(root: Root) -> None:
    env = job.create(root, spec())
    os.rename(env.path, root.done / env.id)  # e.g. a misplaced dir fsck will move back
    new = job.commit(env, S.KILLED, A.OPERATOR, "cancel")
    assert new.path == root.done / env.id and queues_holding(root, env.id) == ["done"]


def test_commit_of_a_quarantined_job_is_refused(root: Root) -> None:
    env = job.create(root, spec())
    os.rename(env.path, root.quarantine / env.id)
    with pytest.raises(NotFound):
        job.commit(env, S.KILLED, A.OPERATOR, "cancel")


def test_commit_fsync_failure_leaves_job_as_it_was(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = job.create(root, spec())
    before = snapshot(root)

    def bad_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", bad_fsync)
    with pytest.raises(DurabilityError):
        job.commit(env, S.KILLED, A.OPERATOR, "cancel")
    monkeypatch.undo()
    assert snapshot(root) == before
    assert job.commit(env, S.KILLED, A.OPERATOR, "cancel").lifecycle.revision == 2


def test_commit_lock_taken_by_someone_else_times_out(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = job.create(root, spec())
    dfd = fs.open_dir(env.path)
    held = locks.try_lock(dfd, locks.COMMIT_LOCK)
    assert held is not None
    real = locks.lock
    monkeypatch.setattr(locks, "lock", lambda d, n, timeout=10.0: real(d, n, timeout=0.1))
    try:
        with pytest.raises(Exception, match="held by another process"):
            job.commit(env, S.KILLED, A.OPERATOR, "cancel")
        assert job.load(root, env.id).status is S.QUEUED
    finally:
        held.release()
        os.close(dfd)


# ---------------------------------------------------------------- load, liveness, kill requests


def test_load_by_id_and_by_path(root: Root) -> None:
    env = job.create(root, spec())
    a = job.load(root, env.id)
    b = job.load(root, env.path)
    c = job.load(root, str(env.path))
    assert a.lifecycle == b.lifecycle == c.lifecycle == env.lifecycle
    assert a.prompt == env.prompt and a.path == env.path
    claimed(root)
    moved = job.load(root, env.path)  # the old path: found where it went
    assert moved.path == root.active / env.id and moved.status is S.IN_PROGRESS


def test_load_refusals(root: Root) -> None:
    with pytest.raises(NotFound):
        job.load(root, "abcdefgh-unknown")
    with pytest.raises(BadInput):
        job.load(root, "..")
    env = job.create(root, spec())
    os.chmod(env.path / "job.json", 0o600)
    (env.path / "job.json").write_bytes(b"{")
    with pytest.raises(Corrupt):
        job.load(root, env.id)


def test_load_refuses_job_json_naming_another_job(root: Root) -> None:
    a = job.create(root, spec())
    b = job.create(root, spec())
    (b.path / "job.json").unlink()
    (b.path / "job.json").write_bytes((a.path / "job.json").read_bytes())
    with pytest.raises(Corrupt, match=f"names job {a.id}"):
        job.load(root, b.id)


def test_load_refuses_symlinked_files_and_dirs(root: Root, tmp_path: Path) -> None:
    env = job.create(root, spec())
    real = tmp_path / "real.json"
    real.write_bytes((env.path / "job.json").read_bytes())
    (env.path / "job.json").unlink()
    (env.path / "job.json").symlink_to(real)
    with pytest.raises(Corrupt, match="symlink"):
        job.load(root, env.id)
    os.symlink(env.path, root.done / "linked-00001")
    with pytest.raises(Corrupt, match="not a real directory"):
        job.load(root, "linked-00001")


def test_heartbeat_and_claim_is_free(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)
    lock = c.path / claim_lock_name(1)
    os.utime(lock, (1, 1))
    assert job.heartbeat(c)  # touches the attempt's claim lock
    now = os.stat(lock).st_mtime
    assert now > 1
    assert job.heartbeat_age(c.path, 1, now + 5) == pytest.approx(5)
    assert job.heartbeat_age(env.path, 1, 0) is None  # queued: neither lock nor legacy file
    assert not job.claim_is_free(root, c.path, c.id, 1)  # ours: never probed
    CLAIMS.release(job.claim_key(root, c.id, 1))
    assert job.claim_is_free(root, c.path, c.id, 1)
    job.commit(c, S.KILLED, A.AGENT, "x")
    assert not job.heartbeat(c)  # the job left active/


def test_a_claim_freshens_a_claim_lock_made_long_ago(root: Root) -> None:
    """A claim of attempt N that failed left ``.claim-N.lock`` behind; the claim that
    succeeds later must set its mtime, or the watchdog would read an hour of silence."""
    env = job.create(root, spec())
    dfd = fs.open_dir(env.path)
    try:
        held = locks.try_lock(dfd, claim_lock_name(1))  # a claimer that gave up at step 2
        assert held is not None
        held.release()
    finally:
        os.close(dfd)
    hour_ago = os.stat(env.path / "job.json").st_mtime - 3600
    os.utime(env.path / claim_lock_name(1), (hour_ago, hour_ago))
    c = claimed(root)
    now = os.stat(c.path / "job.json").st_mtime  # the claim's write, by the file system
    age = job.heartbeat_age(c.path, 1, now)
    assert age is not None and age < 60
    CLAIMS.release(job.claim_key(root, c.id, 1))


def test_a_hung_worker_that_wakes_never_freshens_the_next_attempts_heartbeat(
    root: Root,
) -> None:
    """The heartbeat is per attempt: attempt 1's worker, stopped until its job was made
    stale, requeued and claimed again, beats attempt 1's lock, not attempt 2's."""
    job.create(root, spec())
    first = claimed(root, "hung")
    stale = job.commit(first, S.STALE, A.WATCHDOG, "no heartbeat")
    job.commit(stale, S.QUEUED, A.OPERATOR, "requeued", claim=None)
    second = claimed(root, "next")
    assert second.lifecycle.attempt == 2
    os.utime(second.path / claim_lock_name(2), (1000, 1000))
    assert job.heartbeat(first)  # the woken worker's beat, before it learns it was fenced
    assert job.heartbeat_age(second.path, 2, 1010) == pytest.approx(10)
    for env in (first, second):
        CLAIMS.release(job.claim_key(root, env.id, env.lifecycle.attempt))


def test_a_legacy_heartbeat_file_counts_when_newer(root: Root) -> None:
    """A job claimed by a worker of the version that touched ``heartbeat``: the newer of
    that file and the claim lock is the last sign of life, so neither is mistaken for
    silence (an old ``heartbeat`` of an earlier attempt never hides a fresh claim)."""
    job.create(root, spec())
    c = claimed(root)
    lock, legacy = c.path / claim_lock_name(1), c.path / "heartbeat"
    legacy.touch()
    os.utime(lock, (1000, 1000))
    os.utime(legacy, (2000, 2000))
    assert job.heartbeat_age(c.path, 1, 2010) == pytest.approx(10)  # the old worker's beat
    os.utime(legacy, (500, 500))
    assert job.heartbeat_age(c.path, 1, 2010) == pytest.approx(1010)  # the lock is newer
    lock.unlink()
    assert job.heartbeat_age(c.path, 1, 2010) == pytest.approx(1510)  # the legacy file alone
    CLAIMS.release(job.claim_key(root, c.id, 1))


def test_kill_request_names_the_attempt(root: Root) -> None:
    job.create(root, spec())
    c = claimed(root)
    assert job.kill_requested(c.path, 1) is None
    job.request_kill(c, "ann")
    assert job.kill_requested(c.path, 1) == "ann"
    assert job.kill_requested(c.path, 2) is None  # a late request never kills attempt 2
    job.request_kill(c, "bob")  # replaced atomically
    assert job.kill_requested(c.path, 1) == "bob"
    (c.path / "control" / "kill").write_text("not json")
    assert job.kill_requested(c.path, 1) is None


def test_lifecycle_written_is_valid_json_with_only_lifecycle_fields(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)
    job.commit(c, S.FAILED, A.AGENT, "x")
    data = json.loads((root.done / env.id / "job.json").read_bytes())
    # the kept mark (farro keep) is written only when set
    assert set(data) == set(Lifecycle.model_fields) - {"kept"}


def test_claim_checks_given_ids_before_they_touch_a_path(root: Root) -> None:
    env = job.create(root, spec())
    os.rename(env.path, root.done / env.id)  # a queued job misplaced in done/ (pre-fsck)
    before = snapshot(root)
    with pytest.raises(BadInput):
        job.claim(root, worker(), ids=[f"../done/{env.id}"])
    assert snapshot(root) == before
    assert job.load(root, env.id).status is S.QUEUED


@pytest.mark.parametrize("field", ["id", "created_at", "schema_version"])
def test_commit_never_rewrites_the_identity_of_a_job(root: Root, field: str) -> None:
    env = job.create(root, spec())
    values: dict[str, Any] = {"id": "another-job-0001", "created_at": utcnow()}
    value = {**values, "schema_version": "1.0.1"}[field]
    before = snapshot(root)
    with pytest.raises(ValueError, match=field):
        job.commit(env, S.KILLED, A.OPERATOR, "x", **{field: value})
    assert snapshot(root) == before
    assert job.load(root, env.id).status is S.QUEUED


def test_write_not_durable_is_still_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    fs.write_file(tmp_path / "f", b"one", durable=False)
    fs.write_file(tmp_path / "f", b"two", durable=False)
    assert calls == []
    assert (tmp_path / "f").read_bytes() == b"two" and os.listdir(tmp_path) == ["f"]
    fs.write_file(tmp_path / "f", b"three")
    assert len(calls) == 2  # the file, then its directory


def test_a_reused_id_never_serves_the_old_prompt(root: Root) -> None:
    """Job X is quarantined; another process creates a new job X: this process, which read
    the old X, must run and show the new prompt, not its cached copy of the old one."""
    old = job.create(root, spec("old prompt: rm -rf the old workspace", id="reused-id-0001"))
    assert job.load(root, old.id).prompt.prompt.startswith("old")  # cached here
    os.rename(old.path, root.quarantine / old.id)
    create_elsewhere(root, old.id, "new")
    assert job.load(root, old.id).prompt.prompt == "new"
    c = claimed(root)
    assert c.id == old.id and c.prompt.prompt == "new"


def test_a_job_ranked_by_a_prompt_its_directory_no_longer_holds_is_read_again_at_claim(
    root: Root, kept: str, tmp_path: Path
) -> None:
    """A directory removed and made again between two looks can come back at the inode
    number it had, which no listing tells apart: the ranking then holds the old job's
    place and preset. The claim reads the prompt under its locks anyway: a worker
    lacking the new job's preset leaves it untouched, and the job is ranked anew."""
    job.create(root, spec("old", id="again-01"))
    other = job.create(root, spec("other", priority=1))
    assert job.candidates(root) == [other.id, "again-01"]
    _check_kept(root, kept)
    # the same directory (inode) now holds another job of that id: urgent, and a preset's
    elsewhere = Root.init(tmp_path / "elsewhere")
    job.create(elsewhere, spec("new", id="again-01", priority=5, agent={"preset": "claude"}))
    for name in ("job.json", "prompt.json"):
        os.replace(elsewhere.incoming / "again-01" / name, root.incoming / "again-01" / name)
    before = (root.incoming / "again-01" / "job.json").read_bytes()

    def lacks_claude(preset: str | None) -> bool:
        return preset == "claude"

    # ranked as the old command job, "again-01" is tried after `other`, whose claim ends the loop
    assert claimed(root, pass_by=lacks_claude).id == other.id
    # with only "again-01" left, the claim finds it needs claude: left as it was
    assert job.claim(root, worker("w2"), pass_by=lacks_claude) is None
    assert (root.incoming / "again-01" / "job.json").read_bytes() == before
    assert queues_holding(root, "again-01") == ["incoming"]
    assert [(k[0], k[2], k[3]) for k in job._queue_keys(root)] == [(-5, "again-01", "claude")]
    assert claimed(root, "w3").id == "again-01"  # a worker with the preset takes it


def test_a_watched_queue_is_still_listed_now_and_then(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event the watch never gets (here read away by another reader of the same
    inotify queue) hides a job only until the next listing, at most _RELIST_S away."""
    monkeypatch.setattr(ranking, "_WATCH_FROM", 0)
    first = job.create(root, spec("first"))
    assert job.candidates(root) == [first.id]
    _check_kept(root, "watched")
    queue = job._queue(root)
    assert queue._watch is not None
    create_elsewhere(root, "unannounced", "late", priority=1)
    assert queue._watch.changed() == {"unannounced"}  # its event, gone
    monkeypatch.setattr(ranking, "_RELIST_S", float("inf"))
    assert job.candidates(root) == [first.id]  # what the events alone give
    monkeypatch.setattr(ranking, "_RELIST_S", 0.0)
    assert job.candidates(root) == ["unannounced", first.id]
