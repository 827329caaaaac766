"""The claude preset with the real Claude Code CLI against a fake Anthropic server.

The fake server streams SSE like the Messages API: it asks for the real Write tool
on the first turn, then ends. FARRO's whole flow runs: worktree, judging, commit
on ``farro/<id>``, the result read from the CLI's own stream-json output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker.helpers import git, load, make_repo, make_worker

from farro_core.envelope import Envelope
from farro_core.root import Root

from . import scenarios
from .clis import install
from .fake_models import USAGE, FakeModel

FARRO = str(Path(sys.executable).with_name("farro"))
AUTH_401: tuple[int, dict[str, str], str] = (
    401,
    {},
    '{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}',
)
RATE_429: tuple[int, dict[str, str], str] = (
    429,
    {"retry-after": "1"},
    '{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}',
)


@pytest.fixture(scope="module")
def claude_bin() -> Path:
    return install("claude")


@pytest.fixture
def agent_env(
    claude_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeModel]:
    home = tmp_path / "home"
    home.mkdir()
    with FakeModel("anthropic") as fake:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("PATH", f"{claude_bin}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
        for name in ("ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CONFIG_DIR"):
            monkeypatch.delenv(name, raising=False)
        yield fake


def _run(wroot: Root, repo: Path, **kw: object) -> str:
    return scenarios.submit_hello(wroot, repo, "claude", **kw)


def test_claude_edits_through_its_tools_and_reports_cost_and_tokens(
    wroot: Root, tmp_path: Path, agent_env: FakeModel
) -> None:
    repo = make_repo(tmp_path / "repo")
    job_id, res = scenarios.edits_hello(wroot, repo, "claude")
    r = res.report
    turns = 2  # the Write, then the final message
    assert r["agent"] == "claude" and r["turns"] == turns
    assert r["tokens_in"] == USAGE["input"] * turns
    assert r["tokens_out"] == USAGE["output"] * turns
    assert r["tokens_cache_read"] == USAGE["cache_read"] * turns
    assert r["tokens_cache_write"] == USAGE["cache_write"] * turns
    assert isinstance(r["cost_usd"], float) and r["cost_usd"] > 0
    assert r["summary"] == agent_env.script.summary and r["session_id"]
    assert "failure" not in r
    # the key reached the CLI, and the model endpoint was the fake one
    assert agent_env.script.requests, "Claude Code never called the fake server"

    shown = subprocess.run(
        [FARRO, "show", "--root", str(wroot.path), job_id], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert f"cost ${r['cost_usd']:.4f}" in shown.stdout
    assert f"tokens {r['tokens_in']:,} in / {r['tokens_out']:,} out" in shown.stdout
    assert "cache 600 read / 80 written" in shown.stdout
    assert "turns 2" in shown.stdout


def test_an_edit_outside_allowed_paths_is_a_violation(
    wroot: Root, tmp_path: Path, agent_env: FakeModel
) -> None:
    scenarios.edit_outside_allowed_paths_fails(wroot, tmp_path, "claude")


def test_a_429_is_retried_with_backoff(wroot: Root, tmp_path: Path, agent_env: FakeModel) -> None:
    agent_env.script.fail = [RATE_429]

    def backed_off(first: Envelope) -> None:
        lc = first.lifecycle
        assert "retry in" in lc.reason
        assert lc.result is not None and lc.result.report["failure"] == "rate_limit"
        assert lc.not_before is not None and lc.not_before > lc.result.finished_at

    job_id, repo, _, out = scenarios.rate_limit_is_retried(
        wroot, tmp_path, "claude", agent_env, always=False, check_first=backed_off
    )
    assert out.lifecycle.attempt == 2
    assert git(repo, "show", f"farro/{job_id}:hello.txt") == scenarios.HELLO


def test_a_401_fails_at_once_without_a_retry(
    wroot: Root, tmp_path: Path, agent_env: FakeModel
) -> None:
    agent_env.script.fail_always = AUTH_401
    job_id, out = scenarios.fails_at_once(wroot, tmp_path, "claude", "authentication failed (auth)")
    assert "Invalid API key" in out.lifecycle.reason
    assert len(agent_env.script.requests) == 1, "the CLI retried a 401 itself"
    res = load(wroot, job_id).lifecycle.result
    assert res is not None and res.error is not None and "auth" in res.error


def test_no_key_costs_no_attempt(
    wroot: Root, tmp_path: Path, agent_env: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    scenarios.left_before_the_cli_runs(wroot, tmp_path, "claude", agent_env, "ANTHROPIC_API_KEY")


def test_an_unreachable_endpoint_is_retried(
    wroot: Root, tmp_path: Path, agent_env: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")  # discard: refused
    scenarios.unreachable_is_retried(wroot, tmp_path, "claude")


def test_the_preset_table_form_passes_model_and_allowed_tools(
    wroot: Root, tmp_path: Path, agent_env: FakeModel
) -> None:
    repo = make_repo(tmp_path / "repo")
    agent = {"preset": "claude", "model": "claude-fake-1", "allow_tools": ["Bash(pytest:*)"]}
    job_id = _run(wroot, repo, allowed_paths=["hello.txt"], agent=agent)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    models = {r["body"].get("model") for r in agent_env.script.requests}
    assert "claude-fake-1" in models
    log = (load(wroot, job_id).path / "logs" / "attempt-1.log").read_text()
    command = json.loads(log.split("[farro] command: ", 1)[1].splitlines()[0])
    assert command[command.index("--allowedTools") + 1] == "Bash(pytest:*)"


def test_a_context_overflow_fails_at_once(
    wroot: Root, tmp_path: Path, agent_env: FakeModel
) -> None:
    too_long = "prompt is too long: 250000 tokens > 200000 maximum"
    body = json.dumps(
        {"type": "error", "error": {"type": "invalid_request_error", "message": too_long}}
    )
    agent_env.script.fail_always = (400, {}, body)
    scenarios.fails_at_once(wroot, tmp_path, "claude", "context overflow (context)")


def test_a_command_not_in_allow_tools_is_a_permission_denial(
    wroot: Root, tmp_path: Path, agent_env: FakeModel
) -> None:
    agent_env.script.bash = "python3 -c \"open('ran.txt', 'w')\""
    repo = make_repo(tmp_path / "repo")
    job_id = _run(wroot, repo, rubric=[])
    out = make_worker(wroot).run_once()
    assert out is not None and out.lifecycle.result is not None
    assert out.lifecycle.result.report["permission_denials"] == ["Bash"]
    assert not (wroot.path / "worktrees" / job_id / "ran.txt").exists()
    shown = subprocess.run(
        [FARRO, "show", "--root", str(wroot.path), job_id], capture_output=True, text=True
    )
    assert "denied Bash" in shown.stdout


def test_allow_tools_lets_it_run_the_command(
    wroot: Root, tmp_path: Path, agent_env: FakeModel
) -> None:
    agent_env.script.bash = "python3 -c \"open('ran.txt', 'w')\""
    repo = make_repo(tmp_path / "repo")
    agent = {"preset": "claude", "allow_tools": ["Bash(python3:*)"]}
    job_id = _run(wroot, repo, rubric=[], agent=agent, allowed_paths=["ran.txt"])
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert out.lifecycle.result is not None
    assert "permission_denials" not in out.lifecycle.result.report
    assert git(repo, "show", "--stat", f"farro/{job_id}").count("ran.txt") == 1
