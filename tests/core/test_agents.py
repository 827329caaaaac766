"""The presets' readers on CLI output shapes the real-CLI tests do not reach.

The real CLIs run in tests/agents (``make test-agents``); these cover the
classification of outputs a fake server cannot easily provoke: an overload, a
run that ends with zero turns, an output cut before its result; and what each
preset lacks on a host, told without running its CLI.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from support import wait_until

from farro_core import agents
from farro_core.envelope import AgentPreset


def _lines(*items: dict[str, Any]) -> bytes:
    return ("garbage the CLI printed\n" + "".join(json.dumps(i) + "\n" for i in items)).encode()


def _claude(**result: Any) -> bytes:
    base = {"type": "result", "subtype": "success", "is_error": False, "num_turns": 2}
    return _lines({"type": "system", "subtype": "init"}, {**base, **result})


def test_claude_success_is_read_into_the_common_fields() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 3,
        "cache_creation_input_tokens": 2,
    }
    got = agents.parse_claude(
        _claude(total_cost_usd=0.5, usage=usage, result="done", session_id="s1"), 0
    )
    assert got.failure is None
    assert got.report == {
        "agent": "claude",
        "cost_usd": 0.5,
        "tokens_in": 10,
        "tokens_out": 5,
        "tokens_cache_read": 3,
        "tokens_cache_write": 2,
        "turns": 2,
        "session_id": "s1",
        "summary": "done",
    }


def test_claude_overload_is_a_rate_limit_with_the_cli_delay() -> None:
    retry = {"type": "system", "subtype": "api_retry", "retry_delay_ms": 7000}
    result = {
        "type": "result",
        "is_error": True,
        "num_turns": 1,
        "api_error_status": 529,
        "result": "API Error: Overloaded",
    }
    got = agents.parse_claude(_lines(retry, result), 1)
    assert got.failure == agents.Failure("rate_limit", "Claude Code: API Error: Overloaded", 7.0)
    assert not got.failure.fatal and got.report["failure"] == "rate_limit"


def test_claude_zero_turns_or_no_result_is_no_success() -> None:
    zero = agents.parse_claude(_claude(num_turns=0), 0)
    assert zero.failure is not None and zero.failure.kind == "error"
    cut = agents.parse_claude(b'{"type": "assistant"}\n{"type": "resu', 0)
    assert cut.failure is not None and "no result" in cut.failure.message


def test_claude_permission_denials_are_tool_names() -> None:
    denials = [{"tool_name": "Bash", "tool_input": {"command": "pytest"}}, "junk"]
    got = agents.parse_claude(_claude(permission_denials=denials), 0)
    assert got.report["permission_denials"] == ["Bash"]


def test_codex_failures_by_status_and_words() -> None:
    def failed(message: str) -> agents.Failure | None:
        out = _lines(
            {"type": "thread.started", "thread_id": "t"},
            {"type": "turn.failed", "error": {"message": message}},
        )
        return agents.parse_codex(out, 1).failure

    denied = failed("unexpected status 401 Unauthorized: bad key")
    assert denied is not None and denied.kind == "auth" and denied.fatal
    limited = failed("Rate limit reached. Please try again in 20s.")
    assert limited is not None and limited.kind == "rate_limit" and limited.retry_after_s == 20
    overflow = failed("context_length_exceeded: the input exceeds the context window")
    assert overflow is not None and overflow.kind == "context" and overflow.fatal
    assert agents.parse_codex(_lines({"type": "thread.started"}), 0).failure is not None


def test_aider_lines_with_k_counts_and_cache() -> None:
    out = (
        b"Tokens: 2.4k sent, 1.0k cache hit, 160 received. Cost: $0.01 message, $0.01 session.\n"
        b"Applied edit to a.py\nTokens: 1k sent, 5 received. Cost: $0.02 message, $0.03 session.\n"
        b"Applied edit to b.py\nApplied edit to a.py\n"
    )
    got = agents.parse_aider(out, 0)
    assert got.failure is None
    r = got.report
    assert (r["tokens_in"], r["tokens_cache_read"], r["tokens_out"]) == (2400, 1000, 165)
    assert r["cost_usd"] == 0.03 and r["turns"] == 2
    assert r["summary"] == "Applied edits to a.py, b.py"


def test_aider_exit_0_without_a_model_call_is_no_success() -> None:
    got = agents.parse_aider(b"Aider v0.86.1\nModel: x\n", 0)
    assert got.failure is not None and got.failure.kind == "error"
    wrapped = (
        b"litellm.ContextWindowExceededError: ContextWindowExceededError:\n"
        b"OpenAIException - too long\n"
    )
    got = agents.parse_aider(wrapped, 0)
    assert got.failure is not None and got.failure.kind == "context"


def test_retry_after_in_words() -> None:
    assert agents.retry_after("Please try again in 1.5s.") == 1.5
    assert agents.retry_after("retry in 250ms") == 0.25
    assert agents.retry_after("no hint") is None


# ---------------------------------------------------------------- what a preset lacks


def _bare(tmp_path: Path) -> dict[str, str]:
    """An environment with no key and homes with no config: every preset lacks something."""
    (tmp_path / "home").mkdir()
    (tmp_path / "codex").mkdir()
    return {"HOME": str(tmp_path / "home"), "CODEX_HOME": str(tmp_path / "codex"), "PATH": "/bin"}


def test_each_preset_names_exactly_what_this_host_lacks(tmp_path: Path) -> None:
    env = _bare(tmp_path)
    codex = agents.missing("codex", env)
    assert codex is not None and codex.startswith("agent preset codex: no model provider")
    assert f"{tmp_path}/codex/config.toml not found" in codex
    assert "OPENAI_API_KEY" in codex and f"{tmp_path}/codex/auth.json" in codex
    claude = agents.missing("claude", env)
    assert claude is not None and claude.startswith("agent preset claude: no key")
    assert "ANTHROPIC_API_KEY" in claude and f"{tmp_path}/home/.claude/.credentials.json" in claude
    gemini = agents.missing("gemini", env)
    assert gemini is not None and "GEMINI_API_KEY" in gemini
    gemini = agents.missing("gemini", {**env, "GEMINI_API_KEY": "k"})
    assert gemini is not None and "selectedType" in gemini
    assert f"{tmp_path}/home/.gemini/settings.json" in gemini
    aider = agents.missing("aider", env)
    assert aider is not None and aider.startswith("agent preset aider: no key")


def test_a_configured_preset_lacks_nothing(tmp_path: Path) -> None:
    env = _bare(tmp_path)
    config = tmp_path / "codex" / "config.toml"
    config.write_text('model_provider = "p"\n[model_providers.p]\nenv_key = "P_KEY"\n')
    lacks = agents.missing("codex", env)
    assert lacks is not None and "'p'" in lacks and "P_KEY" in lacks
    assert agents.missing("codex", {**env, "P_KEY": "k"}) is None
    (tmp_path / "home" / ".claude").mkdir()
    (tmp_path / "home" / ".claude" / ".credentials.json").write_text("{}")
    assert agents.missing("claude", env) is None
    (tmp_path / "home" / ".gemini").mkdir()
    (tmp_path / "home" / ".gemini" / "settings.json").write_text(
        json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}})
    )
    assert agents.missing("gemini", {**env, "GEMINI_API_KEY": "k"}) is None
    assert agents.missing("aider", {**env, "DEEPSEEK_API_KEY": "k"}) is None


def test_a_refusal_is_the_table_then_the_host(tmp_path: Path) -> None:
    env = _bare(tmp_path)
    bad = AgentPreset(preset="codex", allow_tools=["Bash"])
    # a table the CLI cannot take is refused on any host, checked or not
    assert agents.refusal(bad, None) == agents.refusal(bad, env)
    assert "takes no allow_tools" in (agents.refusal(bad, None) or "")
    assert agents.refusal(AgentPreset(preset="codex"), None) is None
    assert (agents.refusal(AgentPreset(preset="codex"), env) or "").startswith(
        "agent preset codex: no model provider"
    )
    assert agents.refusal(["codex", "exec"], env) is None  # no preset: FARRO cannot tell


def test_a_fifo_config_file_is_read_as_none_and_never_blocks_the_check(tmp_path: Path) -> None:
    """submit, the manager's inbox and every worker scan ask :func:`agents.missing`: a FIFO
    where a CLI's config is (no writer) must not hang them; a symlinked one (dotfiles) works."""
    env = {**_bare(tmp_path), "GEMINI_API_KEY": "k"}
    (tmp_path / "home" / ".gemini").mkdir()
    settings = tmp_path / "home" / ".gemini" / "settings.json"
    os.mkfifo(settings)
    os.mkfifo(tmp_path / "codex" / "config.toml")
    said: dict[str, str | None] = {}
    for name in ("gemini", "codex"):
        threading.Thread(target=lambda n=name: said.update({n: agents.missing(n, env)}),
                         daemon=True).start()  # fmt: skip
    wait_until(lambda: len(said) == 2, "both checks to return", diagnose=lambda: said)
    assert said["gemini"] is not None and "selectedType" in said["gemini"]
    assert said["codex"] is not None and "config.toml is not a regular file" in said["codex"]
    settings.unlink()
    real = tmp_path / "dotfiles-settings.json"
    real.write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}))
    settings.symlink_to(real)
    assert agents.missing("gemini", env) is None
    real.write_text(" " * agents.CONFIG_LIMIT + "{}")  # huge: not read, not chosen
    assert "selectedType" in (agents.missing("gemini", env) or "")
