"""README.md's agent recipes, run as written with the real CLIs, so they cannot rot.

Each ``<!-- recipe: PRESET FILE -->`` block is used as that file: ``farro.toml``
is the root's settings, Codex's ``config.toml`` its model provider (the base URL
pointed at the fake server, the key variable given a fake key).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
from worker.helpers import FAST, git, make_repo, make_worker, submit

from farro_core.root import Root

from .clis import install
from .fake_models import FakeModel

README = Path(__file__).parents[2] / "README.md"
_RECIPE = re.compile(r"<!-- recipe: (\w+) ([\w.]+) -->\n```(?:toml|json)\n(.*?)```", re.S)


def recipes() -> dict[tuple[str, str], str]:
    return {(m[1], m[2]): m[3] for m in _RECIPE.finditer(README.read_text())}


def test_the_readme_has_a_recipe_for_each_tested_preset() -> None:
    want = {("claude", "farro.toml"), ("codex", "farro.toml"), ("codex", "config.toml")}
    want |= {("gemini", "farro.toml"), ("gemini", "settings.json")}
    assert want | {("aider", "farro.toml")} <= set(recipes())


def _root(tmp_path: Path, farro_toml: str) -> Root:
    Root.init(tmp_path / "root")
    (tmp_path / "root" / "farro.toml").write_text(farro_toml)
    return Root.open(tmp_path / "root", **FAST)


def _job_runs(root: Root, repo: Path) -> None:
    env = submit(
        root,
        "Write hello.txt saying hello.",
        workspace=str(repo),
        allowed_paths=["hello.txt"],
        rubric=[{"id": "hello", "check": "grep -q hello hello.txt"}],
    )
    out = make_worker(root).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert git(repo, "show", f"farro/{env.id}:hello.txt") == "hello from the fake model"
    assert out.lifecycle.result is not None and out.lifecycle.result.report["turns"] >= 1


def test_the_claude_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = install("claude")
    settings = recipes()[("claude", "farro.toml")]
    assert tomllib.loads(settings)["agent"]["preset"] == "claude"
    (tmp_path / "home").mkdir()
    with FakeModel("anthropic") as fake:
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-fake")
        _job_runs(_root(tmp_path, settings), make_repo(tmp_path / "repo"))
        assert fake.script.requests, "the recipe's env_allow kept the key or URL away"


def test_the_codex_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = install("codex")
    config = recipes()[("codex", "config.toml")]
    key = tomllib.loads(config)["model_providers"]["mine"]["env_key"]
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    with FakeModel("responses") as fake:
        url = re.sub(r'base_url = "[^"]*"', f'base_url = "{fake.url}/v1"', config)
        (home / ".codex" / "config.toml").write_text(url)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("CODEX_HOME", raising=False)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv(key, "sk-fake")
        _job_runs(_root(tmp_path, recipes()[("codex", "farro.toml")]), make_repo(tmp_path / "repo"))
        assert fake.script.requests


def test_the_aider_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = install("aider")
    settings = recipes()[("aider", "farro.toml")]
    (tmp_path / "home").mkdir()
    with FakeModel("chat") as fake:
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
        monkeypatch.setenv("OPENAI_API_BASE", f"{fake.url}/v1")
        _job_runs(_root(tmp_path, settings), make_repo(tmp_path / "repo"))
        assert fake.script.requests


def test_the_gemini_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = install("gemini")
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(recipes()[("gemini", "settings.json")])
    with FakeModel("gemini") as fake:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("GEMINI_API_KEY", "fake-key")
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        settings = recipes()[("gemini", "farro.toml")]
        _job_runs(_root(tmp_path, settings), make_repo(tmp_path / "repo"))
        assert fake.script.requests
