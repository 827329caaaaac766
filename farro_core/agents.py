"""Agent presets: the real coding-agent CLIs, run non-interactively, read back.

A preset turns ``agent = "claude"`` (or a table with a model, extra args and
allowed tools) into a command line that runs without a terminal and prints the
CLI's structured output, plus the environment the CLI needs for that. After the
run it reads that output back (the end of the attempt's output) into the same
result fields for every agent (:data:`REPORT_KEYS`), and classifies a failure:
an authentication error or a context overflow fails the job at once, a rate
limit or an unreachable model endpoint is retried with backoff, even where the
CLI exited 0. Each CLI's variables and output format were read from its
installed package (see README.md, "Agents").

Why one file of ~830 lines: one table of presets and, beside each, the reader of
that CLI's output and its failure words; a preset's pieces change together when
its CLI changes, so they are kept in one place, in the table's order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from farro_core.envelope import AgentPreset, JobSpec, preset_of
from farro_core.errors import BadInput

#: the result fields a preset fills, the same for every agent (README.md, "Agents")
REPORT_KEYS = {
    "agent": "the preset that ran",
    "cost_usd": "what the run cost, in USD, as the CLI reports it",
    "tokens_in": "input tokens not read from a cache",
    "tokens_out": "output tokens",
    "tokens_cache_read": "input tokens read from the prompt cache",
    "tokens_cache_write": "input tokens written to the prompt cache",
    "turns": "model turns the CLI counted",
    "session_id": "the CLI's session id (to resume or look it up)",
    "summary": "the agent's final message",
    "permission_denials": "tools the CLI refused to run, by name",
    "failure": "auth, rate_limit, context, unreachable or error: why the run failed",
}

#: the fields the console's job pane always shows, before the report's other scalars
MONEY_KEYS = frozenset(
    {"cost_usd", "tokens_in", "tokens_out", "tokens_cache_read", "tokens_cache_write", "turns"}
)


def report_money(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Cost, tokens and turns of a result's report, as (label, text) rows; absent ones skipped."""
    rows: list[tuple[str, str]] = []
    cost = _num(report.get("cost_usd"))
    if cost is not None:
        rows.append(("cost", f"${cost:.4f}"))
    tin, tout = _int(report.get("tokens_in")), _int(report.get("tokens_out"))
    if tin is not None or tout is not None:
        rows.append(("tokens", f"{tin or 0:,} in / {tout or 0:,} out"))
    read, wrote = _int(report.get("tokens_cache_read")), _int(report.get("tokens_cache_write"))
    if read is not None or wrote is not None:
        rows.append(("cache", f"{read or 0:,} read / {wrote or 0:,} written"))
    turns = _int(report.get("turns"))
    if turns is not None:
        rows.append(("turns", str(turns)))
    return rows


FailureKind = Literal["auth", "rate_limit", "context", "unreachable", "error"]
#: kinds no retry can fix: the job fails at once
FATAL: frozenset[str] = frozenset({"auth", "context"})


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str
    retry_after_s: float | None = None

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL


@dataclass
class Parsed:
    report: dict[str, Any] = field(default_factory=dict)
    failure: Failure | None = None


@dataclass(frozen=True)
class Resolved:
    """A preset made concrete: what to run, with which variables, and how to read it."""

    preset: str
    argv: list[str]
    env: dict[str, str]  # set in the agent's environment unless already there
    parse: Callable[[bytes, int], Parsed]
    stuck: Callable[[bytes], Failure | None] | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    binary: str
    package: str  # where it is installed from
    argv: Callable[[AgentPreset], list[str]]
    env: dict[str, str]
    #: what the user must configure: None when it is there, else what is missing
    missing: Callable[[Mapping[str, str]], str | None]
    parse: Callable[[bytes, int], Parsed]
    #: a failure the CLI's output shows while it runs, which it will not end by itself
    stuck: Callable[[bytes], Failure | None] | None = None


class NotConfigured(Exception):
    """The preset needs configuration the agent's environment lacks (no retry fixes it)."""


# ---------------------------------------------------------------- shared


