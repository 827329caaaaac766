"""The codex preset with the real Codex CLI against a fake OpenAI Responses server.

Codex reads its model provider from ``$CODEX_HOME/config.toml``; the fake server
asks for its real ``exec_command`` tool with an ``apply_patch`` heredoc, which
Codex applies itself, then ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_until
from worker.helpers import git, make_repo, make_worker, submit

from farro_core.root import Root

from .clis import install
from .fake_models import USAGE, FakeModel

AUTH_401: tuple[int, dict[str, str], str] = (
    401,
    {},
    '{"error":{"message":"Incorrect API key provided: sk-fake.","type":"invalid_request_error",'
    '"code":"invalid_api_key"}}',
)
RATE_429: tuple[int, dict[str, str], str] = (
    429,
    {"retry-after": "1"},
    '{"error":{"message":"Rate limit reached. Please try again in 1s.","type":"requests",'
    '"code":"rate_limit_exceeded"}}',
)


def provider(url: str, key: str = "FAKE_OPENAI_KEY") -> str:
    """A config.toml naming a model provider (README.md's Codex recipe, retries off)."""
    return f"""model = "gpt-fake"
model_provider = "fake"

[model_providers.fake]
name = "fake"
base_url = "{url}/v1"
env_key = "{key}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


@pytest.fixture(scope="module")
def codex_bin() -> Path:
    return install("codex")


@pytest.fixture
def fake(codex_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModel]:
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    with FakeModel("responses") as model:
        (home / ".codex" / "config.toml").write_text(provider(model.url))
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))
        monkeypatch.setenv("PATH", f"{codex_bin}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-fake")
        for name in ("OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        yield model


def _run(wroot: Root, repo: Path, **kw: object) -> str:
    kw.setdefault("agent", "codex")
    env = submit(
        wroot,
        "Write hello.txt saying hello.",
        workspace=str(repo),
        rubric=[{"id": "hello", "check": "grep -q 'hello from the fake model' hello.txt"}],
        **kw,
    )
    return env.id


def test_codex_edits_through_its_tools_and_reports_tokens(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    repo = make_repo(tmp_path / "repo")
    job_id = _run(wroot, repo, allowed_paths=["hello.txt"])
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.verdict == "passed"
    assert git(repo, "show", f"farro/{job_id}:hello.txt") == "hello from the fake model"
    r = res.report
    calls = 2  # the edit, then the final message
    assert r["agent"] == "codex" and r["turns"] == 1 and r["session_id"]
    # OpenAI counts cached input inside input_tokens; FARRO keeps them apart
    assert r["tokens_in"] == (USAGE["input"] - USAGE["cache_read"]) * calls
    assert r["tokens_cache_read"] == USAGE["cache_read"] * calls
    assert r["tokens_out"] == USAGE["output"] * calls
    assert r["summary"] == fake.script.summary and "failure" not in r


def test_an_edit_outside_allowed_paths_is_a_violation(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    repo = make_repo(tmp_path / "repo")
    _run(wroot, repo, allowed_paths=["src/**"])
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed"
    assert "outside allowed_paths: hello.txt" in out.lifecycle.reason


def test_a_429_is_retried_after_its_delay(wroot: Root, tmp_path: Path, fake: FakeModel) -> None:
    fake.script.fail = [RATE_429]
    repo = make_repo(tmp_path / "repo")
    _run(wroot, repo, allowed_paths=["hello.txt"])
    w = make_worker(wroot, retry_backoff_s=0)
    first = w.run_once()
    assert first is not None and first.status == "queued", first.lifecycle.reason
    lc = first.lifecycle
    assert "rate limited (rate_limit)" in lc.reason, lc.reason
    assert lc.result is not None and lc.not_before is not None
    out = wait_until(w.run_once, timeout=120, what="the retry")
    assert out.status == "succeeded", out.lifecycle.reason


def test_a_401_fails_at_once_without_a_retry(wroot: Root, tmp_path: Path, fake: FakeModel) -> None:
    fake.script.fail_always = AUTH_401
    repo = make_repo(tmp_path / "repo")
    _run(wroot, repo, max_attempts=3)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed", out.lifecycle.reason
    assert out.lifecycle.attempt == 1
    assert "authentication failed (auth)" in out.lifecycle.reason
    assert "401" in out.lifecycle.reason


def test_the_providers_key_variable_is_named_when_missing(
    wroot: Root, tmp_path: Path, fake: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_OPENAI_KEY")
    repo = make_repo(tmp_path / "repo")
    _run(wroot, repo)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed" and out.lifecycle.attempt == 1
    assert "FAKE_OPENAI_KEY" in out.lifecycle.reason and "'fake'" in out.lifecycle.reason
    assert fake.script.requests == []


def test_an_unreachable_endpoint_is_retried_though_codex_would_wait_forever(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    config = Path(os.environ["CODEX_HOME"]) / "config.toml"
    config.write_text(provider("http://127.0.0.1:9"))
    repo = make_repo(tmp_path / "repo")
    _run(wroot, repo, timeout_s=3600)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "queued", out.lifecycle.reason
    assert "model endpoint unreachable (unreachable)" in out.lifecycle.reason
