"""`farro show` (text and --json) and the console's job pane say what an attempt did.

Branch, base commit, the work commit of each attempt, a diffstat, the paths
changed and the ignored writes, from a real job run by a real worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from farro_core.envelope import Envelope
from farro_core.root import Root
from farro_tui.screens.job import render_job

from .helpers import git, make_worker, sh, submit
from .test_judging import TOOLS, make_git_package

FARRO = str(Path(sys.executable).with_name("farro"))
# attempt 1 writes a file and fails (retried); attempt 2 runs the tools and edits a.py,
# and names one new file with a terminal escape in it
AGENT = (
    'if [ "$FARRO_ATTEMPT" = 1 ]; then echo half > src/half.py; exit 1; fi; '
    f"{TOOLS} && printf 'B = 1\\n' > \"src/b$(printf '\\033')[31m.py\""
)


def run_two_attempts(root: Root, tmp_path: Path) -> tuple[Envelope, Path]:
    repo = make_git_package(tmp_path / "repo")
    submit(
        root, "x", agent=sh(AGENT), workspace=str(repo), allowed_paths=["src/**"], max_attempts=2
    )
    w = make_worker(root, retry_backoff_s=0)
    first = w.run_once()
    assert first is not None and first.status == "queued"
    out = w.run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    return out, repo


def show(root: Root, *args: str) -> str:
    r = subprocess.run(
        [FARRO, "show", "--root", str(root.path), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_show_and_job_pane_give_the_work(wroot: Root, tmp_path: Path) -> None:
    out, repo = run_two_attempts(wroot, tmp_path)
    base = git(repo, "rev-parse", "HEAD")
    c1 = git(repo, "rev-parse", f"refs/farro/{out.id}/attempt-1")
    c2 = git(repo, "rev-parse", f"refs/farro/{out.id}/attempt-2")
    assert git(repo, "rev-parse", f"farro/{out.id}") == c2

    data = json.loads(show(wroot, out.id, "--json"))
    work = data["work"]
    assert work["branch"] == f"farro/{out.id}" and work["base_commit"] == base
    assert work["commits"] == [{"attempt": 1, "commit": c1}, {"attempt": 2, "commit": c2}]
    changed = {c["path"]: c for c in work["changed"]}
    assert changed["src/a.py"] == {
        "path": "src/a.py",
        "change": "M",
        "insertions": 1,
        "deletions": 1,
    }
    assert changed["src/b\x1b[31m.py"]["change"] == "A"
    assert work["changed_count"] == 2 and (work["insertions"], work["deletions"]) == (2, 1)
    ignored = work["ignored"]
    assert ignored["files"] >= 4 and not ignored["judged"]
    assert {".ruff_cache/", ".pytest_cache/", "tests/__pycache__/"} <= {
        t["path"] for t in ignored["top"]
    }

    text = show(wroot, out.id)
    assert "\x1b" not in text  # the hostile file name is escaped
    for needle in (
        f"branch   farro/{out.id}",
        f"base     {base}",
        f"commits  attempt 1 {c1[:12]}, attempt 2 {c2[:12]}",
        "changed  2 paths, +2 -1",
        "M  src/a.py  +1 -1",
        f"ignored  {ignored['files']} files (the base commit's .gitignore files), not judged: ",
        ".ruff_cache/ (",
    ):
        assert needle in text, (needle, text)
    # the paths changed sit under "changed", before the ignored writes: never read as ignored
    rows = text.splitlines()
    at = {
        k: next(n for n, ln in enumerate(rows) if k in ln)
        for k in ("changed  2", "M  src/a", "ignored  ")
    }
    assert at["changed  2"] < at["M  src/a"] < at["ignored  "], text

    console = Console(width=200, record=True, color_system=None)
    console.print(render_job(out, [], False))
    pane = console.export_text()
    assert "\x1b" not in pane
    for needle in (
        "Work",
        f"farro/{out.id}",
        base,
        f"attempt 1 {c1[:12]}, attempt 2 {c2[:12]}",
        "2 paths, +2 -1",
        "M  src/a.py  +1 -1",
        ".pytest_cache/ (",
    ):
        assert needle in pane, (needle, pane)
    rows = pane.splitlines()
    at = {
        k: next(n for n, ln in enumerate(rows) if k in ln)
        for k in ("2 paths", "M  src/a", "ignored ")
    }
    assert at["2 paths"] < at["M  src/a"] < at["ignored "], pane


def test_show_of_a_job_not_yet_run_has_no_work(wroot: Root) -> None:
    env = submit(wroot, "x")
    assert json.loads(show(wroot, env.id, "--json"))["work"] is None
    assert "work:" not in show(wroot, env.id)