def json_lines(tail: bytes) -> list[dict[str, Any]]:
    """Every line of ``tail`` that is a JSON object (the CLI's other output is skipped)."""
    out: list[dict[str, Any]] = []
    for line in tail.decode(errors="replace").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _clean(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if v is not None}


_RETRY_IN = re.compile(r"(?:try again|retry) in (\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)?", re.I)


def retry_after(text: str) -> float | None:
    """A "try again in 20s" in an error message, in seconds."""
    m = _RETRY_IN.search(text)
    if not m:
        return None
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


def classify(status: int | None, message: str) -> FailureKind:
    """An API error by its HTTP status, else by its words."""
    low = message.lower()
    if status in (401, 403) or any(
        w in low
        for w in ("invalid api key", "authentication", "unauthorized", "api key", "not logged in")
    ):
        return "auth"
    if status in (429, 529, 503) or any(
        w in low for w in ("rate limit", "rate_limit", "overloaded", "too many requests", "quota")
    ):
        return "rate_limit"
    if any(
        w in low
        for w in (
            "prompt is too long",
            "context window",
            "context length",
            "context_length_exceeded",
            "maximum context",
            "too many tokens",
        )
    ):
        return "context"
    if status is None and any(
        w in low
        for w in (
            "connection refused",
            "econnrefused",
            "enotfound",
            "connection error",
            "could not connect",
            "cannot connect",
            "unreachable",
            "timed out",
            "network",
            "error sending request",
        )
    ):
        return "unreachable"
    return "error"


def _missing_key(
    names: tuple[str, ...], files: tuple[str, ...], what: str
) -> Callable[[Mapping[str, str]], str | None]:
    def check(environ: Mapping[str, str]) -> str | None:
        if any(environ.get(n) for n in names):
            return None
        home = environ.get("HOME", "")
        paths = [Path(os.path.expandvars(f.replace("~", home, 1)) if home else f) for f in files]
        if any(path.is_file() for path in paths):
            return None
        unset = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else names[0]
        return (
            f"{what} ({unset} unset, no {' or '.join(map(str, paths))}): "
            f"set {names[0]} in the agent's environment (and let env_allow pass it)"
        )

    return check


# ---------------------------------------------------------------- Claude Code


def _claude_argv(p: AgentPreset) -> list[str]:
    argv = ["claude", "-p", "--output-format", "stream-json", "--verbose"]
    argv += ["--permission-mode", "acceptEdits"]
    if p.model:
        argv += ["--model", p.model]
    if p.allow_tools:
        argv += ["--allowedTools", *p.allow_tools]
    return argv + list(p.args)


def parse_claude(tail: bytes, exit_code: int) -> Parsed:
    """``--output-format stream-json``: the last ``{"type": "result"}`` line says it all."""
    lines = json_lines(tail)
    results = [x for x in lines if x.get("type") == "result"]
    if not results:
        why = "Claude Code printed no result (its output ends without one)"
        return Parsed({"agent": "claude", "failure": "error"}, Failure("error", why))
    r = results[-1]
    usage: dict[str, Any] = r["usage"] if isinstance(r.get("usage"), dict) else {}
    denials = r.get("permission_denials")
    names = [
        str(d.get("tool_name"))
        for d in (denials if isinstance(denials, list) else [])
        if isinstance(d, dict)
    ]
    summary = r.get("result")
    report = _clean(
        {
            "agent": "claude",
            "cost_usd": _num(r.get("total_cost_usd")),
            "tokens_in": _int(usage.get("input_tokens")),
            "tokens_out": _int(usage.get("output_tokens")),
            "tokens_cache_read": _int(usage.get("cache_read_input_tokens")),
            "tokens_cache_write": _int(usage.get("cache_creation_input_tokens")),
            "turns": _int(r.get("num_turns")),
            "session_id": r.get("session_id") if isinstance(r.get("session_id"), str) else None,
            "summary": summary if isinstance(summary, str) else None,
            "permission_denials": names or None,
        }
    )
    failure: Failure | None = None
    status = _int(r.get("api_error_status"))
    message = summary if isinstance(summary, str) else str(r.get("subtype", "error"))
    if r.get("is_error") or str(r.get("subtype", "")).startswith("error"):
        kind = classify(status, message)
        if r.get("terminal_reason") == "prompt_too_long":
            kind = "context"
        delay = None
        retries = [x for x in lines if x.get("subtype") == "api_retry"]
        if retries and (ms := _num(retries[-1].get("retry_delay_ms"))) is not None:
            delay = ms / 1000
        failure = Failure(kind, f"Claude Code: {' '.join(message.split())[:300]}", delay)
    elif not report.get("turns"):
        failure = Failure("error", "Claude Code ended after zero turns")
    if failure is not None:
        report["failure"] = failure.kind
    return Parsed(report, failure)


