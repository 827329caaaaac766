"""The bundled demo agent: behaves like a coding agent, costs nothing.

``python -m farro_core.demo_agent`` reads the prompt (``$FARRO_PROMPT_FILE``, else
stdin), prints progress for a few seconds, edits ``NOTES.md`` and a file
``task_<id>.py`` in its workspace, writes a made-up cost to ``$FARRO_RESULT_FILE`` and
exits 0. Markers in the prompt change that, so a demo shows every status:

``[fail]`` exit 1 · ``[hang]`` sleep past any timeout · ``[escape]`` also write
``secrets/leak.txt`` (outside narrow allowed_paths) · ``[slow]`` take ~30 s ·
``[noisy]`` print a lot (the log cap) · ``[fast]`` no pauses.
Its edits go in the directory of the job's first allowed_paths glob
(``src/**``: ``src/NOTES.md`` and ``src/task_<id>.py``; ``**``: ``NOTES.md`` and
``src/task_<id>.py``), so only ``[escape]`` breaks the rules.
``$FARRO_DEMO_SPEED`` scales the pauses (0 = none). Standard library only,
imported by nothing, so it starts fast.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from pathlib import Path

STEPS = (
    "reading the task",
    "exploring the workspace",
    "planning the change",
    "editing files",
    "running the tests",
    "tidying up",
)


def main() -> int:
    prompt = _read_prompt()
    speed = _speed(prompt)
    markers = set(re.findall(r"\[(fail|hang|escape|slow|noisy|fast)\]", prompt))
    total = 30.0 if "slow" in markers else 3.0
    pause = total / len(STEPS) * speed
    title = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "task")[:80]
    print(f"demo agent: {title}", flush=True)
    for i, step in enumerate(STEPS, 1):
        print(f"[{i}/{len(STEPS)}] {step}...", flush=True)
        time.sleep(pause)
        if step == "editing files":
            _edit(Path.cwd(), _allowed_dir(), title, "escape" in markers)
        if "noisy" in markers and step == "running the tests":
            _noise()
    if "hang" in markers:
        print("waiting for something that never comes...", flush=True)
        while True:
            time.sleep(3600)
    ok = "fail" not in markers
    _report(title, ok, speed)
    if not ok:
        print("error: the tests failed (as the [fail] marker asked)", file=sys.stderr, flush=True)
        return 1
    print("done.", flush=True)
    return 0


def _read_prompt() -> str:
    path = os.environ.get("FARRO_PROMPT_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            pass
    if sys.stdin is not None and not sys.stdin.isatty():
        return sys.stdin.read()
    return ""


def _speed(prompt: str) -> float:
    if "[fast]" in prompt:
        return 0.0
    try:
        return max(0.0, float(os.environ.get("FARRO_DEMO_SPEED", "1")))
    except ValueError:
        return 1.0


def _allowed_dir() -> str:
    """Where its edits go: the directory the job's first ``allowed_paths`` glob names
    (``tests`` for ``tests/**``, the top for ``**``), as a careful agent would keep
    to the paths it may touch. From ``$FARRO_JOB_DIR/prompt.json``."""
    try:
        spec = json.loads(Path(os.environ["FARRO_JOB_DIR"], "prompt.json").read_text("utf-8"))
        first = str((spec.get("allowed_paths") or ["**"])[0])
    except (KeyError, OSError, ValueError, AttributeError, IndexError):
        return ""
    parts = first.split("/")[:-1]  # the last part is a pattern or a name: not a directory
    fixed = []
    for part in parts:
        if any(c in part for c in "*?[") or part in ("", ".", ".."):
            break
        fixed.append(part)
    return "/".join(fixed)


def _edit(top: Path, sub: str, title: str, escape: bool) -> None:
    ws = top / sub if sub else top
    ws.mkdir(parents=True, exist_ok=True)
    with open(ws / "NOTES.md", "a", encoding="utf-8") as fh:
        fh.write(f"- {time.strftime('%Y-%m-%d %H:%M:%S')}: worked on: {title}\n")
    code = ws if sub else top / "src"  # `src/**` allowed: src/task_….py, never src/src/
    code.mkdir(exist_ok=True)
    job = os.environ.get("FARRO_JOB_ID", "job")
    slug = re.sub(r"[^a-z0-9]+", "_", job.lower()).strip("_") or "job"
    task = code / f"task_{slug}.py"
    task.write_text(
        f'"""{title.replace(chr(34), chr(39))}"""\n\n\ndef solve() -> str:\n    return {title!r}\n',
        encoding="utf-8",
    )
    where = f"{sub}/" if sub else ""
    print(f"  edited {where}NOTES.md and {task.relative_to(top).as_posix()}", flush=True)
    if escape:
        (top / "secrets").mkdir(exist_ok=True)
        (top / "secrets" / "leak.txt").write_text("not supposed to be here\n", encoding="utf-8")
        print("  also wrote secrets/leak.txt", flush=True)


def _noise() -> None:
    line = "noise " * 16 + "\n"
    out = sys.stdout
    for i in range(40_000):
        out.write(f"{i:06d} {line}")
    out.flush()


def _report(title: str, ok: bool, speed: float) -> None:
    path = os.environ.get("FARRO_RESULT_FILE")
    if not path:
        return
    tokens_in = random.randint(2_000, 40_000)
    tokens_out = random.randint(300, 6_000)
    body = {
        "cost_usd": round(tokens_in * 3e-6 + tokens_out * 15e-6, 4),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "summary": f"{'did' if ok else 'tried'}: {title}",
        "agent": "farro demo agent",
        "speed": speed,
    }
    try:
        Path(path).write_text(json.dumps(body) + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"cannot write the result file: {exc}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
