"""Rubric checks after the agent: pass, fail, required or optional, timeout, ungraded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from farro_core import rubric
from farro_core.envelope import RubricItem, RubricVerdict
from farro_core.root import Root

from .helpers import make_repo, make_worker, sh, submit


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
        id="tests", passed=False, required=True, exit_code=2, output_tail="3 failed\n"
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
    marker = tmp_path / "survivor"
    check = f"echo begun; (sleep 3; touch {marker}) & sleep 30"
    t0 = time.monotonic()
    out, res = run(wroot, [{"id": "slow", "check": check, "timeout_s": 0.5}])
    assert time.monotonic() - t0 < 5
    assert out.status == "failed"
    v = res.rubric[0]
    assert v.passed is False and v.exit_code is None
    assert "begun" in v.output_tail and "timed out after 0.5s" in v.output_tail
    time.sleep(3.2)  # the background child would have touched the marker by now
    assert not marker.exists()


def test_ungraded_is_not_failed(wroot: Root) -> None:
    out, res = run(wroot, [{"id": "manual", "description": "a human looks at it"}])
    assert out.status == "succeeded"
    assert res.verdict == "ungraded"
    assert res.rubric == [RubricVerdict(id="manual", passed=None, required=True)]
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
    v = rubric.run_check(item, Path("/"), {"PATH": "/usr/bin:/bin"})
    assert v.passed and len(v.output_tail) == rubric.TAIL_CHARS
    assert v.output_tail.endswith("line-499\n")


def test_verdict_rules() -> None:
    def v(passed: bool | None, required: bool = True) -> RubricVerdict:
        return RubricVerdict(id="x", passed=passed, required=required)

    assert rubric.verdict([]) == "ungraded"
    assert rubric.verdict([v(None)]) == "ungraded"
    assert rubric.verdict([v(True), v(None)]) == "passed"
    assert rubric.verdict([v(True), v(False, required=False)]) == "passed"
    assert rubric.verdict([v(False), v(True)]) == "failed"


def test_a_check_that_prints_without_end_is_killed_before_it_fills_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rubric, "OUTPUT_MAX_BYTES", 1 << 20)
    item = RubricItem(id="flood", check="yes farro", timeout_s=120)
    t0 = time.monotonic()
    v = rubric.run_check(item, tmp_path, {"PATH": "/usr/bin:/bin"})
    assert time.monotonic() - t0 < 60, "killed for its output, not by its 120 s timeout"
    assert v.passed is False and v.exit_code is None
    assert v.output_tail.endswith(f"[farro] output exceeded {1 << 20} bytes; check killed")