# ---------------------------------------------------------------- Codex


def _codex_argv(p: AgentPreset) -> list[str]:
    # the prompt comes on stdin ("-"); a plain-directory workspace is no git repo
    argv = ["codex", "exec", "--json", "--sandbox", "workspace-write", "--skip-git-repo-check"]
    if p.model:
        argv += ["--model", p.model]
    if p.allow_tools:
        raise NotConfigured(
            "agent preset codex takes no allow_tools: its sandbox (--sandbox) decides; "
            "pass other flags in args"
        )
    return [*argv, *p.args, "-"]


#: a CLI's config file larger than this is not read (none is anywhere near it)
CONFIG_LIMIT = 1 << 20


def _read_config(path: Path) -> str | None:
    """A CLI's config file as text, None when there is none; ``ValueError`` when it is
    no regular file or too large. Symlinks are followed (dotfiles are often links),
    but a FIFO is never waited on: submit, the inbox and every worker scan read it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path} is not a regular file")
        chunks: list[bytes] = []
        size = 0 if st.st_size <= CONFIG_LIMIT else CONFIG_LIMIT + 1
        while size <= CONFIG_LIMIT and (chunk := os.read(fd, CONFIG_LIMIT + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
        if size > CONFIG_LIMIT:
            raise ValueError(f"{path} is larger than {CONFIG_LIMIT} bytes")
        return b"".join(chunks).decode()
    finally:
        os.close(fd)


def _codex_home(environ: Mapping[str, str]) -> Path:
    home = environ.get("CODEX_HOME")
    return Path(home) if home else Path(environ.get("HOME", "~")).expanduser() / ".codex"


def _codex_missing(environ: Mapping[str, str]) -> str | None:
    """The key variable of the configured model provider, else OpenAI's or a login."""
    import tomllib

    home = _codex_home(environ)
    config = home / "config.toml"
    try:
        text = _read_config(config)
        data = tomllib.loads(text) if text is not None else {}
    except (OSError, ValueError) as exc:
        return f"cannot read {config}: {exc}"
    provider = data.get("model_provider")
    table = data.get("model_providers")
    providers: dict[str, Any] = table if isinstance(table, dict) else {}
    if isinstance(provider, str) and provider in providers:
        entry = providers[provider]
        key = entry.get("env_key") if isinstance(entry, dict) else None
        if isinstance(key, str) and key and not environ.get(key):
            return (
                f"model provider {provider!r} ({config}) reads its key from {key}, which is "
                "unset: set it in the agent's environment (and let env_allow pass it)"
            )
        return None
    if any(environ.get(n) for n in ("OPENAI_API_KEY", "CODEX_API_KEY")):
        return None
    if (home / "auth.json").is_file():
        return None
    found = "has no model_provider" if config.is_file() else "not found"
    return (
        f"no model provider ({config} {found}) and no key (OPENAI_API_KEY and CODEX_API_KEY "
        f"unset, no {home / 'auth.json'}): set OPENAI_API_KEY or CODEX_API_KEY in the agent's "
        f"environment, or configure a model provider in {config}"
    )


_HTTP_STATUS = re.compile(r"\bstatus:? (\d{3})\b")


