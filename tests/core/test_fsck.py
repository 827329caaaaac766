"""fsck: reconciles directories with job.json, finds dead claims, quarantines what it cannot
read (never deleting), clears tmp/ leftovers, recovers unaudited revisions; without
--repair it changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from farro_core import fs, job, locks
from farro_core.fsck import TMP_MAX_AGE_S, Finding, fsck
from farro_core.locks import CLAIMS, claim_lock_name
from farro_core.root import Root
from farro_core.transitions import QUEUE_DIR, Actor, Status

from .helpers import audit_of, claimed, queues_holding, snapshot, spec, worker

S, A = Status, Actor


def kinds(findings: list[Finding]) -> list[str]:
    return sorted(f.kind for f in findings)


def check_then_repair(root: Root) -> list[Finding]:
    """fsck without repair must change nothing; then repair; then fsck finds nothing."""
    before = snapshot(root)
    report = fsck(root)
    assert snapshot(root) == before, "fsck without --repair changed the disk"
    assert not any(f.repaired for f in report)
    repaired = fsck(root, repair=True)
    assert kinds(repaired) == kinds(report)
    assert fsck(root) == [], "a second fsck still found something"
    return repaired


def crash_claim(root: Root) -> str:
    """Claim a job, then die without committing: the claim lock is freed, nothing else."""
    c = claimed(root)
    CLAIMS.release(job.claim_key(root, c.id, c.lifecycle.attempt))
    return c.id


def drop_last_audit_line(root: Root, job_id: str) -> None:
    lines = root.audit_file.read_bytes().splitlines(keepends=True)
    idx = max(i for i, ln in enumerate(lines) if json.loads(ln)["job"] == job_id)
    root.audit_file.write_bytes(b"".join(lines[:idx] + lines[idx + 1 :]))


def quarantined(root: Root) -> set[str]:
    return set(os.listdir(root.quarantine))


def test_healthy_root_has_no_findings(root: Root) -> None:
    job.create(root, spec("queued"))
    held = job.create(root, spec("running"))
    job.commit(job.create(root, spec("killed")), S.KILLED, A.OPERATOR, "x")
    c = job.claim(root, worker(), ids=[held.id])
    assert c is not None
    before = snapshot(root)
    assert fsck(root) == []
    assert fsck(root, repair=True) == []
    assert snapshot(root) == before


MISPLACED = [(s, q) for s in Status for q in ("incoming", "active", "done") if QUEUE_DIR[s] != q]


@pytest.mark.parametrize(("status", "wrong"), MISPLACED)
def test_misplaced_dir_moved_back(root: Root, status: Status, wrong: str) -> None:
    env = job.create(root, spec())
    if status is not S.QUEUED:
        c = claimed(root)
        if status is S.STALE:
            job.commit(c, S.STALE, A.WATCHDOG, "x")
        elif status is not S.IN_PROGRESS:
            job.commit(c, status, A.AGENT, "x")
    path = root.locate(env.id)
    os.rename(path, root.path / wrong / env.id)
    report = fsck(root)
    assert [(f.kind, f.path) for f in report] == [("misplaced", f"{wrong}/{env.id}")]
    repaired = check_then_repair(root)
    assert repaired[0].repaired
    assert queues_holding(root, env.id) == [QUEUE_DIR[status]]
    assert job.load(root, env.id).status is status  # in-progress: our claim is still held


def test_in_progress_with_free_claim_lock_becomes_stale(root: Root) -> None:
    job.create(root, spec())
    jid = crash_claim(root)
    [f] = fsck(root)
    assert (f.kind, f.path, f.repaired) == ("stale", f"active/{jid}", False)
    assert "claim lock of attempt 1 is free" in f.detail
    check_then_repair(root)
    env = job.load(root, jid)
    assert env.status is S.STALE and env.lifecycle.revision == 3
    line = audit_of(root, jid)[-1]
    assert (line["from"], line["to"], line["actor"], line["revision"]) == (
        "in-progress",
        "stale",
        "watchdog",
        3,
    )


def test_in_progress_with_a_held_claim_is_left_alone(root: Root) -> None:
    job.create(root, spec("ours"))
    other = job.create(root, spec("theirs"))
    claimed(root)  # held in this process's registry
    c = claimed(root)
    assert c.id == other.id
    CLAIMS.release(job.claim_key(root, c.id, 1))
    dfd = fs.open_dir(c.path)
    try:
        held = locks.try_lock(dfd, claim_lock_name(1))  # another holder, not registered
        assert held is not None
        assert fsck(root, repair=True) == []
        held.release()
        assert kinds(fsck(root)) == ["stale"]
    finally:
        os.close(dfd)


def write_crashed_claim(root: Root, env_id: str) -> None:
    """What claim leaves after a crash right after step 3: in-progress, still in incoming/."""
    dfd = fs.open_dir(root.incoming / env_id)
    try:
        lc = job.read_lifecycle(dfd, env_id)
        new = lc.model_copy(
            update={"status": S.IN_PROGRESS, "attempt": lc.attempt + 1, "revision": lc.revision + 1}
        )
        fs.write_at(dfd, "job.json", (new.model_dump_json(indent=2) + "\n").encode())
    finally:
        os.close(dfd)


def test_crash_after_claim_step_3_is_recovered(root: Root) -> None:
    env = job.create(root, spec())
    write_crashed_claim(root, env.id)
    assert job.claim(root, worker()) is None  # not queued: nobody claims it
    assert kinds(fsck(root)) == ["misplaced", "stale", "unaudited"]
    check_then_repair(root)
    now = job.load(root, env.id)
    assert now.status is S.STALE and now.path == root.active / env.id
    assert now.lifecycle.revision == 3
    lines = audit_of(root, env.id)
    assert sorted(r["revision"] for r in lines) == [1, 2, 3]
    [rec] = [r for r in lines if r["event"] == "recovered"]
    assert (rec["revision"], rec["to"], rec["actor"]) == (2, "in-progress", "fsck")


# ---------------------------------------------------------------- corrupt entries


def corrupt_truncated(root: Root, env_path: Path, tmp: Path) -> None:
    os.chmod(env_path / "job.json", 0o600)
    data = (env_path / "job.json").read_bytes()
    (env_path / "job.json").write_bytes(data[: len(data) // 2])


def corrupt_symlinked_job_json(root: Root, env_path: Path, tmp: Path) -> None:
    (tmp / "job.json").write_bytes((env_path / "job.json").read_bytes())
    (env_path / "job.json").unlink()
    (env_path / "job.json").symlink_to(tmp / "job.json")


def corrupt_missing_prompt(root: Root, env_path: Path, tmp: Path) -> None:
    (env_path / "prompt.json").unlink()


def corrupt_empty_job_json(root: Root, env_path: Path, tmp: Path) -> None:
    os.chmod(env_path / "job.json", 0o600)
    (env_path / "job.json").write_bytes(b"")


def corrupt_future_schema(root: Root, env_path: Path, tmp: Path) -> None:
    data = json.loads((env_path / "job.json").read_bytes())
    data["schema_version"] = "2.0.0"
    fs.write_file(env_path / "job.json", json.dumps(data).encode())


def corrupt_other_id(root: Root, env_path: Path, tmp: Path) -> None:
    data = json.loads((env_path / "job.json").read_bytes())
    data["id"] = "someone-else-0001"
    fs.write_file(env_path / "job.json", json.dumps(data).encode())


@pytest.mark.parametrize(
    "damage",
    [
        corrupt_truncated,
        corrupt_symlinked_job_json,
        corrupt_missing_prompt,
        corrupt_empty_job_json,
        corrupt_future_schema,
        corrupt_other_id,
    ],
    ids=lambda f: f.__name__,
)
def test_corrupt_job_dir_quarantined_never_deleted(root: Root, tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    good = job.create(root, spec("good"))
    env = job.create(root, spec("bad"))
    outside = tmp_path / "outside"
    outside.mkdir()
    damage(root, env.path, outside)
    contents = {
        n: os.readlink(env.path / n) if (env.path / n).is_symlink() else (env.path / n).read_bytes()
        for n in os.listdir(env.path)
    }
    outside_before = {n: (outside / n).read_bytes() for n in os.listdir(outside)}
    [f] = fsck(root)
    assert (f.kind, f.path) == ("corrupt", f"incoming/{env.id}")
    check_then_repair(root)
    assert quarantined(root) == {env.id, f"{env.id}.reason.txt"}
    q = root.quarantine / env.id
    moved = {
        n: os.readlink(q / n) if (q / n).is_symlink() else (q / n).read_bytes()
        for n in os.listdir(q)
    }
    assert moved == contents  # moved whole, nothing dropped
    reason = (root.quarantine / f"{env.id}.reason.txt").read_text()
    assert f"from: incoming/{env.id}" in reason and "reason: " in reason
    assert {n: (outside / n).read_bytes() for n in os.listdir(outside)} == outside_before
    assert root.ids("incoming") == [good.id]
    assert job.load(root, good.id).status is S.QUEUED


def test_symlinked_job_dir_quarantined_as_a_link(root: Root, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "precious").write_bytes(b"keep me")
    os.symlink(target, root.active / "linked-job-0001")
    [f] = fsck(root)
    assert f.kind == "corrupt" and "not a real directory" in f.detail
    check_then_repair(root)
    q = root.quarantine / "linked-job-0001"
    assert q.is_symlink() and os.readlink(q) == str(target)
    assert (target / "precious").read_bytes() == b"keep me"
    assert "not a real directory" in (root.quarantine / "linked-job-0001.reason.txt").read_text()


@pytest.mark.parametrize("name", ["not an id", "short", "abcdefgh\n", "../../", "x.y.zzzzzzzz"])
def test_non_id_names_quarantined(root: Root, name: str) -> None:
    if "/" in name:
        name = "-dotdot-"  # cannot be a file name; a leading '-' is not an id either
    (root.done / name).mkdir()
    (root.done / name / "f").write_bytes(b"data")
    [f] = fsck(root)
    assert (f.kind, f.detail) == ("corrupt", "name is not a job id")
    check_then_repair(root)
    assert (root.quarantine / name / "f").read_bytes() == b"data"
    assert "name is not a job id" in (root.quarantine / f"{name}.reason.txt").read_text()


def test_a_plain_file_in_a_queue_is_quarantined(root: Root) -> None:
    (root.incoming / "abcdefgh0001").write_bytes(b"oops")
    assert kinds(fsck(root)) == ["corrupt"]
    check_then_repair(root)
    assert (root.quarantine / "abcdefgh0001").read_bytes() == b"oops"


def test_quarantine_never_overwrites_an_earlier_one(root: Root) -> None:
    for _ in range(3):
        (root.done / "not-an-id!").mkdir()
        fsck(root, repair=True)
    names = quarantined(root)
    assert len([n for n in names if not n.endswith(".reason.txt")]) == 3
    assert len([n for n in names if n.endswith(".reason.txt")]) == 3


# ---------------------------------------------------------------- tmp/ and leftovers


def test_old_tmp_leftovers_quarantined_young_kept(root: Root) -> None:
    old = root.tmp / "abcdefgh0001.123.abc"
    old.mkdir()
    (old / "prompt.json").write_bytes(b"{}")
    young = root.tmp / "abcdefgh0002.123.def"
    young.mkdir()
    stamp = time.time() - TMP_MAX_AGE_S - 60
    os.utime(old, (stamp, stamp))
    [f] = fsck(root)
    assert (f.kind, f.path) == ("tmp", "tmp/abcdefgh0001.123.abc")
    check_then_repair(root)
    assert os.listdir(root.tmp) == ["abcdefgh0002.123.def"]
    assert (root.quarantine / "abcdefgh0001.123.abc" / "prompt.json").read_bytes() == b"{}"
    assert (root.quarantine / "abcdefgh0001.123.abc.reason.txt").exists()
    # the young one becomes old later
    assert kinds(fsck(root, now=time.time() + TMP_MAX_AGE_S + 60)) == ["tmp"]


def test_tmp_leftover_inside_a_job_dir(root: Root) -> None:
    env = job.create(root, spec())
    junk = env.path / "job.json.tmp.999.abcdef"
    junk.write_bytes(b"half a write")
    before_job = (env.path / "job.json").read_bytes()
    [f] = fsck(root)
    assert (f.kind, f.path) == ("leftover", f"incoming/{env.id}/job.json.tmp.999.abcdef")
    check_then_repair(root)
    assert not junk.exists()
    assert (env.path / "job.json").read_bytes() == before_job
    name = f"{env.id}.job.json.tmp.999.abcdef"
    assert (root.quarantine / name).read_bytes() == b"half a write"
    assert (root.quarantine / f"{name}.reason.txt").exists()


# ---------------------------------------------------------------- duplicates


def test_duplicate_across_queues_keeps_the_higher_revision(root: Root) -> None:
    env = job.create(root, spec())
    copy = root.tmp / "copy"
    os.mkdir(copy)
    for n in ("prompt.json", "job.json"):
        (copy / n).write_bytes((env.path / n).read_bytes())
    job.commit(env, S.KILLED, A.OPERATOR, "cancel")  # revision 2, in done/
    os.rename(copy, root.incoming / env.id)  # the revision-1 copy comes back
    assert kinds(fsck(root)) == ["duplicate"]
    check_then_repair(root)
    assert queues_holding(root, env.id) == ["done"]
    assert job.load(root, env.id).lifecycle.revision == 2
    assert quarantined(root) == {env.id, f"{env.id}.reason.txt"}
    assert "keeping the higher revision" in (root.quarantine / f"{env.id}.reason.txt").read_text()


def test_an_equal_revision_copy_in_incoming_is_the_one_quarantined(root: Root) -> None:
    """A finished job copied back into incoming/ (same revision): the copy goes, as the
    watchdog would have it; the finished original stays."""
    env = job.create(root, spec())
    done = job.commit(env, S.KILLED, A.OPERATOR, "cancel")
    shutil.copytree(done.path, root.tmp / "copy")
    os.rename(root.tmp / "copy", root.incoming / env.id)
    check_then_repair(root)
    assert queues_holding(root, env.id) == ["done"]
    assert "from: incoming/" in (root.quarantine / f"{env.id}.reason.txt").read_text()


# ---------------------------------------------------------------- audit recovery


def test_unaudited_revision_gets_a_recovered_line(root: Root) -> None:
    env = job.create(root, spec())
    job.commit(env, S.KILLED, A.OPERATOR, "cancel")
    drop_last_audit_line(root, env.id)
    [f] = fsck(root)
    assert f.kind == "unaudited" and "revision 2" in f.detail
    check_then_repair(root)
    recs = audit_of(root, env.id)
    assert [r["revision"] for r in recs] == [1, 2]
    assert recs[-1]["event"] == "recovered" and recs[-1]["to"] == "killed"


def test_created_but_never_audited(root: Root) -> None:
    env = job.create(root, spec())
    root.audit_file.write_bytes(b"")
    assert kinds(fsck(root)) == ["unaudited"]
    check_then_repair(root)
    assert [r["revision"] for r in audit_of(root, env.id)] == [1]


def test_a_lost_line_behind_a_later_one_is_recovered(root: Root) -> None:
    """A crash between job.json and the audit log, then another commit (say the watchdog's):
    the missing revision is not the newest, and must still be recovered."""
    env = job.create(root, spec())
    write_crashed_claim(root, env.id)  # revision 2, unaudited
    os.rename(env.path, root.active / env.id)
    job.commit(job.load(root, env.id), S.STALE, A.WATCHDOG, "worker gone")  # revision 3
    assert kinds(fsck(root)) == ["unaudited"]
    check_then_repair(root)
    assert sorted(r["revision"] for r in audit_of(root, env.id)) == [1, 2, 3]


# ---------------------------------------------------------------- everything at once


def test_without_repair_nothing_changes_with_every_problem_at_once(
    root: Root, tmp_path: Path
) -> None:
    job.create(root, spec())
    crash_claim(root)
    a = job.create(root, spec())
    os.rename(a.path, root.done / a.id)
    b = job.create(root, spec())
    corrupt_truncated(root, b.path, tmp_path)
    (root.active / "junk").mkdir()
    old = root.tmp / "leftover"
    old.mkdir()
    os.utime(old, (1, 1))
    os.symlink(tmp_path, root.done / "linked-job-0001")
    c = job.create(root, spec())
    (c.path / "prompt.json.tmp.1.2").write_bytes(b"")
    repaired = check_then_repair(root)
    assert kinds(repaired) == [
        "corrupt",
        "corrupt",
        "corrupt",
        "leftover",
        "misplaced",
        "stale",
        "tmp",
    ]
    assert all(f.repaired for f in repaired)
