"""README's commands run as written, and the jobs they make succeed.

The quick start, the `farro` examples, the spec-file example and the goal are
taken from README.md itself and run in bash with a fresh ``$HOME`` (so ``~/q``
and ``~/src/myrepo`` are the test's own). Only the interactive console line is
swapped for the same System headless (``farro-tui --workers-only``), which then
works both roots until nothing is left to run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from support import wait_until

from farro_core import job
from farro_core.root import Root
from farro_core.transitions import Status

from .helpers import PYTHON

README = Path(__file__).resolve().parents[2] / "README.md"
BIN = Path(sys.executable).parent


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", README.read_text(), re.S | re.M)


def block(lang: str, containing: str) -> str:
    found = [b for b in blocks(lang) if containing in b]
    assert len(found) == 1, f"README has {len(found)} {lang} blocks with {containing!r}"
    return found[0]


def run_sh(script: str, home: Path, cwd: Path) -> str:
    env = {
        "HOME": str(home),
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    p = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert p.returncode == 0, f"{script}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
    return p.stdout


def statuses(root: Root) -> dict[str, Status]:
    queues = ("incoming", "active", "done")
    return {i: job.load(root, i).status for q in queues for i in root.ids(q)}


def test_the_readme_examples_run_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    work = tmp_path / "checkout"  # where a reader runs the quick start: the source tree
    home.mkdir()
    work.mkdir()
    os.symlink(sys.prefix, work / ".venv")

    first_run = block("sh", "farro init --root ~/q")
    console = [ln for ln in first_run.splitlines() if ln.startswith("farro-tui")]
    assert len(console) == 1  # the one line run headless below instead
    run_sh(first_run.replace(console[0], ""), home, work)

    run_sh(block("sh", "farro init --example ~/src/myrepo"), home, work)
    spec = home / "typing.json"  # the spec-file example, saved as a user would
    spec.write_text(block("json", '"title": "Add type hints to utils.py"'))
    run_sh(f"farro submit {spec}", home, work)
    goal = json.loads(block("json", '"goal"'))
    inbox = home / ".farro" / "inbox"
    (inbox / ".goal.json.tmp").write_text(json.dumps(goal))
    os.rename(inbox / ".goal.json.tmp", inbox / "goal.json")

    q, default = Root.open(home / "q"), Root.open(home / ".farro")
    env = {"HOME": str(home), "PATH": f"{BIN}:/usr/bin:/bin", "FARRO_DEMO_SPEED": "0"}
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "farro_tui.main", "--workers-only", "--root", str(r.path)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for r in (q, default)
    ]
    try:

        def settled() -> bool:
            if os.path.lexists(inbox / "goal.json"):
                return False
            return all(
                s not in (Status.QUEUED, Status.IN_PROGRESS)
                for r in (q, default)
                for s in statuses(r).values()
            )

        wait_until(settled, "every job of the README run to its end", timeout=240)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)

    assert list(statuses(q).values()) == [Status.SUCCEEDED]
    ran = {i: job.load(default, i) for i in statuses(default)}
    by_title = {e.prompt.title: e.status for e in ran.values()}
    assert by_title == {
        "Fix the flaky test in tests/test_io.py": Status.SUCCEEDED,
        "Add type hints to utils.py": Status.SUCCEEDED,  # from batch.json and the example
        "Document utils.py": Status.KILLED,  # farro kill --label batch=docs
        "add a CHANGELOG": Status.SUCCEEDED,
        "fix the typo in README": Status.SUCCEEDED,
        "bump the version": Status.SUCCEEDED,
    }, {e.prompt.title: (e.status, e.lifecycle.reason) for e in ran.values()}
    assert len(ran) == 7
    assert os.listdir(inbox / "rejected") == []