def parse_codex(tail: bytes, exit_code: int) -> Parsed:
    """``codex exec --json``: thread.started, item.completed, turn.completed / turn.failed."""
    lines = json_lines(tail)
    report: dict[str, Any] = {"agent": "codex"}
    fresh = out = cached = written = 0
    turns = 0
    failure: Failure | None = None
    for x in lines:
        kind = x.get("type")
        if kind == "thread.started" and isinstance(x.get("thread_id"), str):
            report["session_id"] = x["thread_id"]
        elif kind == "turn.completed":
            turns += 1
            u = x.get("usage") if isinstance(x.get("usage"), dict) else {}
            assert isinstance(u, dict)
            cached += _int(u.get("cached_input_tokens")) or 0
            # OpenAI counts cached input inside input_tokens: kept apart here
            fresh += (_int(u.get("input_tokens")) or 0) - (_int(u.get("cached_input_tokens")) or 0)
            out += _int(u.get("output_tokens")) or 0
            written += _int(u.get("cache_write_input_tokens")) or 0
        elif kind == "item.completed" and isinstance(x.get("item"), dict):
            item = x["item"]
            if item.get("type") == "agent_message" and isinstance(item.get("text"), str):
                report["summary"] = item["text"]
        elif kind == "turn.failed":
            err = x.get("error") if isinstance(x.get("error"), dict) else {}
            assert isinstance(err, dict)
            message = str(err.get("message") or "turn failed")
            m = _HTTP_STATUS.search(message)
            kind_ = classify(int(m.group(1)) if m else None, message)
            failure = Failure(
                kind_, f"Codex: {' '.join(message.split())[:300]}", retry_after(message)
            )
    if turns:
        report.update(
            tokens_in=max(0, fresh),
            tokens_out=out,
            tokens_cache_read=cached,
            tokens_cache_write=written,
        )
    report["turns"] = turns
    if failure is None and not turns:
        failure = Failure("error", "Codex ended without completing a turn")
    if failure is not None:
        report["failure"] = failure.kind
    return Parsed(report, failure)


def codex_stuck(tail: bytes) -> Failure | None:
    """Codex waits for the network forever when the endpoint is unreachable."""
    waits = tail.count(b"Reconnecting... waiting for network")
    if waits >= 3:
        return Failure(
            "unreachable", "Codex: the model endpoint is unreachable (waiting for network)"
        )
    return None


# ---------------------------------------------------------------- Aider


def _aider_argv(p: AgentPreset) -> list[str]:
    argv = ["aider", "--message-file", "{prompt_file}", "--yes-always"]
    # FARRO commits; .aider* stays out of .gitignore and out of the workspace
    argv += ["--no-auto-commits", "--no-dirty-commits", "--no-gitignore", "--map-tokens", "0"]
    argv += ["--chat-history-file", "{job_dir}/logs/aider.chat.history.md"]
    argv += ["--input-history-file", "{job_dir}/logs/aider.input.history"]
    argv += ["--no-check-update", "--no-show-release-notes", "--no-show-model-warnings"]
    argv += ["--analytics-disable", "--no-pretty", "--no-fancy-input"]
    if p.model:
        argv += ["--model", p.model]
    if p.allow_tools:
        raise NotConfigured("agent preset aider takes no allow_tools: it runs no tools of its own")
    return [*argv, *p.args]


_AIDER_TOKENS = re.compile(
    r"Tokens: ([\d.]+k?) sent(?:, ([\d.]+k?) cache write)?(?:, ([\d.]+k?) cache hit)?, "
    r"([\d.]+k?) received\."
)
_AIDER_COST = re.compile(r"Cost: \$([\d.]+) message, \$([\d.]+) session\.")
_AIDER_ERROR = re.compile(r"litellm\.(\w+):\s*(.*)")
_AIDER_KINDS: dict[str, FailureKind] = {
    "AuthenticationError": "auth",
    "PermissionDeniedError": "auth",
    "RateLimitError": "rate_limit",
    "ServiceUnavailableError": "rate_limit",
    "ContextWindowExceededError": "context",
    "APIConnectionError": "unreachable",
    "Timeout": "unreachable",
}


def _tokens(text: str | None) -> int:
    if not text:
        return 0
    return round(float(text[:-1]) * 1000) if text.endswith("k") else int(float(text))


def _aider_failure(text: str) -> Failure | None:
    found = _AIDER_ERROR.findall(text)
    if not found:
        if "exceeds the" in text and "context window" in text:
            return Failure("context", "Aider: the chat exceeds the model's context window")
        return None
    name, message = found[-1]
    message = message.split(" Retrying in ")[0]
    if "connection error" in message.lower():  # litellm wraps it as an InternalServerError
        kind: FailureKind = "unreachable"
    else:
        kind = _AIDER_KINDS.get(name, classify(None, f"{name} {message}"))
    return Failure(kind, f"Aider: {message[:300]}", retry_after(message))


