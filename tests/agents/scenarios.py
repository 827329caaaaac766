"""Scenario steps every CLI preset's test runs against its fake model server.

Each CLI's test file keeps its own setup (home, config, keys) and its own
assertions on what differs; the submit-run-check steps they share live here so a
change to the job flow is made once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import wait_until
from worker.helpers import git, load, make_repo, make_worker, submit

from farro_core.envelope import Envelope, Result
from farro_core.root import Root

from .fake_models import USAGE, FakeModel

HELLO = "hello from the fake model"
HELLO_RUBRIC = [{"id": "hello", "check": f"grep -q '{HELLO}' hello.txt"}]
# what the OpenAI API answers a wrong key (Codex and Aider both speak to it)
OPENAI_AUTH_401: tuple[int, dict[str, str], str] = (
    401,
    {},
    '{"error":{"message":"Incorrect API key provided: sk-fake.","type":"invalid_request_error",'
    '"code":"invalid_api_key"}}',
)


def submit_hello(wroot: Root, repo: Path, agent: object, /, **kw: Any) -> str:
    """Submit the job every scenario runs: write hello.txt, judged by its content.

    ``agent`` is the default: a test may pass its own in ``kw``.
    """
    kw.setdefault("agent", agent)
    kw.setdefault("rubric", HELLO_RUBRIC)
    return submit(wroot, "Write hello.txt saying hello.", workspace=str(repo), **kw).id


def run_one(wroot: Root, **worker: Any) -> Envelope:
    out = make_worker(wroot, **worker).run_once()
    assert out is not None, "the worker claimed nothing"
    return out


def edits_hello(wroot: Root, repo: Path, agent: object) -> tuple[str, Result]:
    """The CLI's own edit tool wrote hello.txt; FARRO judged it and committed it."""
    job_id = submit_hello(wroot, repo, agent, allowed_paths=["hello.txt"])
    out = run_one(wroot)
    assert out.status == "succeeded", out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.verdict == "passed"
    assert git(repo, "show", f"farro/{job_id}:hello.txt") == HELLO
    return job_id, res


def tokens_kept_apart(report: dict[str, Any], calls: int, fake: FakeModel) -> None:
    """An API that counts cached input inside its input tokens: FARRO keeps them apart."""
    assert report["tokens_in"] == (USAGE["input"] - USAGE["cache_read"]) * calls
    assert report["tokens_cache_read"] == USAGE["cache_read"] * calls
    assert report["tokens_out"] == USAGE["output"] * calls
    assert report["summary"] == fake.script.summary and "failure" not in report


def edit_outside_allowed_paths_fails(wroot: Root, tmp_path: Path, agent: object) -> None:
    repo = make_repo(tmp_path / "repo")
    submit_hello(wroot, repo, agent, allowed_paths=["src/**"])
    out = run_one(wroot)
    assert out.status == "failed"
    assert "outside allowed_paths: hello.txt" in out.lifecycle.reason


def rate_limit_is_retried(
    wroot: Root,
    tmp_path: Path,
    agent: object,
    fake: FakeModel,
    *,
    always: bool,
    check_first: Callable[[Envelope], None] | None = None,
    **worker: Any,
) -> tuple[str, Path, Envelope, Envelope]:
    """A 429 requeues the job; the retry succeeds once the server stops refusing.

    ``always``: the server refuses until told to stop (a CLI that would retry for
    minutes itself), else it refuses the first request only.
    """
    repo = make_repo(tmp_path / "repo")
    job_id = submit_hello(wroot, repo, agent, allowed_paths=["hello.txt"])
    w = make_worker(wroot, **worker)
    first = w.run_once()
    assert first is not None and first.status == "queued", first.lifecycle.reason
    assert "rate limited (rate_limit)" in first.lifecycle.reason, first.lifecycle.reason
    if check_first is not None:
        check_first(first)
    if always:
        fake.script.fail_always = None
    out = wait_until(w.run_once, timeout=120, what="the retry")
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    return job_id, repo, first, out


def fails_at_once(wroot: Root, tmp_path: Path, agent: object, reason: str) -> tuple[str, Envelope]:
    """A failure no retry would cure ends the job on its first attempt."""
    repo = make_repo(tmp_path / "repo")
    job_id = submit_hello(wroot, repo, agent, max_attempts=3)
    out = run_one(wroot)
    assert out.status == "failed", out.lifecycle.reason
    assert out.lifecycle.attempt == 1
    assert reason in out.lifecycle.reason
    return job_id, out


def left_before_the_cli_runs(
    wroot: Root, tmp_path: Path, agent: str, fake: FakeModel, *reasons: str
) -> None:
    """A worker whose host lacks the preset's key or config spends no attempt on the job:
    it leaves it queued and its status file says what is missing."""
    repo = make_repo(tmp_path / "repo")
    job_id = submit_hello(wroot, repo, agent)
    assert make_worker(wroot).run_once() is None
    left = load(wroot, job_id)
    assert left.status == "queued" and left.lifecycle.attempt == 0
    status = json.loads((wroot.workers_dir / "w1.json").read_text())
    why = status["passing"][agent]
    assert why.startswith(f"agent preset {agent}: ")
    for reason in reasons:
        assert reason in why
    assert fake.script.requests == []


def unreachable_is_retried(wroot: Root, tmp_path: Path, agent: object, **kw: Any) -> None:
    repo = make_repo(tmp_path / "repo")
    submit_hello(wroot, repo, agent, **kw)
    out = run_one(wroot)
    assert out.status == "queued", out.lifecycle.reason
    assert "model endpoint unreachable (unreachable)" in out.lifecycle.reason
