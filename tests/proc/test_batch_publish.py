"""A batch is all or nothing even when its creator dies between two publishing renames.

A child process creates a batch of jobs with ``FARRO_CRASH_AT`` set at the two
batch points; recovery (``fsck --repair``, or the manager's tmp/ sweep) must
then publish every job of the batch exactly once. A crash before the intent is
recorded must publish none, and a live creator's intent must never be touched.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from farro_core import crash, publish
from farro_core.envelope import load_lifecycle, load_prompt
from farro_core.fsck import TMP_MAX_AGE_S, fsck
from farro_core.ids import new_id
from farro_core.manager import sweep_tmp
from farro_core.root import Root

from .child import EXIT_OK
from .helpers import assert_fully_audited, backdate, run_child, scan


def _batch(n: int = 3) -> list[str]:
    return [new_id() for _ in range(n)]


@pytest.mark.parametrize("recovery", ["fsck", "manager"])
@pytest.mark.parametrize("point", ["create.intent_written", "create.batch_partial"])
def test_a_batch_cut_while_publishing_is_rolled_forward(
    root: Root, point: str, recovery: str
) -> None:
    ids = _batch()
    got = run_child(root, "create-batch", *ids, crash_at=point)
    assert got.returncode == crash.CRASH_EXIT, got.stderr
    published = sorted(scan(root))
    assert published == (sorted(ids[:1]) if point == "create.batch_partial" else [])
    intents = [n for n in os.listdir(root.tmp) if n.startswith(publish.BATCH_PREFIX)]
    assert len(intents) == 1, os.listdir(root.tmp)
    if recovery == "fsck":
        dry = fsck(root)
        assert [f.kind for f in dry if f.kind == "batch"] == ["batch"]
        assert sorted(scan(root)) == published, "a dry-run fsck changed the tree"
        findings = fsck(root, repair=True)
        assert {f.path for f in findings if f.kind == "batch"} == {
            f"incoming/{i}" for i in ids if i not in published
        }
    else:
        sweep_tmp(root)
    jobs = scan(root)
    assert sorted(jobs) == sorted(ids), "every job of the batch is published exactly once"
    assert all(jobs[i].queue == "incoming" for i in ids)
    assert os.listdir(root.tmp) == [], "the intent and every stage are gone from tmp/"
    for i in ids:
        assert_fully_audited(root, i, 1)
    assert fsck(root) == []


def test_a_crash_before_the_intent_publishes_nothing(root: Root) -> None:
    ids = _batch()
    got = run_child(root, "create-batch", *ids, crash_at="create.job_written")
    assert got.returncode == crash.CRASH_EXIT, got.stderr
    assert publish.finish_batches(root) == []
    fsck(root, repair=True)
    assert scan(root) == {}
    assert len(os.listdir(root.tmp)) == 1  # the one stage, quarantined when an hour old


def test_a_batch_killed_after_its_stages_are_durable_publishes_none(root: Root) -> None:
    """Between the one syncfs and the intent: complete stages, no intent, nothing published."""
    ids = _batch(4)
    got = run_child(root, "create-batch", *ids, crash_at="create.batch_synced")
    assert got.returncode == crash.CRASH_EXIT, got.stderr
    stages = sorted(os.listdir(root.tmp))
    assert sorted(name.split(".")[0] for name in stages) == sorted(ids), "one stage per job"
    for name in stages:  # each complete, as its syncfs left it
        assert sorted(os.listdir(root.tmp / name)) == ["job.json", "prompt.json"]
        lc = load_lifecycle((root.tmp / name / "job.json").read_bytes(), name)
        assert load_prompt((root.tmp / name / "prompt.json").read_bytes(), name).id == lc.id
    assert publish.unfinished_batches(root) == [] and publish.finish_batches(root) == []
    sweep_tmp(root)
    fsck(root, repair=True)
    assert scan(root) == {} and sorted(os.listdir(root.tmp)) == stages, "kept for an hour"
    for name in stages:
        backdate(root.tmp / name, TMP_MAX_AGE_S + 60)
    fsck(root, repair=True)
    assert os.listdir(root.tmp) == [] and scan(root) == {}, "quarantined, never published"


def test_a_live_creators_intent_is_left_alone(root: Root) -> None:
    """The creator holds a flock on its intent while it publishes: recovery skips it."""
    ids = _batch(2)
    staged = run_child(root, "create-batch", *ids, crash_at="create.intent_written")
    assert staged.returncode == crash.CRASH_EXIT, staged.stderr
    (intent,) = [n for n in os.listdir(root.tmp) if n.startswith(publish.BATCH_PREFIX)]
    holder = subprocess.Popen(  # stands in for a creator still publishing
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n",
            str(root.tmp / intent),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        assert publish.finish_batches(root) == []
        assert publish.unfinished_batches(root) == []
        assert scan(root) == {}
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    assert sorted(publish.finish_batches(root)) == sorted(ids)


def test_a_whole_batch_still_publishes_normally(root: Root) -> None:
    ids = _batch(4)
    assert run_child(root, "create-batch", *ids).returncode == EXIT_OK
    assert sorted(scan(root)) == sorted(ids)
    assert os.listdir(root.tmp) == []