def parse_aider(tail: bytes, exit_code: int) -> Parsed:
    """Aider prints no JSON: its per-message "Tokens: …" and "Cost: …" lines are read."""
    text = " ".join(tail.decode(errors="replace").split())
    report: dict[str, Any] = {"agent": "aider"}
    sent = written = hit = got = 0
    turns = 0
    for m in _AIDER_TOKENS.finditer(text):
        turns += 1
        sent += _tokens(m.group(1))
        written += _tokens(m.group(2))
        hit += _tokens(m.group(3))
        got += _tokens(m.group(4))
    if turns:
        # aider's "sent" counts the cache's tokens too: kept apart here
        report.update(
            tokens_in=max(0, sent - written - hit),
            tokens_out=got,
            tokens_cache_read=hit,
            tokens_cache_write=written,
        )
    report["turns"] = turns
    costs = _AIDER_COST.findall(text)
    if costs:
        report["cost_usd"] = float(costs[-1][1])
    edits = re.findall(r"Applied edit to (\S+)", text)
    if edits:
        report["summary"] = "Applied edits to " + ", ".join(dict.fromkeys(edits))
    failure = _aider_failure(text)
    if failure is None and not turns:
        failure = Failure("error", "Aider made no model call (exit 0 is no success here)")
    if failure is not None:
        report["failure"] = failure.kind
    return Parsed(report, failure)


def _aider_missing(environ: Mapping[str, str]) -> str | None:
    """Its key depends on the model's provider (litellm's variable names): any *_API_KEY."""
    if any(k.endswith("_API_KEY") and v for k, v in environ.items()):
        return None
    return (
        "no key (no *_API_KEY variable is set): set its model provider's key variable "
        "(OPENAI_API_KEY, ANTHROPIC_API_KEY, …) in the agent's environment (and let "
        "env_allow pass it)"
    )


def aider_stuck(tail: bytes) -> Failure | None:
    """Aider retries a rate limit or a lost endpoint itself for a minute: FARRO does it."""
    text = " ".join(tail.decode(errors="replace").split())
    if "Retrying in" not in text:
        return None
    return _aider_failure(text) or Failure("error", "Aider: retrying a failed model call")


# ---------------------------------------------------------------- Gemini CLI


def _gemini_argv(p: AgentPreset) -> list[str]:
    # -p "" runs headless; the prompt on stdin is its input
    argv = ["gemini", "--output-format", "stream-json", "--approval-mode", "auto_edit", "-p", ""]
    if p.model:
        argv += ["--model", p.model]
    if p.allow_tools:
        argv += ["--allowed-tools", *p.allow_tools]
    return [*argv, *p.args]


def _gemini_settings(environ: Mapping[str, str]) -> list[Path]:
    home = environ.get("GEMINI_CLI_HOME") or environ.get("HOME", "~")
    paths = [Path(home).expanduser() / ".gemini" / "settings.json"]
    if environ.get("GEMINI_CLI_SYSTEM_SETTINGS_PATH"):
        paths.append(Path(environ["GEMINI_CLI_SYSTEM_SETTINGS_PATH"]))
    return paths


def _gemini_missing(environ: Mapping[str, str]) -> str | None:
    """A key, and the auth method chosen in its settings (headless mode asks nobody)."""
    if not any(environ.get(n) for n in ("GEMINI_API_KEY", "GOOGLE_API_KEY")) and not (
        environ.get("GOOGLE_CLOUD_PROJECT") or environ.get("GOOGLE_GENAI_USE_VERTEXAI")
    ):
        return (
            "no key (GEMINI_API_KEY, GOOGLE_API_KEY, GOOGLE_CLOUD_PROJECT and "
            "GOOGLE_GENAI_USE_VERTEXAI unset): set GEMINI_API_KEY (or GOOGLE_API_KEY) in the "
            "agent's environment (and let env_allow pass it)"
        )
    settings = _gemini_settings(environ)
    for path in settings:
        try:
            text = _read_config(path)
            data = json.loads(text) if text is not None else None
        except (OSError, ValueError):
            continue
        security = data.get("security") if isinstance(data, dict) else None
        auth = security.get("auth") if isinstance(security, dict) else None
        if isinstance(auth, dict) and auth.get("selectedType"):
            return None
    where = " or ".join(str(p) for p in settings)
    return (
        f"no auth method chosen in {where} (headless mode asks nobody): write "
        '{"security": {"auth": {"selectedType": "gemini-api-key"}}} there'
    )


