"""The aider preset with the real Aider against a fake OpenAI Chat Completions server.

Aider prints no JSON: the preset reads its "Tokens: …" and "Cost: …" lines, and
its litellm errors, which it reports with exit status 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker.helpers import git, make_repo

from farro_core.envelope import Envelope
from farro_core.root import Root

from . import scenarios
from .clis import install
from .fake_models import FakeModel

MODEL = "openai/gpt-fake"
PRICE = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
RATE_429: tuple[int, dict[str, str], str] = (
    429,
    {},
    '{"error":{"message":"Rate limit reached. Please try again in 1.5s.","type":"requests",'
    '"code":"rate_limit_exceeded"}}',
)


@pytest.fixture(scope="module")
def aider_bin() -> Path:
    return install("aider")


@pytest.fixture
def fake(aider_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModel]:
    home = tmp_path / "home"
    caches = home / ".aider" / "caches"
    caches.mkdir(parents=True)
    # the model's price, where aider looks first (it would fetch litellm's list otherwise)
    info = {**PRICE, "litellm_provider": "openai", "mode": "chat", "max_input_tokens": 128000}
    (caches / "model_prices_and_context_window.json").write_text(json.dumps({MODEL: info}))
    with FakeModel("chat") as model:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("PATH", f"{aider_bin}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        monkeypatch.setenv("OPENAI_API_BASE", f"{model.url}/v1")
        yield model


AIDER = {"preset": "aider", "model": MODEL}


def test_aider_edits_and_reports_cost_and_tokens(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    repo = make_repo(tmp_path / "repo")
    git(repo, "config", "--unset", "user.name")  # no identity: aider would write one
    git(repo, "config", "--unset", "user.email")
    config = (repo / ".git" / "config").read_text()
    _, res = scenarios.edits_hello(wroot, repo, AIDER)
    # nothing in the repository but the edit: no .gitignore entry, no history, no identity
    assert res.violations == [] and res.work is not None
    assert (repo / ".git" / "config").read_text() == config
    r = res.report
    assert r["agent"] == "aider" and r["turns"] == 1
    assert r["tokens_in"] > 0 and r["tokens_out"] > 0
    assert isinstance(r["cost_usd"], float) and r["cost_usd"] > 0
    assert r["summary"] == "Applied edits to hello.txt" and "failure" not in r


def test_an_edit_outside_allowed_paths_is_a_violation(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    scenarios.edit_outside_allowed_paths_fails(wroot, tmp_path, AIDER)


def test_a_429_is_retried_by_farro(wroot: Root, tmp_path: Path, fake: FakeModel) -> None:
    fake.script.fail_always = RATE_429  # aider would retry for a minute: FARRO ends it

    def honoured(first: Envelope) -> None:
        # the API's "try again in 1.5s", longer than FARRO's own backoff, is honoured
        assert "retry in 1.5s" in first.lifecycle.reason
        assert first.lifecycle.not_before is not None

    scenarios.rate_limit_is_retried(
        wroot, tmp_path, AIDER, fake, always=True, check_first=honoured, retry_backoff_s=0
    )


def test_a_401_fails_at_once_though_aider_exits_0(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    fake.script.fail_always = scenarios.OPENAI_AUTH_401
    _, out = scenarios.fails_at_once(wroot, tmp_path, AIDER, "authentication failed (auth)")
    assert out.lifecycle.result is not None and out.lifecycle.result.exit_code == 0


def test_an_unreachable_endpoint_is_retried_though_aider_exits_0(
    wroot: Root, tmp_path: Path, fake: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_BASE", "http://127.0.0.1:9/v1")
    scenarios.unreachable_is_retried(wroot, tmp_path, AIDER)
