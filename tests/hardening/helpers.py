"""Helpers for the hardening tests: planting hostile entries and checking what moved."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from farro_core import job
from farro_core.envelope import Envelope, parse_spec
from farro_core.root import Root


def make_job(root: Root, prompt: str = "hardening test job", **fields: object) -> Envelope:
    return job.create(root, parse_spec({"prompt": prompt, **fields}))


def snapshot(path: Path) -> dict[str, tuple[int, float, str]]:
    """Every entry under ``path`` (not following symlinks): mode, mtime, content digest."""
    out: dict[str, tuple[int, float, str]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = "->" + os.readlink(p)
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_mtime, digest)
    return out


def quarantined(root: Root) -> dict[str, str]:
    """quarantine/ entries (by name) and the text of their reason files."""
    out = {}
    for entry in os.scandir(root.quarantine):
        if entry.name.endswith(".reason.txt"):
            continue
        reason = Path(f"{entry.path}.reason.txt")
        out[entry.name] = reason.read_text() if reason.exists() else ""
    return out
