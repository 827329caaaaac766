"""`farro land` on real git repositories: the landing, each refusal, and the record.

Each refusal is checked to touch nothing: the branch, the checked-out files,
job.json (its revision) and the audit log are the same after it as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from farro_core import audit
from farro_core.envelope import Envelope
from farro_core.errors import Refused
from farro_core.listing import read_row
from farro_core.root import Root
from farro_tui.view import run_seconds

from .helpers import git, load, make_repo, make_worker, sh, submit

FARRO = str(Path(sys.executable).with_name("farro"))


def run_job(root: Root, repo: Path, agent: str, **kw: object) -> Envelope:
    submit(root, "edit", agent=sh(agent), workspace=str(repo), max_attempts=1, **kw)
    out = make_worker(root).run_once()
    assert out is not None
    return out


def farro(root: Root, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FARRO, *args, "--root", str(root.path)], capture_output=True, text=True, timeout=60
    )


def state(root: Root, repo: Path, job_id: str) -> tuple[str, str, str, int, int]:
    """What a refusal must leave alone: tip, files, git status, revision, audit lines."""
    env = load(root, job_id)
    return (
        git(repo, "rev-parse", "main"),
        (repo / "src" / "a.py").read_text() + (repo / "README.md").read_text(),
        git(repo, "status", "--porcelain"),
        env.lifecycle.revision,
        len(list(audit.read(root))),
    )


def refused(r: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("farro: ") and r.stderr.count("\n") == 1, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def test_land_squashes_onto_the_base_branch_and_records_it(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    base = git(repo, "rev-parse", "main")
    env = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py; echo new > src/b.py")
    assert env.status == "succeeded", env.lifecycle.reason
    res = env.lifecycle.result
    assert res is not None and res.work is not None and res.work.base_branch == "main"
    work = res.work.commits[-1].commit
    revision = env.lifecycle.revision

    r = farro(wroot, "land", env.id)
    assert r.returncode == 0, r.stderr
    tip = git(repo, "rev-parse", "main")
    assert r.stdout == f"{env.id} landed into main as {tip[:12]} (squash)\n"
    assert git(repo, "rev-parse", "main^") == base and tip != work
    assert git(repo, "rev-parse", "main^{tree}") == git(repo, "rev-parse", f"{work}^{{tree}}")
    msg = git(repo, "log", "-1", "--format=%B", "main")
    assert f"farro job {env.id}, attempt 1, work {work}" in msg and "Landed-by: " in msg
    # main is checked out in the repo: its files and index follow, nothing left dirty
    assert (repo / "src" / "a.py").read_text() == "A = 2\n"
    assert (repo / "src" / "b.py").read_text() == "new\n"
    assert git(repo, "status", "--porcelain") == ""

    after = load(wroot, env.id)
    assert after.status == "succeeded" and after.path.parent.name == "done"
    assert after.lifecycle.revision == revision + 1
    ld = after.lifecycle.result.landed  # type: ignore[union-attr]
    assert ld is not None
    assert (ld.into, ld.mode, ld.commit, ld.onto, ld.work_commit, ld.attempt) == (
        "main", "squash", tip, base, work, 1,
    )  # fmt: skip
    last = list(audit.read(wroot, env.id))[-1]
    assert last["event"] == "landed" and last["from"] == last["to"] == "succeeded"
    assert last["revision"] == revision + 1 and f"landed into main as {tip[:12]}" in last["reason"]
    shown = json.loads(farro(wroot, "show", env.id, "--json").stdout)
    assert shown["lifecycle"]["result"]["landed"]["commit"] == tip
    assert "landed   into main as" in farro(wroot, "show", env.id).stdout

    fsck = farro(wroot, "fsck")  # a landing is a revision with its audit line: nothing to fix
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr

    r = farro(wroot, "land", env.id)  # a second time
    refused(r, "was landed into main already", "--force")


def test_a_landing_leaves_the_queues_run_time_alone(wroot: Root, tmp_path: Path) -> None:
    # the console's RUN column read claim -> updated_at: a landing an hour later
    # updates job.json, and the job had run for an hour
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "echo new > src/b.py")
    res = env.lifecycle.result
    assert res is not None
    assert farro(wroot, "land", env.id).returncode == 0
    row = read_row(wroot, "done", env.id)
    assert row is not None and row.landed == "main"
    later = datetime.now(UTC) + timedelta(hours=1)
    assert run_seconds(row, later) == res.duration_s


def test_target_moved_and_work_does_not_apply_refuses_touching_nothing(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py")
    (repo / "src" / "a.py").write_text("A = 3\n")
    git(repo, "commit", "-qam", "operator's own change to the same line")
    before = state(wroot, repo, env.id)
    r = farro(wroot, "land", env.id)
    refused(r, f"job {env.id}: its work does not apply cleanly to main, which moved", "src/a.py")
    assert state(wroot, repo, env.id) == before
    assert load(wroot, env.id).lifecycle.result.landed is None  # type: ignore[union-attr]


def test_a_new_file_the_branch_also_added_names_the_path_not_gits_chatter(
    wroot: Root, tmp_path: Path
) -> None:
    # git apply --3way ends with "Falling back to direct application...": that line said
    # nothing of what is wrong; the refusal names the path that does not apply
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "printf 'job\\n' > src/NOTES.md; printf 'x\\n' > src/task.py")
    (repo / "src" / "NOTES.md").write_text("operator\n")
    git(repo, "add", "src/NOTES.md")
    git(repo, "commit", "-qm", "the operator added the same file")
    r = farro(wroot, "land", env.id)
    refused(r, "does not apply cleanly to main", "src/NOTES.md")
    assert "Falling back" not in r.stderr


def test_target_moved_elsewhere_the_work_applies_on_top(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py")
    (repo / "README.md").write_text("readme, edited\n")
    git(repo, "commit", "-qam", "operator's change elsewhere")
    moved = git(repo, "rev-parse", "main")
    r = farro(wroot, "land", env.id, "--merge")
    assert r.returncode == 0, r.stderr
    parents = git(repo, "log", "-1", "--format=%P", "main").split()
    work = load(wroot, env.id).lifecycle.result.work.commits[-1].commit  # type: ignore[union-attr]
    assert parents == [moved, work]
    assert (repo / "src" / "a.py").read_text() == "A = 2\n"
    assert (repo / "README.md").read_text() == "readme, edited\n"


def test_ff_only_moves_the_branch_to_the_work_or_refuses(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    one = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py")
    two = run_job(wroot, repo, "echo more >> docs/guide.md")  # the same base
    r = farro(wroot, "land", one.id, "--ff-only")
    assert r.returncode == 0, r.stderr
    work = one.lifecycle.result.work.commits[-1].commit  # type: ignore[union-attr]
    assert git(repo, "rev-parse", "main") == work
    before = state(wroot, repo, two.id)
    refused(farro(wroot, "land", two.id, "--ff-only"), "not a fast-forward")
    assert state(wroot, repo, two.id) == before
    assert farro(wroot, "land", two.id).returncode == 0  # squash applies it on top
    assert (repo / "docs" / "guide.md").read_text() == "guide\nmore\n"


def test_a_job_that_did_not_succeed_needs_force(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py; exit 1")
    assert env.status == "failed"
    before = state(wroot, repo, env.id)
    refused(farro(wroot, "land", env.id), f"job {env.id} is failed, not succeeded", "--force")
    assert state(wroot, repo, env.id) == before
    r = farro(wroot, "land", env.id, "--force")
    assert r.returncode == 0, r.stderr
    assert (repo / "src" / "a.py").read_text() == "A = 2\n"
    assert load(wroot, env.id).status == "failed"  # landing moves no job


def test_a_dirty_checked_out_target_refuses_another_branch_lands(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py")
    git(repo, "branch", "release")
    (repo / "README.md").write_text("half-done edit\n")  # uncommitted, in main's work tree
    before = state(wroot, repo, env.id)
    refused(farro(wroot, "land", env.id), "main is checked out in", "uncommitted", "README.md")
    assert state(wroot, repo, env.id) == before
    r = farro(wroot, "land", env.id, "--into", "release")
    assert r.returncode == 0, r.stderr
    assert git(repo, "show", "release:src/a.py") == "A = 2"
    assert (repo / "README.md").read_text() == "half-done edit\n"
    assert git(repo, "rev-parse", "main") == before[0]


def test_several_jobs_stop_at_the_first_that_does_not_apply(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    a = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py")
    b = run_job(wroot, repo, "printf 'A = 9\\n' > src/a.py")  # the same line as a
    c = run_job(wroot, repo, "echo more >> docs/guide.md")
    r = farro(wroot, "land", a.id, b.id, c.id)
    assert r.returncode == 1
    tip = git(repo, "rev-parse", "main")
    assert r.stdout == f"{a.id} landed into main as {tip[:12]} (squash)\n"
    refused(r, f"stopped at job {b.id} (1 of 3 landed)", f"not tried: {c.id}")
    assert load(wroot, b.id).lifecycle.result.landed is None  # type: ignore[union-attr]
    assert load(wroot, c.id).lifecycle.result.landed is None  # type: ignore[union-attr]
    assert (repo / "docs" / "guide.md").read_text() == "guide\n"


def test_bad_input_and_jobs_without_git_work(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py")
    r = farro(wroot, "land", env.id, "--into", "bad..name")
    assert r.returncode == 2 and "not a valid git branch name" in r.stderr
    r = farro(wroot, "land", env.id, "--squash", "--merge")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    refused(farro(wroot, "land", env.id, "--into", "nope"), "branch nope does not exist")
    nothing = run_job(wroot, repo, "true")
    refused(farro(wroot, "land", nothing.id), "nothing to land")
    queued = submit(wroot, "later", workspace=str(repo))
    # not "--force lands it anyway" (it would not: no attempt ran), nor, with --force,
    # "its workspace is not a git repo" (it is one)
    for args in ((), ("--force",)):
        r = farro(wroot, "land", queued.id, *args)
        refused(r, f"job {queued.id} is queued and has not finished an attempt: nothing to land")


def test_an_untracked_file_in_the_way_refuses_and_keeps_the_file(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "echo new > src/b.py")
    (repo / "src" / "b.py").write_text("the operator's own, untracked\n")
    before = state(wroot, repo, env.id)
    refused(
        farro(wroot, "land", env.id), "cannot be updated to the landed commit", "left as it was"
    )
    assert state(wroot, repo, env.id) == before
    assert (repo / "src" / "b.py").read_text() == "the operator's own, untracked\n"
    assert load(wroot, env.id).lifecycle.result.landed is None  # type: ignore[union-attr]


def test_a_branch_checked_out_in_a_linked_worktree_is_updated_there(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "printf 'A = 2\\n' > src/a.py")
    git(repo, "branch", "release")
    linked = tmp_path / "release-tree"
    git(repo, "worktree", "add", "-q", str(linked), "release")
    r = farro(wroot, "land", env.id, "--into", "release")
    assert r.returncode == 0, r.stderr
    assert (linked / "src" / "a.py").read_text() == "A = 2\n"
    assert git(linked, "status", "--porcelain") == ""
    assert (repo / "src" / "a.py").read_text() == "A = 1\n"  # main's tree is not touched


def test_a_job_archived_while_landing_is_refused_with_the_branch_untouched(
    wroot: Root, tmp_path: Path
) -> None:
    # plan() refuses an archived job, but `farro gc --archive` (another process) can
    # move it after that check: the branch moved, then its record failed ('left the
    # queue (quarantined?)'). The move and the record now happen under the job's
    # commit lock, where the job's place is checked again.
    from farro_core import land

    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "echo new > src/b.py")
    assert env.status == "succeeded", env.lifecycle.reason
    p = land.plan(load(wroot, env.id))
    tip = git(repo, "rev-parse", "main")
    gc = farro(wroot, "gc", "--archive", "--older-than", "0s")
    assert gc.returncode == 0 and "moved 1 job to archive/" in gc.stdout, gc.stdout + gc.stderr
    with pytest.raises(Refused) as refusal:
        land.execute(env, p, by="operator")
    assert git(repo, "rev-parse", "main") == tip, refusal.value  # unmoved: no landing to record
    assert isinstance(refusal.value, land.LandRefused), refusal.value
    assert str(refusal.value).startswith(f"job {env.id} is archived"), refusal.value
    assert git(repo, "status", "--porcelain") == "" and not (repo / "src" / "b.py").exists()
    archived = load(wroot, env.id)
    assert archived.path.parent.name == "archive"
    assert archived.lifecycle.result is not None and archived.lifecycle.result.landed is None


def test_a_landing_gc_selected_before_it_recorded_is_left_then_archived_with_its_record(
    wroot: Root, tmp_path: Path
) -> None:
    # land wins: gc read the job before the landing's record, so its check under the
    # commit lock finds a newer revision and leaves the job; its next run archives it,
    # record and all
    from farro_core import gc, land
    from farro_core.gc import Report

    repo = make_repo(tmp_path / "repo")
    env = run_job(wroot, repo, "echo new > src/b.py")
    seen_by_gc = load(wroot, env.id)
    landing = land.land(wroot, env.id)
    assert git(repo, "rev-parse", "main") == landing.commit
    report = Report(dry_run=False)
    gc._collect(wroot, seen_by_gc, 0, report, refs=False, archive=True)
    assert report.archived == 0 and load(wroot, env.id).path.parent.name == "done"
    r = farro(wroot, "gc", "--archive", "--older-than", "0s")
    assert r.returncode == 0 and "moved 1 job to archive/" in r.stdout, r.stdout + r.stderr
    after = load(wroot, env.id)
    assert after.path.parent.name == "archive"
    assert after.lifecycle.result is not None and after.lifecycle.result.landed == landing
    assert git(repo, "rev-parse", "main") == landing.commit