def parse_gemini(tail: bytes, exit_code: int) -> Parsed:
    """``--output-format stream-json``: init, message, tool_use, result with its stats."""
    lines = json_lines(tail)
    report: dict[str, Any] = {"agent": "gemini"}
    summary: list[str] = []
    tools = 0
    result: dict[str, Any] | None = None
    for x in lines:
        kind = x.get("type")
        if kind == "init" and isinstance(x.get("session_id"), str):
            report["session_id"] = x["session_id"]
        elif kind == "message" and x.get("role") == "assistant":
            if not x.get("delta"):
                summary = []
            summary.append(str(x.get("content", "")))
        elif kind == "tool_use":
            tools += 1
            summary = []
        elif kind == "result":
            result = x
    if summary:
        report["summary"] = "".join(summary)
    if result is None:
        why = "Gemini CLI printed no result (its output ends without one)"
        report["failure"] = "error"
        return Parsed(report, Failure("error", why))
    stats: dict[str, Any] = result["stats"] if isinstance(result.get("stats"), dict) else {}
    report.update(
        _clean(
            {
                "tokens_in": _int(stats.get("input")),  # input_tokens less the cached
                "tokens_out": _int(stats.get("output_tokens")),
                "tokens_cache_read": _int(stats.get("cached")),
            }
        )
    )
    report["turns"] = tools + (1 if "summary" in report else 0)
    failure: Failure | None = None
    if result.get("status") != "success":
        err = result.get("error") if isinstance(result.get("error"), dict) else {}
        assert isinstance(err, dict)
        message = str(err.get("message") or "error")
        m = re.search(r'"code":\s*(\d{3})', message)
        failure = Failure(
            classify(int(m.group(1)) if m else None, message),
            f"Gemini CLI: {' '.join(message.split())[:300]}",
            retry_after(message),
        )
    elif not report["turns"]:
        failure = Failure("error", "Gemini CLI ended after zero turns")
    if failure is not None:
        report["failure"] = failure.kind
    return Parsed(report, failure)


_GEMINI_RETRY = re.compile(
    r"Attempt \d+ failed(?: with status (\d{3}))?\. Retrying with backoff\.\.\.(.*)"
)


def gemini_stuck(tail: bytes) -> Failure | None:
    """Gemini CLI retries a rate limit or a lost endpoint itself, for minutes: FARRO does it."""
    found = _GEMINI_RETRY.findall(tail.decode(errors="replace"))
    if not found:
        return None
    status, rest = found[-1]
    kind = classify(int(status) if status else None, rest)
    if "fetch failed" in rest:
        kind = "unreachable"
    return Failure(kind, f"Gemini CLI: {' '.join(rest.split())[:300]}", retry_after(rest))


# ---------------------------------------------------------------- the table

