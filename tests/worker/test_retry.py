"""`farro retry`: a follow-up job from a real failed one, its lineage, and --from-work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from farro_core import audit
from farro_core.root import Root

from .helpers import git, load, make_plain, make_repo, make_worker, sh, submit

FARRO = str(Path(sys.executable).with_name("farro"))
CHECK = "grep -q 'A = 2' src/a.py || { echo 'expected A = 2, found:'; cat src/a.py; exit 1; }"


def farro(root: Root, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FARRO, *args, "--root", str(root.path)], capture_output=True, text=True, timeout=60
    )


def failed_job(root: Root, repo: Path) -> str:
    submit(
        root,
        "Set A to 2 in src/a.py.",
        title="set A",
        agent=sh("printf 'A = 3\\n' > src/a.py; echo extra > src/extra.py"),
        workspace=str(repo),
        rubric=[{"id": "a-is-2", "check": CHECK}],
        max_attempts=1,
        labels={"batch": "b1"},
    )
    env = make_worker(root).run_once()
    assert env is not None and env.status == "failed", env and env.lifecycle.reason
    return env.id


def test_retry_makes_a_new_job_with_prompt_note_and_failures(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = failed_job(wroot, repo)
    parent = load(wroot, pid)
    prompt_bytes = (parent.path / "prompt.json").read_bytes()

    r = farro(wroot, "retry", pid, "--note", "Two, not three.")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    child = load(wroot, cid)
    assert child.status == "queued" and cid != pid
    text = child.prompt.prompt
    assert text.startswith("Set A to 2 in src/a.py.\n\n## Follow-up from the operator\n\n")
    assert "Two, not three." in text
    assert f"## What failed in job {pid} (attempt 1)" in text
    assert "### a-is-2 (exit 1)" in text and "expected A = 2, found:\nA = 3" in text
    assert text.index("Set A") < text.index("Two, not") < text.index("### a-is-2")
    assert child.prompt.lineage is not None and child.prompt.lineage.parent == pid
    assert child.prompt.lineage.from_work is None
    assert child.prompt.title == "Follow-up: set A"
    assert child.prompt.workspace == parent.prompt.workspace
    assert [i.id for i in child.prompt.rubric] == ["a-is-2"]
    assert child.prompt.labels == {"batch": "b1"}

    # the parent is untouched: same prompt.json bytes, same revision; its audit names the child
    again = load(wroot, pid)
    assert (again.path / "prompt.json").read_bytes() == prompt_bytes
    assert again.lifecycle == parent.lifecycle
    last = list(audit.read(wroot, pid))[-1]
    assert last["event"] == "followed-up" and cid in last["reason"]

    shown = farro(wroot, "show", pid).stdout
    assert f"follow-ups {cid}" in shown
    assert f"parent     {pid} (a follow-up)" in farro(wroot, "show", cid).stdout
    assert json.loads(farro(wroot, "show", pid, "--json").stdout)["follow_ups"] == [cid]

    # run it: without --from-work the agent starts from the parent's base again
    out = make_worker(wroot).run_once()
    assert out is not None and out.id == cid
    res = out.lifecycle.result
    assert res is not None and res.base_commit == parent.lifecycle.result.base_commit  # type: ignore[union-attr]


def test_from_work_continues_the_parents_work_and_lands_both(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = failed_job(wroot, repo)
    parent = load(wroot, pid)
    work = parent.lifecycle.result.work.commits[-1].commit  # type: ignore[union-attr]
    r = farro(wroot, "retry", pid, "--note", "Keep extra.py; fix A.", "--from-work")
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    lineage = load(wroot, cid).prompt.lineage
    assert lineage is not None and (lineage.from_work, lineage.base_branch) == (work, "main")
    out = make_worker(wroot).run_once()
    assert out is not None and out.id == cid
    res = out.lifecycle.result
    assert res is not None and res.base_commit == work  # started from the parent's work
    assert res.work is not None and res.work.base_branch == "main"
    log = (out.path / "logs" / "attempt-1.log").read_text()
    assert work is not None and f"starting from job {pid}'s work {work[:12]}" in log


def test_from_work_child_lands_with_its_parents_change(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = failed_job(wroot, repo)
    parent = load(wroot, pid)
    # a follow-up spec by hand with a fixing agent: what `retry --from-work` makes, but
    # with an agent that fixes A (the parent's agent would break it again)
    from farro_core.followup import spec

    s = spec(parent, "fix A", from_work=True)
    fields = s.model_dump(exclude={"id", "schema_version"})
    fields["agent"] = sh("test -f src/extra.py && printf 'A = 2\\n' > src/a.py")
    env = submit(wroot, **fields)
    out = make_worker(wroot).run_once()
    assert out is not None and out.id == env.id and out.status == "succeeded", (
        out and out.lifecycle.reason
    )
    r = farro(wroot, "land", env.id)
    assert r.returncode == 0, r.stderr
    # the parent's extra.py came along: the change landed is main..work, not parent..work
    assert (repo / "src" / "extra.py").read_text() == "extra\n"
    assert (repo / "src" / "a.py").read_text() == "A = 2\n"
    assert git(repo, "status", "--porcelain") == ""


def test_retry_refusals_create_nothing(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = failed_job(wroot, repo)
    plain = tmp_path / "plain"
    make_plain(plain)
    submit(wroot, "x", agent=sh("echo y > y.txt"), workspace=str(plain))
    pj = make_worker(wroot).run_once()
    assert pj is not None and pj.status == "succeeded"
    queued = submit(wroot, "not yet")
    before = sorted(wroot.ids("incoming"))

    r = farro(wroot, "retry", pid, "--note", "  ")
    assert r.returncode == 2 and r.stderr.startswith("farro: --note may not be empty")
    r = farro(wroot, "retry", pid)
    assert r.returncode == 2 and "--note" in r.stderr
    r = farro(wroot, "retry", queued.id, "--note", "x")
    assert r.returncode == 1 and "is queued: follow up a job once it has finished" in r.stderr
    r = farro(wroot, "retry", pj.id, "--note", "x", "--from-work")
    assert r.returncode == 1 and "has no work commit to continue from" in r.stderr
    assert sorted(wroot.ids("incoming")) == before
