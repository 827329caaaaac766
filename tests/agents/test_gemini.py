"""The gemini preset with the real Gemini CLI against a fake Gemini API server.

The fake server answers ``streamGenerateContent`` (SSE) with a call of the CLI's
own ``write_file`` tool, then a final message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker.helpers import make_repo

from farro_core.root import Root

from . import scenarios
from .clis import install
from .fake_models import FakeModel

AUTH_401: tuple[int, dict[str, str], str] = (
    401,
    {},
    '{"error":{"code":401,"message":"API key not valid. Please pass a valid API key.",'
    '"status":"UNAUTHENTICATED"}}',
)
RATE_429: tuple[int, dict[str, str], str] = (
    429,
    {},
    '{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).",'
    '"status":"RESOURCE_EXHAUSTED"}}',
)
AUTH_SETTINGS = {"security": {"auth": {"selectedType": "gemini-api-key"}}}


@pytest.fixture(scope="module")
def gemini_bin() -> Path:
    return install("gemini")


@pytest.fixture
def fake(gemini_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeModel]:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(AUTH_SETTINGS))
    with FakeModel("gemini") as model:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("PATH", f"{gemini_bin}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("GEMINI_API_KEY", "fake-key")
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", model.url)
        for name in ("GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_USE_VERTEXAI"):
            monkeypatch.delenv(name, raising=False)
        yield model


def test_gemini_edits_through_its_tools_and_reports_tokens(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    _, res = scenarios.edits_hello(wroot, make_repo(tmp_path / "repo"), "gemini")
    r = res.report
    assert r["agent"] == "gemini" and r["turns"] == 2 and r["session_id"]
    calls = len(fake.script.requests)  # its routing call counts too
    scenarios.tokens_kept_apart(r, calls, fake)


def test_an_edit_outside_allowed_paths_is_a_violation(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    scenarios.edit_outside_allowed_paths_fails(wroot, tmp_path, "gemini")


def test_a_429_is_retried_by_farro(wroot: Root, tmp_path: Path, fake: FakeModel) -> None:
    fake.script.fail_always = RATE_429  # the CLI would retry for minutes: FARRO ends it
    scenarios.rate_limit_is_retried(wroot, tmp_path, "gemini", fake, always=True)


def test_a_401_fails_at_once_without_a_retry(wroot: Root, tmp_path: Path, fake: FakeModel) -> None:
    fake.script.fail_always = AUTH_401
    scenarios.fails_at_once(wroot, tmp_path, "gemini", "authentication failed (auth)")


def test_no_auth_method_is_named_and_costs_no_attempt(
    wroot: Root, tmp_path: Path, fake: FakeModel
) -> None:
    (Path(os.environ["HOME"]) / ".gemini" / "settings.json").unlink()
    scenarios.left_before_the_cli_runs(wroot, tmp_path, "gemini", fake, "selectedType")


def test_an_unreachable_endpoint_is_retried(
    wroot: Root, tmp_path: Path, fake: FakeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")
    scenarios.unreachable_is_retried(wroot, tmp_path, "gemini")
