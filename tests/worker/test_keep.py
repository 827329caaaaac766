"""``farro keep``: the operator's mark, and ``farro gc`` leaving a kept job as it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farro_core import job, operations
from farro_core.audit import read
from farro_core.identity import WorkerIdentity, operator
from farro_core.job import load
from farro_core.root import Root
from farro_core.transitions import Actor, Status

from .helpers import FAST, git, make_repo, make_worker, sh, submit


def farro(root: Root, *args: str) -> tuple[int, str, str]:
    """The real CLI, in a process of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    p = subprocess.run(
        [sys.executable, "-m", "farro_core.cli", *args, "--root", str(root.path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return p.returncode, p.stdout, p.stderr


def _refs(repo: Path, job_id: str) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname)", f"refs/heads/farro/{job_id}")
    out += "\n" + git(repo, "for-each-ref", "--format=%(refname)", f"refs/farro/{job_id}/")
    return [r for r in out.split() if r]


def _job_json(root: Root, job_id: str) -> bytes:
    return (root.locate(job_id) / "job.json").read_bytes()


def test_keep_marks_and_undo_unmarks_each_audited_and_shown(wroot: Root) -> None:
    w = make_worker(wroot, max_attempts=1)
    done = submit(wroot, "done", agent=sh("true"), max_attempts=1)
    assert (out := w.run_once()) is not None and out.status == "succeeded"
    w.stop()
    before = load(wroot, done.id).lifecycle
    assert b'"kept"' not in _job_json(wroot, done.id)  # unmarked: not written at all

    code, out_text, err = farro(wroot, "keep", done.id)
    assert (code, out_text, err) == (0, f"{done.id} kept\n", "")
    lc = load(wroot, done.id).lifecycle
    assert lc.kept is not None and lc.kept.by == operator()
    assert lc.revision == before.revision + 1 and lc.status == "succeeded"
    assert lc.result == before.result and lc.reason == before.reason  # a record, not a move
    last = list(read(wroot, done.id))[-1]
    assert last["event"] == "kept" and last["revision"] == lc.revision
    assert last["actor"] == "operator" and last["reason"] == f"marked kept by {operator()}"
    assert last["from"] == last["to"] == "succeeded"

    code, shown, err = farro(wroot, "show", done.id)
    assert code == 0, err
    assert f"by {operator()}: farro gc leaves its branch, refs and logs" in shown, shown
    code, shown, err = farro(wroot, "show", done.id, "--json")
    assert json.loads(shown)["lifecycle"]["kept"]["by"] == operator()
    code, listed, err = farro(wroot, "ls")
    assert f"{done.id}  succeeded+kept" in listed, listed
    code, listed, err = farro(wroot, "ls", "--json")
    assert [row["kept"] for row in json.loads(listed)] == [True]

    # again: nothing to do, nothing written
    code, out_text, err = farro(wroot, "keep", done.id)
    assert (code, out_text) == (0, f"{done.id} kept already\n"), err
    assert load(wroot, done.id).lifecycle.revision == lc.revision

    code, out_text, err = farro(wroot, "keep", "--undo", done.id)
    assert (code, out_text, err) == (0, f"{done.id} no longer kept\n", "")
    after = load(wroot, done.id).lifecycle
    assert after.kept is None and after.revision == lc.revision + 1
    assert b'"kept"' not in _job_json(wroot, done.id)
    last = list(read(wroot, done.id))[-1]
    assert last["event"] == "unkept" and last["revision"] == after.revision
    code, out_text, err = farro(wroot, "keep", "--undo", done.id)
    assert (code, out_text) == (0, f"{done.id} was not kept\n"), err
    code, listed, err = farro(wroot, "ls")
    assert "+kept" not in listed
    code, checked, err = farro(wroot, "fsck")  # every revision the mark wrote is audited
    assert code == 0 and checked.endswith(": clean\n"), checked + err


def test_the_mark_outlives_the_job_s_later_commits(wroot: Root) -> None:
    w = make_worker(wroot, max_attempts=1)
    failed = submit(wroot, "f", agent=sh("exit 3"), max_attempts=1)
    assert (out := w.run_once()) is not None and out.status == "failed"
    assert farro(wroot, "keep", failed.id)[0] == 0
    operations.requeue(wroot, failed.id)
    assert (out := w.run_once()) is not None and out.status == "failed"
    lc = load(wroot, failed.id).lifecycle
    assert lc.attempt == 2 and lc.kept is not None and lc.kept.by == operator()


def test_keep_selects_by_status_and_label_like_requeue(wroot: Root) -> None:
    a = submit(wroot, "a", agent=sh("true"), labels={"batch": "x"})
    b = submit(wroot, "b", agent=sh("true"), labels={"batch": "y"})
    running = submit(wroot, "r", agent=sh("true"), labels={"batch": "x"})
    claimed = job.claim(wroot, WorkerIdentity.current("w9"), ids=[running.id])
    assert claimed is not None
    code, out, err = farro(wroot, "keep", "--label", "batch=x")
    assert code == 0, err
    assert out == f"(1 running job not marked: mark them once they finish)\n{a.id} kept\n"
    assert load(wroot, b.id).lifecycle.kept is None
    assert load(wroot, running.id).lifecycle.kept is None
    code, out, err = farro(wroot, "keep", "--undo", "--status", "queued")
    assert code == 0, err
    assert out == f"{a.id} no longer kept\n{b.id} was not kept\n"
    code, out, err = farro(wroot, "keep", "--status", "running")
    assert code == 2 and err.startswith("farro: --status in-progress: only ") and not out
    code, out, err = farro(wroot, "keep", a.id, "--label", "batch=x")
    assert code == 2 and "not both (farro keep)" in err


def test_keep_refuses_unknown_running_and_archived_jobs_and_marks_none(wroot: Root) -> None:
    w = make_worker(wroot, max_attempts=1)
    old = submit(wroot, "old", agent=sh("true"), max_attempts=1)
    assert (ran := w.run_once()) is not None and ran.status == "succeeded"
    assert farro(wroot, "gc", "--archive", "--older-than", "0s")[0] == 0
    ok = submit(wroot, "ok", agent=sh("true"))
    running = submit(wroot, "running", agent=sh("true"))
    claimed = job.claim(wroot, WorkerIdentity.current("w9"), ids=[running.id])
    assert claimed is not None
    missing = "01JZZZZZZZZZZZZZZZZZZZZZZZ"
    audit_before = wroot.audit_file.read_bytes()
    files = {j: _job_json(wroot, j) for j in (ok.id, running.id, old.id)}

    code, out, err = farro(wroot, "keep", missing)  # one id: one line, nothing else
    assert code == 1 and not out and err == f"farro: no job {missing} in {wroot.path}\n"
    code, out, err = farro(wroot, "keep", "not an id")
    assert code == 2 and not out and err.startswith("farro: invalid job id ")
    assert err.count("\n") == 1

    code, out, err = farro(wroot, "keep", ok.id, missing, running.id, old.id)
    assert code == 1 and not out, out
    assert err.splitlines() == [
        f"farro: no job {missing} in {wroot.path}",
        f"farro: job {running.id} is running: mark it once it has finished",
        f"farro: job {old.id} is archived (farro gc --archive): its record is read-only, "
        "and gc never takes an archived job's branch or refs",
        "farro: no job marked: 3 of 4 jobs refused",
    ]
    code, out, err = farro(wroot, "keep", "--undo", ok.id, missing)
    assert code == 1 and err.splitlines()[-1] == "farro: no mark removed: 1 of 2 jobs refused"
    assert {j: _job_json(wroot, j) for j in files} == files  # nothing half-made
    assert wroot.audit_file.read_bytes() == audit_before

    # the worker's own commit still goes through: no revision was written under it
    done = job.commit(claimed, Status.SUCCEEDED, Actor.AGENT, "ok", worker="w9")
    assert done.status == "succeeded"


def test_a_job_running_by_the_time_it_is_marked_is_refused_alone(wroot: Root) -> None:
    from farro_core.keep import check, mark

    first = submit(wroot, "first", agent=sh("true"))
    second = submit(wroot, "second", agent=sh("true"))
    envs, refused = check(wroot, [first.id, second.id])
    assert refused == [] and [e.id for e in envs] == [first.id, second.id]
    claimed = job.claim(wroot, WorkerIdentity.current("w9"), ids=[second.id])  # meanwhile
    assert claimed is not None
    out = mark(envs, by="ops")
    assert [(m.job_id, m.changed) for m in out] == [(first.id, True), (second.id, False)]
    assert out[1].error is not None and "is running" in str(out[1].error)
    assert load(wroot, second.id).lifecycle.revision == claimed.lifecycle.revision
    assert job.commit(claimed, Status.SUCCEEDED, Actor.AGENT, "ok", worker="w9").status == (
        "succeeded"
    )


def test_gc_leaves_a_kept_job_as_it_is_until_the_mark_is_taken_back(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    wroot.path.joinpath("farro.toml").write_text("gc_keep_logs = 1\n")
    root = Root.open(wroot.path, **FAST)
    w = make_worker(root, retry_backoff_s=0)
    failed = submit(root, "bad", agent=sh("echo x >> src/a.py; exit 3"), workspace=str(repo))
    ok = submit(root, "ok", agent=sh("echo y > src/b.py"), workspace=str(repo))
    while w.run_once() is not None:
        pass
    w.stop()
    assert load(root, failed.id).status == "failed" and load(root, ok.id).status == "succeeded"
    assert farro(root, "land", ok.id)[0] == 0  # landed: its refs would go by default
    refs = {j: _refs(repo, j) for j in (failed.id, ok.id)}
    assert all(refs.values()), refs
    logs = root.locate(failed.id) / "logs"
    names = sorted(p.name for p in logs.glob("attempt-*.log"))
    assert names == ["attempt-1.log", "attempt-2.log", "attempt-3.log"]
    code, out, err = farro(root, "keep", failed.id, ok.id)
    assert code == 0, err

    for args in (
        ("gc", "--dry-run"),
        ("gc",),
        ("gc", "--status", "succeeded,failed"),
        ("gc", "--status", "failed", "--archive", "--older-than", "0s"),
    ):
        code, out, err = farro(root, *args)
        assert code == 0, err
        for j in (failed.id, ok.id) if "failed" not in args else (failed.id,):
            assert f"kept job {j} as it is (branch, refs, logs): marked kept " in out, out
        assert "refs/heads/farro" not in out and "logs of attempt" not in out, out
        assert "archive/" not in out and " moved " not in out, out
        assert "marked kept as" in out.splitlines()[-1], out
    assert {j: _refs(repo, j) for j in refs} == refs
    assert sorted(p.name for p in logs.glob("attempt-*.log")) == names
    assert root.locate(failed.id).parent.name == "done"
    assert not [r for r in read(root) if r.get("event") == "gc" and r.get("job") in refs]
    code, out, err = farro(root, "gc", "--json")
    assert json.loads(out)["marked"] == 2 and json.loads(out)["branches"] == 0

    code, out, err = farro(root, "keep", "--undo", failed.id, ok.id)
    assert code == 0, err
    code, out, err = farro(root, "gc", "--dry-run")
    assert f"would remove refs/heads/farro/{failed.id} in {repo}" in out, out
    assert f"would remove refs/heads/farro/{ok.id} in {repo}" in out, out
    assert {j: _refs(repo, j) for j in refs} == refs  # dry: nothing gone
    code, out, err = farro(root, "gc")
    assert code == 0, err
    assert _refs(repo, failed.id) == [] and _refs(repo, ok.id) == [], out
    assert [p.name for p in logs.glob("attempt-*.log")] == ["attempt-3.log"]


def test_a_job_marked_after_gc_selected_it_loses_nothing(wroot: Root, tmp_path: Path) -> None:
    """gc decides again under the job's commit lock: a mark written between its
    selection and its removals wins."""
    from farro_core import gc

    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    failed = submit(
        wroot, "bad", agent=sh("echo x > src/b.py; exit 3"), workspace=str(repo), max_attempts=1
    )
    assert (out := w.run_once()) is not None and out.status == "failed"
    w.stop()
    stale_view = load(wroot, failed.id)  # what gc read when it selected the job
    job.mark_kept(stale_view, "ops", kept=True)
    report = gc.Report(dry_run=False)
    gc._collect(wroot, stale_view, 0, report, refs=True, archive=True)
    assert report.marked == 1 and report.branches == 0 and report.archived == 0
    assert _refs(repo, failed.id)
    assert (wroot.done / failed.id / "logs" / "attempt-1.log").is_file()


def test_a_selected_job_that_starts_running_before_its_mark_is_left_out_not_fatal(
    wroot: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--status/--label select, then mark: a worker may claim a selected job in
    between. That job is left out and said so; the others are marked (exit 0). Ids
    given by hand still refuse them all (the test above)."""
    from typer.testing import CliRunner

    from farro_core import keep
    from farro_core.cli import main

    first = submit(wroot, "first", agent=sh("true"))
    second = submit(wroot, "second", agent=sh("true"))
    real_check = keep.check
    claims: list[object] = []

    def check_after_a_claim(root: Root, ids: list[str]) -> object:
        claims.append(job.claim(root, WorkerIdentity.current("w9"), ids=[second.id]))
        return real_check(root, ids)

    monkeypatch.setattr(keep, "check", check_after_a_claim)
    with CliRunner().isolation() as (out, err, _):
        code = main(["keep", "--root", str(wroot.path), "--status", "queued"])
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    assert claims and claims[0] is not None  # the claim really came in between
    assert code == 0 and stderr == "", stderr
    assert stdout.splitlines() == ["(1 job started running since: not marked)", f"{first.id} kept"]
    assert load(wroot, first.id).lifecycle.kept is not None
    assert load(wroot, second.id).lifecycle.kept is None
