"""Small helpers shared by the core tests."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

from farro_core import audit, job
from farro_core.envelope import Envelope, JobSpec, parse_spec
from farro_core.identity import WorkerIdentity
from farro_core.root import Root


def spec(prompt: str = "do the thing", **kw: Any) -> JobSpec:
    return parse_spec({"prompt": prompt, **kw})


def worker(name: str = "w1") -> WorkerIdentity:
    return WorkerIdentity.current(name)


def snapshot(root: Root) -> dict[str, tuple[str, bytes | str, int]]:
    """Every entry under the root but lock files: kind, content or link target, mode."""
    out: dict[str, tuple[str, bytes | str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root.path):
        for name in dirnames + filenames:
            if name.endswith(".lock"):
                continue  # flock files: taking a lock creates one, and that is all
            p = Path(dirpath) / name
            st = os.lstat(p)
            rel = os.path.relpath(p, root.path)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p), mode)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", b"", mode)
            else:
                out[rel] = ("file", p.read_bytes(), mode)
    return out


def audit_of(root: Root, job_id: str) -> list[dict[str, Any]]:
    return list(audit.read(root, job_id))


def queues_holding(root: Root, job_id: str) -> list[str]:
    return [q for q in ("incoming", "active", "done") if os.path.lexists(root.path / q / job_id)]


def claimed(root: Root, name: str = "w1", **kw: Any) -> Envelope:
    env = job.claim(root, worker(name), **kw)
    assert env is not None, "nothing claimable"
    return env


_CREATE = """
import sys
from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.root import Root
spec = {"prompt": sys.argv[3], "id": sys.argv[2], "priority": int(sys.argv[4])}
job.create(Root.open(sys.argv[1]), parse_spec(spec))
"""


def create_elsewhere(root: Root, job_id: str, prompt: str, priority: int = 0) -> None:
    """Create a job from another process (whose caches are not ours)."""
    subprocess.run(
        [sys.executable, "-c", _CREATE, str(root.path), job_id, prompt, str(priority)],
        check=True,
        timeout=60,
    )


_CLAIM = """
import sys
from farro_core import job
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
env = job.claim(Root.open(sys.argv[1]), WorkerIdentity.current("elsewhere"), ids=[sys.argv[2]])
sys.exit(0 if env is not None else 3)
"""


def claim_elsewhere(root: Root, job_id: str) -> None:
    """Claim ``job_id`` from another process, which then exits (its claim lock freed)."""
    subprocess.run([sys.executable, "-c", _CLAIM, str(root.path), job_id], check=True, timeout=60)
