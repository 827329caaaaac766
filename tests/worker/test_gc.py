"""``farro gc``: removes only what FARRO made and no longer needs, and says so."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import wait_until
from typer.testing import CliRunner

from farro_core import operations
from farro_core.audit import read
from farro_core.cli import main
from farro_core.job import load
from farro_core.root import Root

from .helpers import git, make_repo, make_worker, pooled_worktrees, sh, submit


def cli(*args: str) -> tuple[int, str, str]:
    with CliRunner().isolation() as (out, err, _):
        code = main(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()


def _refs(repo: Path, job_id: str) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname)", f"refs/heads/farro/{job_id}")
    out += "\n" + git(repo, "for-each-ref", "--format=%(refname)", f"refs/farro/{job_id}/")
    return [r for r in out.split() if r]


def test_gc_removes_what_is_not_needed_and_keeps_the_rest(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "branch", "farro/mine")  # the operator's own branch in FARRO's namespace
    w = make_worker(wroot, retry_backoff_s=0)
    ok = submit(wroot, "ok", agent=sh("echo x >> src/a.py"), workspace=str(repo))
    bad = submit(wroot, "bad", agent=sh("echo x >> src/a.py; exit 3"), workspace=str(repo))
    again = submit(wroot, "again", agent=sh("echo y >> src/a.py; exit 3"), workspace=str(repo))
    for _ in range(3 * 3):
        if w.run_once() is None:
            break
    assert load(wroot, ok.id).status == "succeeded"
    assert load(wroot, bad.id).status == "failed"
    operations.requeue(wroot, again.id)  # queued again: its refs are never touched
    for job_id in (ok.id, bad.id, again.id):
        assert _refs(repo, job_id), job_id
    logs = wroot.locate(bad.id) / "logs"
    assert sorted(p.name for p in logs.glob("attempt-*.log")) == [
        "attempt-1.log",
        "attempt-2.log",
        "attempt-3.log",
    ]
    assert len(pooled_worktrees(wroot)) == 1

    # a live worker's worktree is kept
    code, out, err = cli("gc", "--dry-run", "--root", str(wroot.path))
    assert code == 0, err
    assert "would free" in out and "0 worktrees" in out and "2 branches" not in out
    assert len(pooled_worktrees(wroot)) == 1 and _refs(repo, bad.id)

    w.stop()  # its worktree is free now
    code, out, err = cli("gc", "--dry-run", "--root", str(wroot.path))
    assert code == 0, err
    assert f"would remove refs/heads/farro/{bad.id} in {repo}" in out, out
    assert "would remove worktree" in out and "would free" in out
    assert len(pooled_worktrees(wroot)) == 1 and _refs(repo, bad.id)  # dry: nothing gone
    assert not [r for r in read(wroot) if r.get("event") == "gc"]
    wroot.path.joinpath("farro.toml").write_text("gc_keep_logs = 1\n")
    root = Root.open(wroot.path)
    code, out, err = cli("gc", "--root", str(root.path))
    assert code == 0, err
    assert pooled_worktrees(root) == []
    assert _refs(repo, bad.id) == []  # failed: gone
    assert _refs(repo, ok.id)  # succeeded, not landed: kept by default
    assert _refs(repo, again.id)  # queued: never touched
    assert git(repo, "rev-parse", "--verify", "farro/mine")  # not FARRO's: never touched
    assert [p.name for p in logs.glob("attempt-*.log")] == ["attempt-3.log"]
    assert "freed" in out and "1 worktree" in out and "1 branch" in out, out
    gc_lines = [r for r in read(root) if r.get("event") == "gc"]
    assert any(f"refs/heads/farro/{bad.id}" in r["reason"] for r in gc_lines)
    assert any("removed worktree" in r["reason"] for r in gc_lines)
    assert any(r["job"] == bad.id and "logs of attempt 1" in r["reason"] for r in gc_lines)
    assert git(repo, "status", "--porcelain") == ""

    # naming succeeded explicitly takes its branch too; the next job makes a worktree anew
    code, out, err = cli("gc", "--status", "succeeded", "--json", "--root", str(root.path))
    assert code == 0, err
    assert json.loads(out)["branches"] == 1 and _refs(repo, ok.id) == []
    w2 = make_worker(root)
    submit(root, "later", agent=sh("echo z >> src/a.py"), workspace=str(repo), priority=100)
    out_env = w2.run_once()
    assert out_env is not None and out_env.status == "succeeded", out_env.lifecycle.reason


def test_gc_refuses_bad_input_with_one_line(wroot: Root) -> None:
    for args in (("--older-than", "soon"), ("--status", "queued"), ("--label", "x")):
        code, out, err = cli("gc", *args, "--root", str(wroot.path))
        assert code == 2, (args, out, err)
        assert err.startswith("farro: ") and err.count("\n") == 1, err


def test_gc_older_than_spares_recent_jobs(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    bad = submit(wroot, "bad", agent=sh("exit 3"), workspace=str(repo), max_attempts=1)
    out = w.run_once()
    assert out is not None and out.status == "failed"
    code, _, err = cli("gc", "--older-than", "1h", "--root", str(wroot.path))
    assert code == 0, err
    assert _refs(repo, bad.id)


def test_gc_archive_moves_old_finished_jobs_where_show_and_logs_still_read(
    wroot: Root, tmp_path: Path
) -> None:
    w = make_worker(wroot, max_attempts=1)
    done = submit(wroot, "old", agent=sh("echo hello-from-agent"), max_attempts=1)
    queued = submit(wroot, "waiting", agent=sh("true"))
    out = w.run_once()
    assert out is not None and out.id == done.id and out.status == "succeeded"
    code, _, err = cli("gc", "--archive", "--root", str(wroot.path))
    assert code == 2 and "--older-than" in err  # how old is old: never a guess
    code, out_text, err = cli("gc", "--archive", "--older-than", "0s", "--root", str(wroot.path))
    assert code == 0, err
    assert "moved 1 job to archive/" in out_text, out_text
    assert (wroot.path / "archive" / done.id / "job.json").is_file()
    assert not (wroot.path / "done" / done.id).exists()
    assert (wroot.path / "incoming" / queued.id).is_dir()  # queued: never touched
    code, shown, err = cli("show", done.id, "--root", str(wroot.path))
    assert code == 0 and "succeeded" in shown, err
    code, logged, err = cli("logs", done.id, "--root", str(wroot.path))
    assert code == 0 and "hello-from-agent" in logged, err
    code, hist, err = cli("history", done.id, "--root", str(wroot.path))
    assert code == 0 and "archive" in hist, (hist, err)


def test_the_manager_runs_gc_when_told_to(wroot: Root, tmp_path: Path) -> None:
    from farro_core.manager import Manager

    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    bad = submit(wroot, "bad", agent=sh("exit 3"), workspace=str(repo), max_attempts=1)
    out = w.run_once()
    assert out is not None and out.status == "failed"
    w.stop()
    assert pooled_worktrees(wroot) and _refs(repo, bad.id)
    m = Manager(wroot, wroot.settings.model_copy(update={"gc_interval_s": 0.05}), retry_s=0.05)
    m.start()
    try:
        wait_until(lambda: not pooled_worktrees(wroot) and not _refs(repo, bad.id), "gc", 30)
    finally:
        m.stop()
    assert any(r.get("event") == "gc" for r in read(wroot))


def test_gc_takes_a_succeeded_jobs_branch_once_it_is_landed(wroot: Root, tmp_path: Path) -> None:
    # README: succeeded jobs' branches go once landed (the work is in the branch), or all
    # of them with --status succeeded
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot)
    landed = submit(wroot, "landed", agent=sh("echo x > src/b.py"), workspace=str(repo))
    kept = submit(wroot, "kept", agent=sh("echo y > src/c.py"), workspace=str(repo))
    while w.run_once() is not None:
        pass
    w.stop()
    assert cli("land", landed.id, "--root", str(wroot.path))[0] == 0
    code, out, err = cli("gc", "--root", str(wroot.path))
    assert code == 0, err
    assert f"removed refs/heads/farro/{landed.id} in {repo}" in out, out
    assert _refs(repo, landed.id) == [] and _refs(repo, kept.id)


def test_gc_keeps_a_branch_the_operator_checked_out_or_built_on(
    wroot: Root, tmp_path: Path
) -> None:
    # the branch is the operator's once they check it out or commit on it: deleting it
    # would leave their worktree on an unborn branch, or drop their commits
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    fail = sh("echo x > src/b.py; exit 3")
    out_ = submit(wroot, "out", agent=fail, workspace=str(repo), max_attempts=1)
    built = submit(wroot, "built", agent=fail, workspace=str(repo), max_attempts=1)
    plain = submit(wroot, "plain", agent=fail, workspace=str(repo), max_attempts=1)
    while w.run_once() is not None:
        pass
    w.stop()
    for j in (out_, built, plain):
        assert load(wroot, j.id).status == "failed"
    review = tmp_path / "review"
    git(repo, "worktree", "add", "-q", str(review), f"farro/{out_.id}")
    git(repo, "checkout", "-q", f"farro/{built.id}")
    (repo / "mine.txt").write_text("mine\n")
    git(repo, "add", "mine.txt")
    git(repo, "commit", "-q", "-m", "the operator's own commit")
    git(repo, "checkout", "-q", "main")
    mine = git(repo, "rev-parse", f"farro/{built.id}")

    code, out, err = cli("gc", "--root", str(wroot.path))
    assert code == 0, err
    assert git(review, "rev-parse", "HEAD") == git(repo, "rev-parse", f"farro/{out_.id}")
    assert f"kept refs/heads/farro/{out_.id}" in out and str(review) in out, out
    assert git(repo, "rev-parse", f"farro/{built.id}") == mine
    assert f"kept refs/heads/farro/{built.id}" in out, out
    assert _refs(repo, plain.id) == []  # FARRO's own, untouched by anyone: gone
    assert f"refs/farro/{out_.id}/" not in " ".join(_refs(repo, out_.id))  # FARRO's refs go
    assert "2 branches" not in out and "1 branch" in out, out


def test_gc_keeps_the_work_a_queued_follow_up_starts_from(wroot: Root, tmp_path: Path) -> None:
    # `farro retry --from-work`: the child's base is the parent's work commit, which only
    # the parent's refs hold until the child runs; the queued child is never touched
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    parent = submit(
        wroot, "p", agent=sh("echo x > src/b.py; exit 3"), workspace=str(repo), max_attempts=1
    )
    assert (out := w.run_once()) is not None and out.status == "failed"
    code, child_id, err = cli(
        "retry", parent.id, "--note", "n", "--from-work", "--root", str(wroot.path)
    )
    assert code == 0, err
    child_id = child_id.strip()
    code, out_text, err = cli("gc", "--root", str(wroot.path))
    assert code == 0, err
    assert _refs(repo, parent.id), out_text
    assert f"kept the refs of {parent.id}: job {child_id} starts from its work" in out_text
    operations.kill(wroot, child_id)
    code, out_text, err = cli("gc", "--root", str(wroot.path))
    assert code == 0, err
    assert _refs(repo, parent.id) == [], out_text


def _file_usage(top: Path) -> tuple[int, int]:
    """Files and bytes (allocated blocks) below ``top``, directories not counted."""
    files = size = 0
    for p in top.rglob("*"):
        st = p.lstat()
        if not p.is_dir() or p.is_symlink():
            files += 1
            size += st.st_blocks * 512
    return files, size


def test_gc_says_what_it_freed_to_the_byte(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot)
    submit(wroot, "x", agent=sh("echo x >> README.md; echo y > cache.log"), workspace=str(repo))
    assert (out := w.run_once()) is not None and out.status == "succeeded"
    w.stop()
    before = _file_usage(wroot.path / "worktrees")
    code, text, err = cli("gc", "--json", "--root", str(wroot.path))
    assert code == 0, err
    after = _file_usage(wroot.path / "worktrees")
    report = json.loads(text)
    assert report["worktrees"] == 1
    assert (report["files"], report["bytes"]) == (before[0] - after[0], before[1] - after[1])


def _disk(root: Root, repo: Path) -> tuple[dict[str, tuple[str, bytes, int]], str, str]:
    """Every entry under the root but flock files (kind, bytes, mode), the repo's refs
    and its worktrees."""
    seen: dict[str, tuple[str, bytes, int]] = {}
    for p in sorted(root.path.rglob("*")):
        if p.name.endswith(".lock"):
            continue  # taking a lock creates its file, and that is all
        st = p.lstat()
        kind = "dir" if p.is_dir() and not p.is_symlink() else "file"
        body = p.read_bytes() if kind == "file" and not p.is_symlink() else b""
        seen[str(p.relative_to(root.path))] = (kind, body, st.st_mode)
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return seen, refs, git(repo, "worktree", "list", "--porcelain")


def test_gc_dry_run_changes_nothing_and_gc_never_touches_unfinished_jobs(
    wroot: Root, tmp_path: Path
) -> None:
    import os
    import threading

    from farro_core import job
    from farro_core.fsck import fsck
    from farro_core.identity import WorkerIdentity
    from farro_core.locks import CLAIMS

    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, retry_backoff_s=0)
    fail = sh("echo x > src/b.py; exit 3")
    failed = submit(wroot, "f", agent=fail, workspace=str(repo), max_attempts=1)
    stale = submit(wroot, "s", agent=fail, workspace=str(repo), max_attempts=3)
    for _ in range(2):
        assert w.run_once() is not None
    assert load(wroot, failed.id).status == "failed"
    assert load(wroot, stale.id).status == "queued" and _refs(repo, stale.id)
    env = job.claim(wroot, WorkerIdentity.current("gone"), ids=[stale.id])
    assert env is not None
    CLAIMS.release(job.claim_key(wroot, stale.id, env.lifecycle.attempt))  # its worker died
    fsck(wroot, repair=True)
    assert load(wroot, stale.id).status == "stale"
    queued = submit(wroot, "q", agent=fail, workspace=str(repo))
    w.stop()

    before = _disk(wroot, repo)
    args = ("gc", "--dry-run", "--archive", "--older-than", "0s", "--root", str(wroot.path))
    code, out, err = cli(*args)
    assert code == 0, err
    assert f"would remove refs/heads/farro/{failed.id}" in out and "would move" in out, out
    assert _disk(wroot, repo) == before  # not a byte, not a ref, not a worktree

    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    gate = sh(f"touch {tmp_path}/started; cat {fifo} > /dev/null")
    running = submit(wroot, "r", agent=gate, workspace=str(repo), priority=100)
    w2 = make_worker(wroot, "w2")
    t = threading.Thread(target=w2.run_once)
    t.start()
    try:
        wait_until((tmp_path / "started").exists, "the running job's agent")
        kept = {j: _refs(repo, j) for j in (stale.id, running.id, queued.id)}
        logs = sorted((wroot.locate(stale.id) / "logs").iterdir())
        code, out, err = cli("gc", "--archive", "--older-than", "0s", "--root", str(wroot.path))
        assert code == 0, err
        assert {j: _refs(repo, j) for j in kept} == kept
        assert sorted((wroot.locate(stale.id) / "logs").iterdir()) == logs
        assert [load(wroot, j).status for j in kept] == ["stale", "in-progress", "queued"]
        assert (wroot.path / "archive" / failed.id).is_dir() and _refs(repo, failed.id) == []
        assert "removed worktree" not in out  # the running worker's
    finally:
        with open(fifo, "w"):
            pass
        t.join()
    assert load(wroot, running.id).status == "succeeded"


def test_gc_label_selects_whose_branches_go_and_is_off_in_the_manager_by_default(
    wroot: Root, tmp_path: Path
) -> None:
    from farro_core.settings import Settings

    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    fail = sh("echo x > src/b.py; exit 3")
    a = submit(wroot, "a", agent=fail, workspace=str(repo), max_attempts=1, labels={"b": "1"})
    b = submit(wroot, "b", agent=fail, workspace=str(repo), max_attempts=1, labels={"b": "2"})
    while w.run_once() is not None:
        pass
    code, out, err = cli("gc", "--label", "b=1", "--root", str(wroot.path))
    assert code == 0, err
    assert _refs(repo, a.id) == [] and _refs(repo, b.id), out
    assert Settings().gc_interval_s is None  # the manager runs gc only when told to


def test_an_archived_job_is_refused_by_land_and_requeue_before_anything_moves(
    wroot: Root, tmp_path: Path
) -> None:
    # archive/ is read-only: landing there moved the branch, then failed to record it
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    done = submit(wroot, "d", agent=sh("echo x > src/b.py"), workspace=str(repo), max_attempts=1)
    bad = submit(wroot, "b", agent=sh("exit 3"), workspace=str(repo), max_attempts=1)
    while w.run_once() is not None:
        pass
    code, out, err = cli("gc", "--archive", "--older-than", "0s", "--root", str(wroot.path))
    assert code == 0 and "moved 2 jobs to archive/" in out, (out, err)
    tip = git(repo, "rev-parse", "main")
    code, out, err = cli("land", done.id, "--root", str(wroot.path))
    assert code == 1 and err.startswith(f"farro: job {done.id} is archived"), err
    assert f"git merge farro/{done.id}" in err, err
    assert git(repo, "rev-parse", "main") == tip
    code, out, err = cli("requeue", bad.id, "--root", str(wroot.path))
    assert code == 1 and err.startswith(f"farro: job {bad.id} is archived"), err
    assert "farro retry" in err, err


def test_gc_takes_a_branch_an_unrecorded_attempt_left(wroot: Root, tmp_path: Path) -> None:
    # a worker that died between committing the work and recording it left the branch
    # at a commit only its attempt ref names: FARRO's still, not the operator's
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot, max_attempts=1)
    fail = sh("echo x > src/b.py; exit 3")
    j = submit(wroot, "j", agent=fail, workspace=str(repo), max_attempts=1)
    assert (done := w.run_once()) is not None and done.status == "failed"
    tree = git(repo, "rev-parse", f"farro/{j.id}^{{tree}}")
    lost = subprocess.run(
        ["git", "-C", str(repo), "commit-tree", tree, "-p", f"farro/{j.id}", "-m", "attempt 2"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    git(repo, "update-ref", f"refs/farro/{j.id}/attempt-2", lost)
    git(repo, "update-ref", f"refs/heads/farro/{j.id}", lost)
    code, out, err = cli("gc", "--root", str(wroot.path))
    assert code == 0, err
    assert _refs(repo, j.id) == [], out


def test_gc_removes_the_per_job_worktrees_of_older_versions_only_of_finished_jobs(
    wroot: Root, tmp_path: Path
) -> None:
    # before pooling, each job had ROOT/worktrees/<id>/: a root upgraded keeps them
    repo = make_repo(tmp_path / "repo")
    finished = submit(wroot, "f", agent=sh("exit 3"), workspace=str(repo), max_attempts=1)
    assert (done := make_worker(wroot).run_once()) is not None and done.status == "failed"
    queued = submit(wroot, "q", workspace=str(repo))
    top = wroot.path / "worktrees"
    for name in (finished.id, queued.id, "mine"):
        git(repo, "worktree", "add", "-q", "--detach", str(top / name), "main")
    code, out, err = cli("gc", "--root", str(wroot.path))
    assert code == 0, err
    assert not (top / finished.id).exists()
    assert (top / queued.id / "README.md").is_file()  # its job may still run there
    assert (top / "mine" / "README.md").is_file()  # no job's: not FARRO's to remove
    listed = git(repo, "worktree", "list", "--porcelain")
    assert str(top / finished.id) not in listed and str(top / queued.id) in listed
    assert f"removed worktree {top / finished.id}" in out, out


def test_logs_of_an_attempt_whose_log_gc_removed_says_gc_removed_it(
    wroot: Root, tmp_path: Path
) -> None:
    w = make_worker(wroot, retry_backoff_s=0)
    bad = submit(wroot, "bad", agent=sh("echo x; exit 3"))
    while w.run_once() is not None:
        pass
    assert load(wroot, bad.id).lifecycle.attempt == 3
    (wroot.locate(bad.id) / "logs" / "attempt-2.log").unlink()  # gone, but not by gc
    code, out, err = cli("logs", bad.id, "--attempt", "2", "--root", str(wroot.path))
    assert (code, out, err) == (1, "", f"farro: job {bad.id} has no log for attempt 2\n")
    wroot.path.joinpath("farro.toml").write_text("gc_keep_logs = 1\n")
    code, out, err = cli("gc", "--root", str(wroot.path))
    assert code == 0, err
    (rec,) = [r for r in read(wroot, bad.id) if "logs of attempt 1" in r.get("reason", "")]
    code, out, err = cli("logs", bad.id, "--attempt", "1", "--root", str(wroot.path))
    when = rec["ts"].replace("T", " ")[:19] + "Z"
    assert (code, out) == (1, ""), err
    assert err == (
        f"farro: job {bad.id} has no log for attempt 1: `farro gc` removed it at {when} "
        "(keeping the last 1)\n"
    )
    code, out, err = cli("logs", bad.id, "--attempt", "3", "--root", str(wroot.path))
    assert code == 0 and "x" in out, err
