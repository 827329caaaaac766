"""The manager's inbox: request files -> jobs, all or nothing, never twice, never deleted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from farro_core import crash, inbox, job, operations
from farro_core.envelope import Envelope
from farro_core.root import Root
from farro_core.transitions import Status

from .helpers import PYTHON, child_env, make_root


def _root(tmp_path: Path, extra: str = "") -> Root:
    return make_root(tmp_path / "root", agent="true", extra=extra)


def _put(root: Root, name: str, body: object | str) -> Path:
    """Write-then-rename, as the README tells users to."""
    text = body if isinstance(body, str) else json.dumps(body)
    tmp = root.inbox / f".{name}.tmp"
    tmp.write_text(text)
    os.rename(tmp, root.inbox / name)
    return root.inbox / name


def _jobs(root: Root) -> dict[str, Envelope]:
    return {i: job.load(root, i) for q in ("incoming", "active", "done") for i in root.ids(q)}


def test_good_files_become_jobs_and_move_to_accepted(tmp_path: Path) -> None:
    root = _root(tmp_path)
    _put(root, "two.json", {"jobs": [{"prompt": "first"}, {"prompt": "second", "priority": 5}]})
    _put(root, "one.toml", 'prompt = "from toml"\ntitle = "T"\n')
    _put(root, ".hidden.json", {"prompt": "never read"})
    _put(root, "notes.txt", "not a request")

    results = inbox.ingest(root)

    assert sorted((r.name, r.outcome, len(r.jobs)) for r in results) == [
        ("one.toml", "accepted", 1),
        ("two.json", "accepted", 2),
    ]
    assert sorted(os.listdir(root.accepted)) == ["one.toml", "two.json"]
    assert sorted(os.listdir(root.inbox)) == [".hidden.json", "accepted", "notes.txt", "rejected"]
    jobs = _jobs(root)
    assert sorted(e.prompt.prompt for e in jobs.values()) == ["first", "from toml", "second"]
    assert all(e.status is Status.QUEUED for e in jobs.values())
    assert all(e.prompt.created_by.endswith(("via inbox/two.json", "via inbox/one.toml"))
               for e in jobs.values())  # fmt: skip
    two = next(r for r in results if r.name == "two.json")
    assert list(two.jobs) == sorted(two.jobs)  # ids keep the file's order


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        ('{"prompt": "x",', ["invalid JSON", "line 1"]),
        ({"prompt": "x", "promt": "typo"}, ["promt", "unknown field"]),
        ({"jobs": [{"prompt": "ok"}, {"prompt": ""}]}, ["jobs[1]", "prompt"]),
        ({"jobs": [{"prompt": "ok"}, {"prompt": "x", "timeout_s": -1}]}, ["jobs[1]", "timeout_s"]),
        ([{"prompt": "a list"}], ["expected a job spec object"]),
    ],
)
def test_a_bad_file_is_rejected_whole_with_the_reason(
    tmp_path: Path, body: object, needles: list[str]
) -> None:
    root = _root(tmp_path)
    path = _put(root, "bad.json", body)
    os.utime(path, (1, 1))  # old: not a file still being written

    [result] = inbox.ingest(root)

    assert result.outcome == "rejected"
    assert _jobs(root) == {}  # all or nothing: not even the good job of the file
    assert (root.rejected / "bad.json").exists()
    error = (root.rejected / "bad.json.error.txt").read_text()
    for needle in needles:
        assert needle in error, error
    # the same name again: a unique name, nothing replaced
    path = _put(root, "bad.json", body)
    os.utime(path, (1, 1))
    [again] = inbox.ingest(root)
    assert again.moved_to == "inbox/rejected/bad.1.json"
    assert (root.rejected / "bad.1.json.error.txt").exists()
    assert (root.rejected / "bad.json").exists()


def test_a_file_that_does_not_parse_yet_gets_a_grace(tmp_path: Path) -> None:
    root = _root(tmp_path)
    _put(root, "half.json", '{"prompt": "being writ')  # fresh mtime: maybe still being written
    [result] = inbox.ingest(root)
    assert result.outcome == "waiting"
    assert (root.inbox / "half.json").exists()


def test_processing_a_file_twice_creates_no_duplicates(tmp_path: Path) -> None:
    """A crash between creating the jobs and moving the file: the re-run creates none."""
    root = _root(tmp_path)
    path = _put(root, "batch.json", {"jobs": [{"prompt": f"job {i}"} for i in range(3)]})
    keep = tmp_path / "batch.copy"
    shutil.copy2(path, keep)  # same content and mtime: the file as the crash left it

    first = inbox.ingest(root)
    assert [(r.outcome, r.created) for r in first] == [("accepted", 3)]
    shutil.copy2(keep, path)  # "the move never happened"
    second = inbox.ingest(root)

    assert [(r.outcome, r.created) for r in second] == [("accepted", 0)]
    assert second[0].jobs == first[0].jobs
    assert len(_jobs(root)) == 3
    assert sorted(os.listdir(root.accepted)) == ["batch.1.json", "batch.json"]


def test_a_real_crash_after_create_then_a_rerun(tmp_path: Path) -> None:
    """A real process dies (os._exit) after creating the jobs, before moving the file."""
    root = _root(tmp_path)
    _put(root, "crash.json", {"jobs": [{"prompt": "a"}, {"prompt": "b"}]})
    code = (
        "import sys\nfrom farro_core.root import Root\nfrom farro_core.inbox import ingest\n"
        "ingest(Root.open(sys.argv[1]))\n"
    )
    env = {**child_env(), "FARRO_CRASH_AT": "inbox.created"}
    out = subprocess.run([PYTHON, "-c", code, str(root.path)], env=env, timeout=60)
    assert out.returncode == crash.CRASH_EXIT
    assert (root.inbox / "crash.json").exists() and len(_jobs(root)) == 2

    [result] = inbox.ingest(root)
    assert (result.outcome, result.created, len(result.jobs)) == ("accepted", 0, 2)
    assert len(_jobs(root)) == 2


def test_a_goal_is_planned_by_the_demo_planner(tmp_path: Path) -> None:
    root = _root(tmp_path)
    goal = "Ship it:\n- write the docs\n* add the tests\nnot a bullet\n- " + "x" * 120
    _put(root, "goal.json", {"goal": goal, "defaults": {"priority": 3, "labels": {"team": "a"}}})

    [result] = inbox.ingest(root)

    assert result.outcome == "accepted", result.error
    jobs = sorted(_jobs(root).values(), key=lambda e: e.id)
    assert [e.prompt.prompt for e in jobs] == ["write the docs", "add the tests", "x" * 120]
    assert len(jobs[2].prompt.title) <= 80
    assert all(e.prompt.labels == {"batch": "goal", "team": "a", "goal": "goal.json"} for e in jobs)
    assert all(e.prompt.priority == 3 for e in jobs)
    plan = json.loads((root.accepted / "goal.json.plan.json").read_text())
    assert len(plan["jobs"]) == 3


def test_a_goal_rerun_reuses_the_saved_plan(tmp_path: Path) -> None:
    """A non-deterministic planner is asked once: a re-run after a crash uses its saved plan."""
    counter = tmp_path / "calls"
    planner = (
        f"echo x >> {counter}; n=$(wc -l < {counter}); "
        'printf \'[{"prompt": "plan %s a"}, {"prompt": "plan %s b"}]\' $n $n'
    )
    root = _root(tmp_path, extra=f"planner = {json.dumps(planner)}\n")
    path = _put(root, "g.json", {"goal": "anything"})
    keep = tmp_path / "g.copy"
    shutil.copy2(path, keep)
    plan = root.inbox / ".g.json.plan.json"
    [first] = inbox.ingest(root)
    assert first.outcome == "accepted"
    shutil.copy2(keep, path)  # the crash: file not moved, plan not moved
    os.rename(root.accepted / "g.json.plan.json", plan)
    [second] = inbox.ingest(root)
    assert (second.outcome, second.created) == ("accepted", 0)
    assert counter.read_text().count("x") == 1
    assert sorted(e.prompt.prompt for e in _jobs(root).values()) == ["plan 1 a", "plan 1 b"]


@pytest.mark.parametrize(
    ("planner", "needles"),
    [
        ("echo 'model unavailable' >&2; exit 3", ["exited with status 3", "model unavailable"]),
        ("echo 'not json'; echo 'some warning' >&2", ["no valid JSON", "some warning"]),
        ('echo \'[{"prompt": "ok"}, {"prompt": "x", "bogus": 1}]\'', ["bogus"]),
        ('echo \'{"prompt": "one"}\'', ["must print a JSON list"]),
    ],
)
def test_a_failing_or_malformed_planner_rejects_the_goal(
    tmp_path: Path, planner: str, needles: list[str]
) -> None:
    root = _root(tmp_path, extra=f"planner = {json.dumps(planner)}\n")
    _put(root, "goal.json", {"goal": "- something"})
    [result] = inbox.ingest(root)
    assert result.outcome == "rejected"
    assert _jobs(root) == {}
    error = (root.rejected / "goal.json.error.txt").read_text()
    for needle in needles:
        assert needle in error, error


def test_a_goal_without_bullets_is_rejected_with_the_planner_s_reason(tmp_path: Path) -> None:
    root = _root(tmp_path)
    _put(root, "goal.json", {"goal": "just prose, no bullets"})
    [result] = inbox.ingest(root)
    assert result.outcome == "rejected"
    assert "no bullet lines" in (root.rejected / "goal.json.error.txt").read_text()


def test_a_planner_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    root = _root(tmp_path, extra="planner = 'sleep 60'\n")
    _put(root, "goal.json", {"goal": "- x"})
    [result] = inbox.ingest(root, planner_timeout_s=0.5)
    assert result.outcome == "rejected" and "timed out" in (result.error or "")


def test_backpressure_keeps_files_in_the_inbox_until_there_is_room(tmp_path: Path) -> None:
    root = _root(tmp_path, extra="max_queued = 3\n")
    _put(root, "a.json", {"jobs": [{"prompt": "a1"}, {"prompt": "a2"}]})
    os.utime(root.inbox / "a.json", (100, 100))
    _put(root, "b.json", {"jobs": [{"prompt": "b1"}, {"prompt": "b2"}]})
    os.utime(root.inbox / "b.json", (200, 200))
    _put(root, "huge.json", {"jobs": [{"prompt": f"h{i}"} for i in range(4)]})
    os.utime(root.inbox / "huge.json", (300, 300))

    results = inbox.ingest(root)
    assert [(r.name, r.outcome) for r in results] == [("a.json", "accepted"), ("b.json", "waiting")]
    assert "queue full" in (results[1].error or "")
    assert (root.inbox / "b.json").exists() and (root.inbox / "huge.json").exists()
    assert root.count("incoming") == 2

    for job_id in root.ids("incoming"):  # room again: the operator cancels the queued jobs
        operations.kill(root, job_id, by="test")
    results = inbox.ingest(root)
    assert [(r.name, r.outcome) for r in results] == [
        ("b.json", "accepted"),
        ("huge.json", "rejected"),
    ]
    assert "can never fit" in (results[1].error or "")


def test_an_explicit_id_held_by_another_job_rejects_the_file(tmp_path: Path) -> None:
    root = _root(tmp_path)
    _put(root, "x.json", {"id": "01EXPLICIT000000000000000A", "prompt": "mine"})
    [ok] = inbox.ingest(root)
    assert ok.outcome == "accepted" and ok.jobs == ("01EXPLICIT000000000000000A",)
    path = _put(root, "y.json", {"id": "01EXPLICIT000000000000000A", "prompt": "theirs"})
    os.utime(path, (1, 1))
    [bad] = inbox.ingest(root)
    assert bad.outcome == "rejected" and "exists already" in (bad.error or "")


def test_a_symlink_in_the_inbox_is_rejected_not_followed(tmp_path: Path) -> None:
    root = _root(tmp_path)
    target = tmp_path / "outside.json"
    target.write_text(json.dumps({"prompt": "outside the root"}))
    os.symlink(target, root.inbox / "link.json")
    [result] = inbox.ingest(root)
    assert result.outcome == "rejected" and "symlink" in (result.error or "")
    assert os.path.islink(root.rejected / "link.json") and target.exists()
    assert _jobs(root) == {}
