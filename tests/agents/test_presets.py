"""Presets as the operator names them: settings, specs, `submit --agent`, `farro agents`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farro_core import agents
from farro_core.envelope import AgentPreset, parse_spec
from farro_core.errors import BadInput
from farro_core.root import Root
from farro_core.settings import load_settings

from .clis import install

FARRO = str(Path(sys.executable).with_name("farro"))


def farro(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FARRO, *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_preset_name_is_that_preset_in_a_spec_and_in_the_settings(tmp_path: Path) -> None:
    assert parse_spec({"prompt": "p", "agent": "claude"}).agent == AgentPreset(preset="claude")
    table = {"preset": "codex", "model": "gpt-x", "args": ["-c", "a=1"]}
    assert parse_spec({"prompt": "p", "agent": table}).agent == AgentPreset(**table)  # type: ignore[arg-type]
    # any other string is still a shell command, a list still an argv
    assert parse_spec({"prompt": "p", "agent": "claude -p"}).agent == "claude -p"
    (tmp_path / "farro.toml").write_text('agent = {preset = "claude", allow_tools = ["Bash"]}\n')
    settings = load_settings(tmp_path)
    assert settings.agent == AgentPreset(preset="claude", allow_tools=["Bash"])


@pytest.mark.parametrize(
    "agent",
    [
        {"preset": "claud"},
        {"preset": "claude", "modle": "x"},
        {"preset": "claude", "model": "--dangerously-skip-permissions"},
    ],
)
def test_a_bad_preset_table_is_refused(agent: dict[str, str]) -> None:
    with pytest.raises(BadInput, match="agent"):
        parse_spec({"prompt": "p", "agent": agent})


def test_submit_agent_takes_json(root: Root) -> None:
    r = farro("submit", "--root", str(root.path), "--prompt", "p", "--agent", '["my-agent", "-x"]')
    assert r.returncode == 0, r.stderr
    prompt = json.loads((root.path / "incoming" / r.stdout.strip() / "prompt.json").read_text())
    assert prompt["agent"] == ["my-agent", "-x"]
    table = '{"preset": "claude", "model": "opus"}'
    # the key is the workers' business here (this host has none)
    args = ("--prompt", "p", "--agent", table, "--no-agent-check")
    r = farro("submit", "--root", str(root.path), *args)
    assert r.returncode == 0, r.stderr
    prompt = json.loads((root.path / "incoming" / r.stdout.strip() / "prompt.json").read_text())
    assert prompt["agent"]["preset"] == "claude" and prompt["agent"]["model"] == "opus"
    r = farro("submit", "--root", str(root.path), "--prompt", "p", "--agent", "[oops")
    assert r.returncode == 2 and r.stderr.startswith("farro: --agent [oops: not valid JSON")


def test_farro_agents_lists_command_version_and_what_is_missing(tmp_path: Path) -> None:
    bin_dir = install("claude")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(HOME=str(tmp_path), PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    r = farro("agents", "--json", env=env)
    assert r.returncode == 0, r.stderr
    rows = {row["preset"]: row for row in json.loads(r.stdout)}
    claude = rows["claude"]
    assert claude["installed"] == str(bin_dir / "claude")
    assert claude["version"].startswith("2.1.332")
    assert claude["command"][:2] == ["claude", "-p"]
    assert "ANTHROPIC_API_KEY" in claude["missing"]
    r = farro("agents", env={**env, "ANTHROPIC_API_KEY": "k"})
    assert r.returncode == 0, r.stderr
    assert "claude  2.1.332 (Claude Code)" in r.stdout and "nothing more: ready" in r.stdout


def test_every_preset_says_what_it_fills() -> None:
    # README.md's "Agents" section documents these keys, the same for every preset
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for key in agents.REPORT_KEYS:
        assert f"`{key}`" in readme, key
