"""The presets' readers on CLI output shapes the real-CLI tests do not reach.

The real CLIs run in tests/agents (``make test-agents``); these cover the
classification of outputs a fake server cannot easily provoke: an overload, a
run that ends with zero turns, an output cut before its result.
"""

from __future__ import annotations

import json
from typing import Any

from farro_core import agents


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
