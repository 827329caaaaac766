"""Rubric checks after the agent: pass, fail, required or optional, timeout, ungraded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import wait_until

from farro_core import rubric
from farro_core.envelope import RubricItem, RubricVerdict
from farro_core.root import Root

from .helpers import make_repo, make_worker, pid_alive, sh, submit

FARRO = str(Path(sys.executable).with_name("farro"))


def run(root: Root, checks: list[dict[str, object]], agent: str = "echo 42 > answer", **kw: object):  # type: ignore[no-untyped-def]
    submit(root, "x", agent=sh(agent), rubric=checks, **kw)
    out = make_worker(root).run_once()
    assert out is not None and out.lifecycle.result is not None
    return out, out.lifecycle.result


def test_passing_checks_run_in_the_workspace_with_env(wroot: Root) -> None:
    out, res = run(
        wroot,
        [
            {"id": "answer", "check": 'test "$(cat answer)" = 42 && echo fine'},
            {"id": "env", "check": 'test "$PWD" = "$FARRO_WORKSPACE" && test -n "$FARRO_JOB_ID"'},
        ],
    )
    assert out.status == "succeeded", out.lifecycle.reason
    assert res.verdict == "passed"
    assert [(v.id, v.passed, v.exit_code) for v in res.rubric] == [
        ("answer", True, 0),
        ("env", True, 0),
    ]
    assert res.rubric[0].output_tail == "fine\n"
    assert "rubric passed" in out.lifecycle.reason


def test_required_check_failing_fails_without_retry(wroot: Root) -> None:
    out, res = run(wroot, [{"id": "tests", "check": "echo 3 failed; exit 2"}], max_attempts=3)
    assert out.status == "failed" and out.lifecycle.attempt == 1
    assert res.verdict == "failed" and "required check failed: tests" in out.lifecycle.reason
    assert res.rubric[0] == RubricVerdict(
        id="tests",
        passed=False,
        required=True,
        state="failed",
        exit_code=2,
        output_tail="3 failed\n",
    )


def test_optional_check_failing_is_recorded_not_fatal(wroot: Root) -> None:
    out, res = run(
        wroot,
        [
            {"id": "must", "check": "true"},
            {"id": "nice", "check": "exit 1", "required": False},
        ],
    )
    assert out.status == "succeeded"
    assert res.verdict == "passed"
    assert [(v.id, v.passed, v.required) for v in res.rubric] == [
        ("must", True, True),
        ("nice", False, False),
    ]


def test_check_timeout_kills_its_group(wroot: Root, tmp_path: Path) -> None:
    marker, pidfile = tmp_path / "survivor", tmp_path / "writer.pid"
    # the pid is written before "begun": a check that said "begun" left its writer's pid
    check = f"(sleep 3; touch {marker}) & echo $! > {pidfile}; echo begun; sleep 30"
    out, res = run(wroot, [{"id": "slow", "check": check, "timeout_s": 0.5}])
    assert out.status == "failed"  # its own end, after 30 s, would have passed
    v = res.rubric[0]
    assert v.passed is False and v.exit_code is None and v.state == "timed_out"
    assert "begun" in v.output_tail and "timed out after 0.5s" in v.output_tail
    assert "required check timed out: slow" in out.lifecycle.reason
    writer = int(pidfile.read_text())
    wait_until(lambda: not pid_alive(writer), "the marker's writer to be gone")
    assert not marker.exists()  # final: nothing else would write it


def test_ungraded_is_not_failed(wroot: Root) -> None:
    out, res = run(wroot, [{"id": "manual", "description": "a human looks at it"}])
    assert out.status == "succeeded"
    assert res.verdict == "ungraded"
    assert res.rubric == [RubricVerdict(id="manual", passed=None, required=True, state="ungraded")]
    out, res = run(wroot, [])
    assert out.status == "succeeded" and res.verdict == "ungraded" and res.rubric == []


def test_no_rubric_after_a_failed_agent(wroot: Root) -> None:
    out, res = run(wroot, [{"id": "t", "check": "true"}], agent="exit 1", max_attempts=1)
    assert out.status == "failed" and res.rubric == [] and res.verdict is None


def test_rubric_in_a_worktree_judges_the_committed_work(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    out, res = run(
        wroot,
        [{"id": "has-b", "check": "test -f src/b.py && git log -1 --format=%s | grep -q attempt"}],
        agent="echo b > src/b.py",
        workspace=str(repo),
        allowed_paths=["src/**"],
    )
    assert out.status == "succeeded", (out.lifecycle.reason, res.rubric)


def test_output_tail_is_the_last_2000_chars() -> None:
    item = RubricItem(
        id="big", check="i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done"
    )
    v = rubric.run_check(item, Path("/"), {"PATH": "/usr/bin:/bin"}, kill_grace_s=1)
    assert v.passed and len(v.output_tail) == rubric.TAIL_CHARS
    assert v.output_tail.endswith("line-499\n")


def test_verdict_rules() -> None:
    def v(passed: bool | None, required: bool = True, state: str | None = None) -> RubricVerdict:
        return RubricVerdict(id="x", passed=passed, required=required, state=state)  # type: ignore[arg-type]

    assert rubric.verdict([]) == "ungraded"
    assert rubric.verdict([v(None)]) == "ungraded"
    assert rubric.verdict([v(True), v(None)]) == "passed"
    assert rubric.verdict([v(True), v(False, required=False)]) == "passed"
    assert rubric.verdict([v(False, required=False)]) == "passed"  # it ran to an exit
    assert rubric.verdict([v(False), v(True)]) == "failed"
    assert rubric.verdict([v(False, state="error"), v(True)]) == "failed"
    assert rubric.verdict([v(False, state="timed_out"), v(True)]) == "failed"
    # optional checks that could not run or timed out grade nothing
    assert rubric.verdict([v(False, False, "error"), v(None)]) == "ungraded"
    assert rubric.verdict([v(False, False, "timed_out")]) == "ungraded"
    assert rubric.verdict([v(False, False, "error"), v(True, False, "passed")]) == "passed"


@pytest.mark.parametrize(
    ("check", "code", "why"),
    [
        ("no-such-linter --all", 127, "no-such-linter: not found"),
        ("./lint.sh", 126, "./lint.sh: Permission denied"),
    ],
)
def test_a_required_check_that_could_not_run_is_an_error_naming_it(
    wroot: Root, check: str, code: int, why: str
) -> None:
    out, res = run(
        wroot,
        [{"id": "ok", "check": "true"}, {"id": "lint", "check": check}],
        agent="printf 'exit 0\\n' > lint.sh",  # not executable
        max_attempts=3,
    )
    assert out.status == "failed" and out.lifecycle.attempt == 1, "never retried"
    lint = res.rubric[1]
    assert (lint.state, lint.passed, lint.exit_code) == ("error", False, code)
    assert res.verdict == "failed"
    assert out.lifecycle.reason.startswith("attempt 1: check lint could not run: sh: ")
    assert out.lifecycle.reason.endswith(why)
    log = (out.path / "logs" / "attempt-1.log").read_text()
    assert "rubric lint (required): ERROR (exit" in log


def test_an_optional_check_that_could_not_run_fails_nothing(wroot: Root) -> None:
    out, res = run(wroot, [{"id": "lint", "check": "no-such-linter", "required": False}])
    assert out.status == "succeeded" and res.rubric[0].state == "error"
    assert res.verdict == "ungraded" and "ungraded" in out.lifecycle.reason


@pytest.mark.parametrize(
    ("checks", "why"),
    [
        ([], "no rubric"),
        ([{"id": "review", "description": "a human looks"}], "no item has a check"),
        (
            [{"id": "review"}, {"id": "lint", "check": "no-such-linter", "required": False}],
            "every check is optional and none ran to an exit",
        ),
    ],
)
def test_the_reason_and_show_say_why_a_job_is_ungraded(
    wroot: Root, checks: list[dict[str, object]], why: str
) -> None:
    """Each case is named (the old "no runnable check" read as "a check that could not run")."""
    out, res = run(wroot, checks)
    assert out.status == "succeeded" and res.verdict == "ungraded"
    assert out.lifecycle.reason == f"attempt 1: agent exited 0, ungraded ({why})"
    shown = subprocess.run(
        [FARRO, "show", "--root", str(wroot.path), out.id],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"; verdict ungraded ({why})\n" in shown, shown


def test_a_check_exiting_1_is_a_failure_not_an_error(wroot: Root) -> None:
    out, res = run(wroot, [{"id": "t", "check": "exit 1"}])
    assert res.rubric[0].state == "failed"
    assert out.lifecycle.reason == "attempt 1: required check failed: t"


def test_check_timeout_uses_kill_grace_s(tmp_path: Path) -> None:
    """SIGTERM, then SIGKILL only after kill_grace_s: a check that traps TERM gets its grace."""
    item = RubricItem(
        id="slow",
        check="trap 'echo got-term; sleep 0.3; echo cleaned; exit 3' TERM; "
        "echo begun; while :; do sleep 0.05; done",
        timeout_s=0.3,
    )
    v = rubric.run_check(item, tmp_path, {"PATH": "/usr/bin:/bin"}, kill_grace_s=30)
    assert v.state == "timed_out" and "got-term" in v.output_tail and "cleaned" in v.output_tail
    v = rubric.run_check(item, tmp_path, {"PATH": "/usr/bin:/bin"}, kill_grace_s=0)
    assert v.state == "timed_out" and "cleaned" not in v.output_tail


def test_a_check_that_prints_without_end_is_killed_before_it_fills_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rubric, "OUTPUT_MAX_BYTES", 1 << 20)
    item = RubricItem(id="flood", check="yes farro", timeout_s=120)
    v = rubric.run_check(item, tmp_path, {"PATH": "/usr/bin:/bin"}, kill_grace_s=1)
    # killed for its output, not by its 120 s timeout: the verdict says which
    assert v.passed is False and v.exit_code is None and v.state == "failed"
    assert "timed out" not in v.output_tail
    assert v.output_tail.endswith(f"[farro] output exceeded {1 << 20} bytes; check killed")