PRESETS: dict[str, Spec] = {
    "claude": Spec(
        name="claude",
        binary="claude",
        package="npm @anthropic-ai/claude-code",
        argv=_claude_argv,
        env={
            # FARRO retries (with backoff, and a 401 not at all); the CLI's own ten
            # retries would hold a bad key for minutes
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        },
        missing=_missing_key(
            ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"),
            ("~/.claude/.credentials.json",),
            "no key",
        ),
        parse=parse_claude,
    ),
    "codex": Spec(
        name="codex",
        binary="codex",
        package="npm @openai/codex",
        argv=_codex_argv,
        env={},
        missing=_codex_missing,
        parse=parse_codex,
        stuck=codex_stuck,
    ),
    "aider": Spec(
        name="aider",
        binary="aider",
        package="pip aider-chat",
        argv=_aider_argv,
        # litellm's price list is read from the package, not fetched at each start
        env={"LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        missing=_aider_missing,
        parse=parse_aider,
        stuck=aider_stuck,
    ),
    "gemini": Spec(
        name="gemini",
        binary="gemini",
        package="npm @google/gemini-cli",
        argv=_gemini_argv,
        # the worktree is FARRO's: trusted, or headless mode would refuse to edit it
        env={"GEMINI_CLI_TRUST_WORKSPACE": "true"},
        missing=_gemini_missing,
        parse=parse_gemini,
        stuck=gemini_stuck,
    ),
}


def _spec(name: str) -> Spec:
    spec = PRESETS.get(name)
    if spec is None:
        raise NotConfigured(f"agent preset {name} is not available in this FARRO yet")
    return spec


def missing(name: str, environ: Mapping[str, str]) -> str | None:
    """What preset ``name`` lacks on this host with ``environ``, or None when it has it all.

    The same check :func:`resolve` makes, without the job: submit, the inbox and a
    worker about to claim ask it, so no attempt is spent finding it out.
    """
    try:
        spec = _spec(name)
    except NotConfigured as exc:
        return str(exc)
    env = {k: v for k, v in spec.env.items() if k not in environ}
    lacks = spec.missing({**environ, **env})
    return None if lacks is None else f"agent preset {name}: {lacks}"


def refusal(agent: object, environ: Mapping[str, str] | None) -> str | None:
    """Why a job with ``agent`` would fail before its CLI runs, or None.

    Only a preset is checked (FARRO cannot tell what another command needs): its
    table (``allow_tools`` a CLI does not take), and with ``environ`` what this
    host lacks; ``environ`` None leaves the host out (the workers run elsewhere).
    """
    if not isinstance(agent, AgentPreset):
        return None
    try:
        _spec(agent.preset).argv(agent)
    except NotConfigured as exc:
        return str(exc)
    return None if environ is None else missing(agent.preset, environ)


def check_specs(
    specs: Sequence[JobSpec], default: object, environ: Mapping[str, str] | None, name: str
) -> None:
    """Refuse, as bad input naming the spec, a job whose preset has a :func:`refusal`.

    ``default`` is the ``agent`` setting, which a spec without ``agent`` runs.
    """
    said: dict[str, str | None] = {}
    for i, spec in enumerate(specs):
        agent = preset_of(spec, default)
        if agent is None:
            continue
        key = agent.model_dump_json()
        if key not in said:
            said[key] = refusal(agent, environ)
        why = said[key]
        if why is not None:
            where = name if len(specs) == 1 else f"{name}: jobs[{i}]"
            whose = "" if spec.agent is not None else " (the root's agent setting)"
            raise BadInput(f"{where}: {why}{whose}")


def resolve(preset: AgentPreset, environ: Mapping[str, str]) -> Resolved:
    """The preset's command; raises :class:`NotConfigured` naming what is missing."""
    spec = _spec(preset.preset)
    env = {k: v for k, v in spec.env.items() if k not in environ}
    lacks = missing(preset.preset, environ)
    if lacks is not None:
        raise NotConfigured(lacks)
    argv = spec.argv(preset)
    return Resolved(preset.preset, argv, env, spec.parse, spec.stuck)


def version(binary: str, path: str | None = None, timeout_s: float = 20) -> str | None:
    """``binary --version``'s first line, or None when it is not installed or fails."""
    exe = shutil.which(binary, path=path)
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--version"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).decode(errors="replace").strip()
    return text.splitlines()[0] if text else None


def listing(environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """Each preset: its command, its variables, whether its CLI is here, what is missing."""
    rows: list[dict[str, Any]] = []
    for name, spec in PRESETS.items():
        path = environ.get("PATH")
        exe = shutil.which(spec.binary, path=path)
        env = {k: v for k, v in spec.env.items() if k not in environ}
        rows.append(
            {
                "preset": name,
                "package": spec.package,
                "command": spec.argv(AgentPreset(preset=name)),
                "env": env,
                "installed": exe,
                "version": version(spec.binary, path) if exe else None,
                "missing": spec.missing({**environ, **env}),
            }
        )
    return rows
