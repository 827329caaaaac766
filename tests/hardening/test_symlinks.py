"""Symlinks planted under a root are never followed, for reading or for writing.

Each case plants a link that points outside the root at a bait that looks
valid (a queued job, a kill request), then runs the operations that would touch
it (claim, load, commit, kill, fsck). The bait must be byte-for-byte untouched,
nothing may be read through the link, and ``fsck --repair`` moves the link (or
the job it poisons) to quarantine/ with a reason that says "symlink".
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from farro_core import fsck, job, operations
from farro_core.errors import Corrupt, FarroError
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
from farro_core.transitions import Actor, Status

from .helpers import make_job, quarantined, snapshot

ME = WorkerIdentity.current("hardening")


@pytest.fixture
def outside(tmp_path: Path, root: Root) -> Path:
    """A bait outside the root: a complete, valid queued job directory and a kill file."""
    bait = tmp_path / "outside"
    bait.mkdir()
    donor = make_job(root, "bait job")
    shutil.copytree(donor.path, bait / "job", symlinks=True)
    # the donor itself is removed from the root so it cannot be claimed legitimately
    shutil.rmtree(donor.path)
    (bait / "kill").write_text(json.dumps({"attempt": 1, "by": "attacker"}))
    (bait / "secret.log").write_text("do not overwrite\n")
    return bait


def _release_all() -> None:
    from farro_core.locks import CLAIMS

    for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
        CLAIMS.release(key)


@pytest.fixture(autouse=True)
def _no_claims_left() -> object:
    yield
    _release_all()


def _fresh_process(root: Root) -> None:
    """Forget what this process parsed (prompt.json is cached): read the disk anew."""
    root.drop_caches()


def _repair(root: Root) -> list[fsck.Finding]:
    return fsck.fsck(root, repair=True)


def test_job_dir_symlink_is_never_claimed_loaded_or_followed(root: Root, outside: Path) -> None:
    bait_id = json.loads((outside / "job" / "job.json").read_text())["id"]
    os.symlink(outside / "job", root.incoming / bait_id)
    before = snapshot(outside)

    assert job.claim(root, ME) is None
    with pytest.raises(Corrupt, match="not a real directory"):
        job.load(root, bait_id)
    with pytest.raises(FarroError):
        operations.kill(root, bait_id, wait_s=0)
    assert snapshot(outside) == before

    findings = _repair(root)
    assert [f.kind for f in findings if f.path == f"incoming/{bait_id}"] == ["corrupt"]
    q = quarantined(root)
    assert bait_id in q and "symlink" in q[bait_id]
    assert os.path.islink(root.quarantine / bait_id)  # the link itself moved, not its target
    assert not os.path.lexists(root.incoming / bait_id)
    assert snapshot(outside) == before


@pytest.mark.parametrize("name", ["job.json", "prompt.json"])
def test_job_file_symlink_is_never_read_or_replaced(root: Root, outside: Path, name: str) -> None:
    victim = make_job(root, "victim")
    other = make_job(root, "innocent bystander")
    target = outside / "job" / name
    os.unlink(victim.path / name)
    os.symlink(target, victim.path / name)
    before = snapshot(outside)
    _fresh_process(root)

    with pytest.raises(Corrupt, match="symlink"):
        job.load(root, victim.id)
    got = job.claim(root, ME)  # the poisoned job is skipped, the next one is claimed
    assert got is not None and got.id == other.id
    assert job.claim(root, ME) is None
    assert snapshot(outside) == before
    # the poisoned job is still queued where it was: claim wrote nothing through the link
    assert os.path.islink(root.incoming / victim.id / name)

    _repair(root)
    q = quarantined(root)
    assert victim.id in q and "symlink" in q[victim.id], q
    assert snapshot(outside) == before


@pytest.mark.parametrize("entry", [".claim-1.lock", ".commit.lock", "heartbeat"])
def test_lock_and_heartbeat_symlinks_are_not_followed(
    root: Root, outside: Path, entry: str
) -> None:
    victim = make_job(root, "victim")
    os.symlink(outside / "secret.log", victim.path / entry)
    before = snapshot(outside)
    try:
        got = job.claim(root, ME)
    except OSError:
        got = None  # refusing loudly is acceptable; following the link is not
    if got is not None:
        job.heartbeat(got)
        job.commit(got, Status.SUCCEEDED, Actor.AGENT, "done", worker=ME.name)
    assert snapshot(outside) == before
    _repair(root)
    assert snapshot(outside) == before
    assert any("symlink" in reason for reason in quarantined(root).values())


def test_control_kill_symlink_is_not_read_or_written(root: Root, outside: Path) -> None:
    env = make_job(root, "running job")
    got = job.claim(root, ME)
    assert got is not None and got.id == env.id
    control = got.path / "control"
    control.mkdir(mode=0o700)
    os.symlink(outside / "kill", control / "kill")
    before = snapshot(outside)

    assert job.kill_requested(got.path, got.lifecycle.attempt) is None  # not read through
    job.request_kill(got, "operator")  # replaces the link, never writes through it
    assert not os.path.islink(control / "kill")
    assert job.kill_requested(got.path, got.lifecycle.attempt) == "operator"
    assert snapshot(outside) == before


def test_control_dir_symlink_is_not_read_or_written(root: Root, outside: Path) -> None:
    make_job(root, "running job")
    got = job.claim(root, ME)
    assert got is not None
    os.symlink(outside, got.path / "control")
    before = snapshot(outside)

    assert job.kill_requested(got.path, got.lifecycle.attempt) is None
    with pytest.raises(OSError):
        job.request_kill(got, "operator")
    assert snapshot(outside) == before

    _repair(root)
    assert any("symlink" in r for r in quarantined(root).values()), quarantined(root)
    assert not os.path.lexists(got.path / "control")
    assert snapshot(outside) == before


def test_log_symlink_is_quarantined_by_fsck(root: Root, outside: Path) -> None:
    env = make_job(root, "job with a planted log")
    (env.path / "logs").mkdir(mode=0o700)
    os.symlink(outside / "secret.log", env.path / "logs" / "attempt-1.log")
    before = snapshot(outside)
    findings = _repair(root)
    assert any("symlink" in f.detail for f in findings), findings
    assert not os.path.lexists(env.path / "logs" / "attempt-1.log")
    assert any("symlink" in r for r in quarantined(root).values())
    # the job itself is fine and stays queued
    assert job.load(root, env.id).status is Status.QUEUED
    assert snapshot(outside) == before


def test_queue_entries_that_are_symlinks_to_files_are_quarantined(
    root: Root, outside: Path
) -> None:
    os.symlink(outside / "secret.log", root.done / "01JABCDEFGHJKMNPQRSTVWXYZ0")
    before = snapshot(outside)
    assert job.claim(root, ME) is None
    _repair(root)
    q = quarantined(root)
    assert "01JABCDEFGHJKMNPQRSTVWXYZ0" in q and "symlink" in q["01JABCDEFGHJKMNPQRSTVWXYZ0"]
    assert snapshot(outside) == before


def test_inbox_symlink_is_rejected_not_read(root: Root, tmp_path: Path) -> None:
    from farro_core import inbox

    bait = tmp_path / "request.json"
    bait.write_text(json.dumps({"jobs": [{"prompt": "smuggled in through a symlink"}]}))
    before = bait.read_bytes()
    os.symlink(bait, root.inbox / "evil.json")
    results = inbox.ingest(root)
    assert [r.outcome for r in results] == ["rejected"]
    assert root.ids("incoming") == []  # nothing was read through the link
    assert not os.path.lexists(root.inbox / "evil.json")
    errors = [p for p in root.rejected.iterdir() if p.name.endswith(".error.txt")]
    assert len(errors) == 1 and "symlink" in errors[0].read_text()
    assert bait.read_bytes() == before
