"""Listings: fast rows from job.json/prompt.json; an unreadable job is a "corrupt" row,
never a failed listing; a job that moved away is skipped."""

from __future__ import annotations

import os
from pathlib import Path

from farro_core import job, listing
from farro_core.root import Root
from farro_core.transitions import Actor, Status

from .helpers import claimed, create_elsewhere, spec, worker

S, A = Status, Actor


def test_rows_reflect_job_and_prompt(root: Root) -> None:
    q = job.create(root, spec("queued one", priority=4, labels={"team": "a"}, max_attempts=5))
    r = job.create(root, spec("running one"))
    assert job.claim(root, worker("w9"), ids=[r.id]) is not None
    rows = {row.id: row for row in listing.scan(root)}
    assert set(rows) == {q.id, r.id}
    a = rows[q.id]
    assert (a.queue, a.status, a.title, a.priority, a.max_attempts) == (
        "incoming",
        "queued",
        "queued one",
        4,
        5,
    )
    assert (a.attempt, a.revision, a.worker, a.labels) == (0, 1, None, {"team": "a"})
    assert a.created_at and a.updated_at and a.reason.startswith("created by")
    b = rows[r.id]
    assert (b.queue, b.status, b.attempt, b.revision, b.worker) == (
        "active",
        "in-progress",
        1,
        2,
        "w9",
    )
    assert b.claimed_at is not None and b.verdict is None


def test_scan_order_and_queue_filter(root: Root) -> None:
    envs = [job.create(root, spec(str(i))) for i in range(5)]
    job.commit(envs[2], S.KILLED, A.OPERATOR, "x")
    assert [r.id for r in listing.scan(root, ["incoming"])] == [
        e.id for e in envs if e is not envs[2]
    ]
    assert [r.id for r in listing.scan(root, ["done"])] == [envs[2].id]
    assert [r.queue for r in listing.scan(root)] == ["incoming"] * 4 + ["done"]


def test_a_job_that_moves_on_during_a_scan_is_listed_once(root: Root) -> None:
    env = job.create(root, spec())
    rows = listing.scan(root)
    first = next(rows)  # read in incoming/, queued
    assert (first.id, first.queue, first.status) == (env.id, "incoming", "queued")
    claimed(root)  # incoming/ -> active/, before the scan lists active/
    assert list(rows) == []


def test_a_status_filter_reads_no_prompt_of_other_jobs(root: Root) -> None:
    """Listing one status out of a big done/ must not pay for every prompt.json."""
    killed, other = (job.create(root, spec(str(i))) for i in range(2))
    job.commit(killed, S.KILLED, A.OPERATOR, "x")
    c = claimed(root)
    assert c.id == other.id
    done = job.commit(c, S.SUCCEEDED, A.AGENT, "ok")
    prompt = done.path / "prompt.json"
    os.chmod(prompt, 0o644)
    prompt.write_text("{ not json")  # would be an unreadable row if it were read
    assert [r.id for r in listing.scan(root, ["done"], {"killed"})] == [killed.id]
    assert {r.status for r in listing.scan(root, ["done"])} == {"killed", "corrupt"}


def test_rows_follow_commits(root: Root) -> None:
    env = job.create(root, spec())
    c = claimed(root)
    job.commit(c, S.FAILED, A.AGENT, "rubric failed")
    [row] = list(listing.scan(root))
    assert (row.queue, row.status, row.revision, row.reason) == (
        "done",
        "failed",
        3,
        "rubric failed",
    )
    assert row.id == env.id


def test_corrupt_job_is_a_row_not_a_failure(root: Root, tmp_path: Path) -> None:
    good = job.create(root, spec())
    bad = job.create(root, spec())
    os.chmod(bad.path / "job.json", 0o600)
    (bad.path / "job.json").write_bytes(b"{not json")
    (tmp_path / "t").mkdir()
    os.symlink(tmp_path / "t", root.incoming / "linked-job-0001")
    rows = {r.id: r for r in listing.scan(root)}
    assert rows[good.id].status == "queued"
    assert rows[bad.id].status == "corrupt" and rows[bad.id].title.startswith("(unreadable")
    assert rows["linked-job-0001"].status == "corrupt"
    assert "not a real directory" in rows["linked-job-0001"].reason


def test_symlinked_job_json_is_corrupt(root: Root, tmp_path: Path) -> None:
    env = job.create(root, spec())
    (tmp_path / "j").write_bytes((env.path / "job.json").read_bytes())
    (env.path / "job.json").unlink()
    (env.path / "job.json").symlink_to(tmp_path / "j")
    row = listing.read_row(root, "incoming", env.id)
    assert row is not None and row.status == "corrupt" and "symlink" in row.reason


def test_missing_file_is_corrupt_and_gone_job_is_none(root: Root) -> None:
    env = job.create(root, spec())
    (env.path / "job.json").unlink()
    row = listing.read_row(root, "incoming", env.id)
    assert row is not None and row.status == "corrupt"
    assert listing.read_row(root, "active", env.id) is None  # not there: skipped
    assert listing.read_row(root, "incoming", "abcdefgh0000") is None


def test_non_id_entries_are_not_listed(root: Root) -> None:
    (root.incoming / "not an id").mkdir()
    (root.incoming / ".hidden-dir0").mkdir()
    assert list(listing.scan(root)) == []


def test_a_reused_id_shows_the_new_title(root: Root) -> None:
    old = job.create(root, spec("old title", id="reused-id-0001"))
    assert [r.title for r in listing.scan(root)] == ["old title"]  # cached now
    os.rename(old.path, root.quarantine / old.id)
    create_elsewhere(root, old.id, "new title")
    assert [r.title for r in listing.scan(root)] == ["new title"]


def test_job_state_follows_the_job_and_says_gone_when_it_left(root: Root) -> None:
    env = job.create(root, spec())
    assert listing.job_state(root, env.id) == ("queued", 0)
    c = claimed(root)
    assert listing.job_state(root, env.id) == ("in-progress", 1)
    job.commit(c, Status.FAILED, Actor.AGENT, "exit 1")
    job.release_claim(c)
    assert listing.job_state(root, env.id) == ("failed", 1)
    assert listing.job_state(root, "abcdefgh0000") == ("gone", 0)
