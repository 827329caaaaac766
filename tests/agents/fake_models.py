"""Fake model servers on 127.0.0.1 that drive the real agent CLIs through their tools.

Each server speaks one API well enough for its CLI: Anthropic Messages (streaming
SSE), OpenAI Responses (SSE) and OpenAI Chat Completions (SSE). It is scripted by
a :class:`Script`: the first turn of a conversation asks the agent to write a file
with its real file tool, the next turn ends with a final message. ``fail`` makes
the next requests answer with an HTTP error instead (a 429 with ``retry-after``, a
401), to check how FARRO classifies the CLI's failure.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"input": 1200, "output": 80, "cache_read": 300, "cache_write": 40}


@dataclass
class Script:
    """What the model does: write ``path`` (relative to the agent's cwd) with ``content``."""

    path: str = "hello.txt"
    content: str = "hello from the fake model\n"
    summary: str = "Wrote the file as asked."
    #: HTTP errors to answer with, one per request, before behaving
    fail: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    #: ask for this shell command (Claude's Bash tool) instead of the Write
    bash: str | None = None
    #: an HTTP error to answer every request with, once ``fail`` is used up
    fail_always: tuple[int, dict[str, str], str] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_failure(self) -> tuple[int, dict[str, str], str] | None:
        with self.lock:
            return self.fail.pop(0) if self.fail else self.fail_always


_CWD = (
    re.compile(r"Workspace Directories:\*\*\s*-\s*(/[^\s<>\"'`*\\]+)"),  # Gemini CLI
    re.compile(r"(?:working directory|cwd)[^/\n]*?(/[^\s<>\"'`*\\]+)", re.IGNORECASE),
)


def cwd_of(body: Any) -> str:
    """The agent's working directory, as its system prompt tells the model."""
    text = json.dumps(body).replace("\\n", "\n")
    for pattern in _CWD:
        m = pattern.search(text)
        if m:
            return m.group(1).rstrip(".,;:")
    raise LookupError("no working directory in the request")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> Any:
        n = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def _send(
        self, code: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _sse(self, events: Iterator[tuple[str | None, dict[str, Any]]]) -> None:
        out = b""
        for name, data in events:
            if name:
                out += f"event: {name}\n".encode()
            out += f"data: {json.dumps(data)}\n\n".encode()
        if self.server.api not in ("anthropic", "gemini"):
            out += b"data: [DONE]\n\n"
        self._send(200, out, "text/event-stream")

    def do_GET(self) -> None:
        # model lists and health checks: an empty, valid answer
        self._send(200, b'{"data": [], "models": [], "object": "list"}', "application/json")

    def do_HEAD(self) -> None:
        self._send(200, b"", "text/plain")

    def do_POST(self) -> None:
        body = self._body()
        script = self.server.script
        with script.lock:
            script.requests.append({"path": self.path, "body": body})
        failure = script.next_failure()
        if failure is not None:
            code, headers, text = failure
            self._send(code, text.encode(), "application/json", headers)
            return
        api = self.server.api
        if api == "anthropic":
            self._anthropic(body)
        elif api == "gemini":
            self._gemini(body)
        elif api == "responses":
            self._responses(body)
        else:
            self._chat(body)

    # ------------------------------------------------------------ Anthropic

    def _anthropic(self, body: dict[str, Any]) -> None:
        if self.path.startswith("/v1/messages/count_tokens"):
            self._send(200, b'{"input_tokens": 10}', "application/json")
            return
        script = self.server.script
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        content = last.get("content") if isinstance(last, dict) else None
        answered = isinstance(content, list) and any(
            isinstance(c, dict) and c.get("type") == "tool_result" for c in content
        )
        tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
        if script.bash is not None and "Bash" in tools and not answered:
            block = {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}
            args = json.dumps({"command": script.bash, "description": "run it"})
            blocks = [(block, {"type": "input_json_delta", "partial_json": args})]
            stop = "tool_use"
        elif "Write" in tools and not answered:
            path = f"{cwd_of(body)}/{script.path}"
            block = {"type": "tool_use", "id": "toolu_01", "name": "Write", "input": {}}
            args = json.dumps({"file_path": path, "content": script.content})
            blocks = [(block, {"type": "input_json_delta", "partial_json": args})]
            stop = "tool_use"
        else:
            text = script.summary if tools else "Fake title"
            blocks = [({"type": "text", "text": ""}, {"type": "text_delta", "text": text})]
            stop = "end_turn"
        usage = {
            "input_tokens": USAGE["input"],
            "output_tokens": USAGE["output"],
            "cache_read_input_tokens": USAGE["cache_read"],
            "cache_creation_input_tokens": USAGE["cache_write"],
        }
        message = {
            "id": f"msg_{len(script.requests)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-fake"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        if not body.get("stream"):
            full: list[dict[str, Any]] = []
            for start, delta in blocks:
                if start["type"] == "text":
                    full.append({"type": "text", "text": delta["text"]})
                else:
                    full.append({**start, "input": json.loads(delta["partial_json"])})
            reply = {**message, "content": full, "stop_reason": stop, "usage": usage}
            self._send(200, json.dumps(reply).encode(), "application/json")
            return

        def events() -> Iterator[tuple[str | None, dict[str, Any]]]:
            yield "message_start", {"type": "message_start", "message": message}
            for i, (start, delta) in enumerate(blocks):
                yield (
                    "content_block_start",
                    {"type": "content_block_start", "index": i, "content_block": start},
                )
                yield (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                )
                yield "content_block_stop", {"type": "content_block_stop", "index": i}
            yield (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": USAGE["output"]},
                },
            )
            yield "message_stop", {"type": "message_stop"}

        self._sse(events())

    # ------------------------------------------------------------ OpenAI Responses

    def _responses(self, body: dict[str, Any]) -> None:
        script = self.server.script
        items = body.get("input") or []
        answered = any(
            isinstance(i, dict) and str(i.get("type", "")).endswith("_call_output") for i in items
        )
        tools = {
            str(t.get("name")): str(t.get("type"))
            for t in body.get("tools") or []
            if isinstance(t, dict)
        }
        n = len(script.requests)
        if not answered and tools:
            out = self._responses_edit(tools, n)
        else:
            out = {
                "type": "message",
                "id": f"msg_{n}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": script.summary, "annotations": []}],
            }
        usage = {
            "input_tokens": USAGE["input"],
            "input_tokens_details": {"cached_tokens": USAGE["cache_read"]},
            "output_tokens": USAGE["output"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": USAGE["input"] + USAGE["output"],
        }
        rid = f"resp_{n}"

        def events() -> Iterator[tuple[str | None, dict[str, Any]]]:
            yield (
                "response.created",
                {"type": "response.created", "response": {"id": rid, "status": "in_progress"}},
            )
            yield (
                "response.output_item.done",
                {"type": "response.output_item.done", "output_index": 0, "item": out},
            )
            yield (
                "response.completed",
                {
                    "type": "response.completed",
                    "response": {"id": rid, "status": "completed", "output": [out], "usage": usage},
                },
            )

        self._sse(events())

    def _responses_edit(self, tools: dict[str, str], n: int) -> dict[str, Any]:
        """The edit as Codex's own apply_patch tool (freeform or function), else a shell."""
        script = self.server.script
        body = "".join(f"+{line}\n" for line in script.content.splitlines())
        patch = f"*** Begin Patch\n*** Add File: {script.path}\n{body}*** End Patch\n"
        if tools.get("apply_patch") == "custom":
            return {
                "type": "custom_tool_call",
                "id": f"ctc_{n}",
                "call_id": f"call_{n}",
                "name": "apply_patch",
                "input": patch,
                "status": "completed",
            }
        if "apply_patch" in tools:
            args: dict[str, Any] = {"input": patch}
            name = "apply_patch"
        elif "exec_command" in tools:  # Codex runs an apply_patch heredoc itself
            args = {"cmd": f"apply_patch <<'PATCH'\n{patch}PATCH\n"}
            name = "exec_command"
        else:
            name = "shell" if "shell" in tools else next(iter(tools))
            args = {"command": ["apply_patch", patch]}
        return {
            "type": "function_call",
            "id": f"fc_{n}",
            "call_id": f"call_{n}",
            "name": name,
            "arguments": json.dumps(args),
            "status": "completed",
        }

    def _gemini(self, body: dict[str, Any]) -> None:
        """The Gemini API: the edit is a call of Gemini CLI's own write_file tool."""
        if ":countTokens" in self.path:
            self._send(200, b'{"totalTokens": 10}', "application/json")
            return
        script = self.server.script
        contents = body.get("contents") or []
        last = contents[-1] if contents and isinstance(contents[-1], dict) else {}
        answered = any(
            isinstance(p, dict) and "functionResponse" in p for p in last.get("parts") or []
        )
        names = {
            str(f.get("name"))
            for t in body.get("tools") or []
            if isinstance(t, dict)
            for f in t.get("functionDeclarations") or []
            if isinstance(f, dict)
        }
        if "write_file" in names and not answered:
            path = f"{cwd_of(body)}/{script.path}"
            call = {"name": "write_file", "args": {"file_path": path, "content": script.content}}
            parts: list[dict[str, Any]] = [{"functionCall": call}]
        elif names:
            parts = [{"text": script.summary}]
        else:  # the CLI's side requests (routing, next speaker): a plain JSON answer
            parts = [
                {"text": '{"reasoning": "done", "next_speaker": "user", "model_choice": "flash"}'}
            ]
        reply = {
            "candidates": [
                {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": USAGE["input"],
                "candidatesTokenCount": USAGE["output"],
                "cachedContentTokenCount": USAGE["cache_read"],
                "totalTokenCount": USAGE["input"] + USAGE["output"],
            },
            "modelVersion": "gemini-fake",
        }
        if ":streamGenerateContent" in self.path:
            self._sse(iter([(None, reply)]))
        else:
            self._send(200, json.dumps(reply).encode(), "application/json")

    def _chat(self, body: dict[str, Any]) -> None:
        """Chat Completions, as Aider uses it: the edit is a whole-file block in the text."""
        script = self.server.script
        msgs = body.get("messages") or []
        said = [m for m in msgs if isinstance(m, dict) and m.get("role") == "assistant"]
        n = len(script.requests)
        if any(script.path in str(m.get("content")) for m in said):
            text = script.summary
        else:
            text = f"{script.path}\n```\n{script.content}```\n"
        usage = {
            "prompt_tokens": USAGE["input"],
            "completion_tokens": USAGE["output"],
            "total_tokens": USAGE["input"] + USAGE["output"],
            "prompt_tokens_details": {"cached_tokens": USAGE["cache_read"]},
        }
        base = {"id": f"chatcmpl-{n}", "created": 0, "model": body.get("model", "gpt-fake")}
        if not body.get("stream"):
            reply = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
            self._send(200, json.dumps(reply).encode(), "application/json")
            return

        def events() -> Iterator[tuple[str | None, dict[str, Any]]]:
            chunk = {**base, "object": "chat.completion.chunk"}
            yield (
                None,
                {
                    **chunk,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": text},
                            "finish_reason": None,
                        }
                    ],
                },
            )
            yield None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield None, {**chunk, "choices": [], "usage": usage}

        self._sse(events())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: str, script: Script) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api
        self.script = script


class FakeModel:
    """A fake model server in a thread of the test process; ``url`` is its base."""

    def __init__(self, api: str, script: Script | None = None) -> None:
        self.script = script or Script()
        self._server = _Server(api, self.script)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeModel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
