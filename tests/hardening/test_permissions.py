"""Owner-only: a root, inbox or job dir that group or others can write is refused, and
everything FARRO creates is private whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from farro_core import fsck, job
from farro_core.errors import Corrupt, RootError
from farro_core.identity import WorkerIdentity
from farro_core.root import Root

from .helpers import make_job, quarantined

ME = WorkerIdentity.current("perm")


@pytest.mark.parametrize("sub", ["", "inbox", "incoming", "active", "done", "tmp", "run"])
@pytest.mark.parametrize("mode", [0o770, 0o707, 0o722])
def test_writable_root_or_queue_dir_is_refused(root: Root, sub: str, mode: int) -> None:
    target = root.path / sub if sub else root.path
    os.chmod(target, mode)
    with pytest.raises(RootError, match="writable by group or others") as info:
        Root.open(root.path)
    assert "chmod 700" in str(info.value)  # the error says how to fix it


def test_writable_job_dir_is_never_claimed_and_is_quarantined(root: Root) -> None:
    bad = make_job(root, "group-writable")
    good = make_job(root, "private")
    os.chmod(bad.path, 0o777)
    root.drop_caches()
    with pytest.raises(Corrupt, match="writable by group or others"):
        job.load(root, bad.id)
    got = job.claim(root, ME)
    assert got is not None and got.id == good.id
    assert job.claim(root, ME) is None
    job.release_claim(got)
    fsck.fsck(root, repair=True)
    q = quarantined(root)
    assert bad.id in q and "writable by group or others" in q[bad.id]


_USE_ROOT = textwrap.dedent(
    """
    import os, sys
    os.umask(0)
    from farro_core import fsck, job, operations
    from farro_core.envelope import parse_spec
    from farro_core.identity import WorkerIdentity
    from farro_core.root import Root
    from farro_core.transitions import Actor, Status
    root = Root.init(sys.argv[1])
    me = WorkerIdentity.current("w")
    specs = [parse_spec({"prompt": f"job {i}", "labels": {"n": str(i)}}) for i in range(6)]
    job.create_many(root, specs)
    job.create(root, parse_spec({"id": "01JFIXEDIDFIXEDIDFIXEDID00", "prompt": "named"}))
    a = job.claim(root, me)
    job.commit(a, Status.SUCCEEDED, Actor.AGENT, "ok"); job.release_claim(a)
    b = job.claim(root, me); job.request_kill(b, "op")
    job.commit(b, Status.KILLED, Actor.AGENT, "killed"); job.release_claim(b)
    c = job.claim(root, me)
    c = job.commit(c, Status.QUEUED, Actor.AGENT, "retry"); job.release_claim(c)
    operations.kill(root, c.id)
    d = job.claim(root, me)  # dies holding it: fsck marks it stale, operator requeues
    job.CLAIMS.release(job.claim_key(root, d.id, d.lifecycle.attempt))
    fsck.fsck(root, repair=True)
    operations.requeue(root, d.id)
    os.mkdir(root.tmp / "leftover", 0o755)
    os.utime(root.tmp / "leftover", (0, 0))
    fsck.fsck(root, repair=True)
    """
)


def test_everything_farro_creates_is_owner_only_even_with_umask_0(tmp_path: Path) -> None:
    """Walk a used root made with umask 0: dirs 0700, files 0600, prompt.json 0444 (spec)."""
    path = tmp_path / "root"
    subprocess.run([sys.executable, "-c", _USE_ROOT, str(path)], check=True, timeout=60)
    bad = []
    seen = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            seen += 1
            rel = os.path.relpath(p, path)
            if rel.startswith("quarantine/leftover"):
                continue  # our own planted 0755 leftover, moved aside as it was
            if stat.S_ISDIR(st.st_mode):
                want = {0o700}
            elif name == "prompt.json":
                want = {0o444, 0o400}
            else:
                want = {0o600}
            if mode not in want or stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
                bad.append(f"{rel}: {mode:04o}")
    assert seen > 40
    assert bad == [], "not owner-only:\n" + "\n".join(bad)


_RUN_SYSTEM = textwrap.dedent(
    """
    import json, os, sys
    sys.dont_write_bytecode = True  # nothing made under umask 0 outside the root
    sys.path.insert(0, sys.argv[2])
    from support import wait_until
    os.umask(0)
    from farro_core.root import Root
    from farro_core.system import System
    root = Root.init(sys.argv[1])
    with open(root.path / "farro.toml", "w") as fh:
        fh.write('agent = ["sh", "-c", "echo hi"]\\nrescan_s = 0.2\\n')
    os.chmod(root.path / "farro.toml", 0o600)
    root = Root.open(root.path)
    req = root.path.parent / "req.json"
    specs = [{"prompt": f"p{i}", "rubric": [{"id": "r", "check": "true"}]} for i in range(3)]
    req.write_text(json.dumps({"jobs": specs}))
    os.chmod(req, 0o600)
    os.rename(req, root.inbox / "req.json")
    system = System(root, workers=1)
    system.start()
    wait_until(lambda: len(os.listdir(root.done)) >= 3, "3 jobs in done/", 60)
    system.stop()
    """
)


def test_a_root_used_by_the_whole_system_is_owner_only(tmp_path: Path) -> None:
    """Manager, inbox, workers, logs, status files, locks: with umask 0, still private."""
    path = tmp_path / "root"
    tests = Path(__file__).parents[1]  # where support.py is
    subprocess.run(
        [sys.executable, "-c", _RUN_SYSTEM, str(path), str(tests)], check=True, timeout=120
    )
    bad = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISDIR(st.st_mode):
                ok = mode == 0o700
            elif name in ("prompt.json", "prompt.txt"):
                ok = mode in (0o444, 0o400)
            else:
                ok = mode == 0o600 and stat.S_ISREG(st.st_mode)
            if not ok:
                bad.append(f"{os.path.relpath(p, path)}: {mode:04o}")
    assert bad == [], "not owner-only:\n" + "\n".join(bad)
