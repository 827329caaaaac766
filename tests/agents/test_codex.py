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
from worker.helpers import make_repo

from farro_core.envelope import Envelope
from farro_core.root import Root

from . import scenarios
from .clis import install
from .fake_models import FakeModel

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


def test_codex_edits_through_its_tools_and_reports_tokens(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    _, res = scenarios.edits_hello(wroot, make_repo(tmp_path / "repo"), "codex")
    r = res.report
    calls = 2  # the edit, then the final message
    assert r["agent"] == "codex" and r["turns"] == 1 and r["session_id"]
    scenarios.tokens_kept_apart(r, calls, fake)


def test_an_edit_outside_allowed_paths_is_a_violation(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    scenarios.edit_outside_allowed_paths_fails(wroot, tmp_path, "codex")


def test_a_429_is_retried_after_its_delay(wroot: Root, tmp_path: Path, fake: FakeModel) -> None:
    fake.script.fail = [RATE_429]

    def delayed(first: Envelope) -> None:
        assert first.lifecycle.result is not None and first.lifecycle.not_before is not None

    scenarios.rate_limit_is_retried(
        wroot, tmp_path, "codex", fake, always=False, check_first=delayed, retry_backoff_s=0
    )


def test_a_401_fails_at_once_without_a_retry(wroot: Root, tmp_path: Path, fake: FakeModel) -> None:
    fake.script.fail_always = scenarios.OPENAI_AUTH_401
    _, out = scenarios.fails_at_once(wroot, tmp_path, "codex", "authentication failed (auth)")
    assert "401" in out.lifecycle.reason


def test_the_providers_key_variable_is_named_and_costs_no_attempt(
    wroot: Root, tmp_path: Path, fake: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_OPENAI_KEY")
    scenarios.left_before_the_cli_runs(wroot, tmp_path, "codex", fake, "FAKE_OPENAI_KEY", "'fake'")


def test_an_unreachable_endpoint_is_retried_though_codex_would_wait_forever(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    config = Path(os.environ["CODEX_HOME"]) / "config.toml"
    config.write_text(provider("http://127.0.0.1:9"))
    scenarios.unreachable_is_retried(wroot, tmp_path, "codex", timeout_s=3600)
