"""A real manager process: one hostile file or job never wedges it, and it logs once.

Before, a request file nested 1,000 deep (here a TOML bomb of dotted keys) raised
RecursionError in the inbox pass every half second, so no later file was ever
read; and a finished job copied back into incoming/ ran again, then failed to move
to done/ and logged an error every sweep.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from support import wait_for, wait_until

from farro_core import audit, job
from farro_core.root import Root
from farro_core.transitions import Status

from .helpers import Headless, make_root, status_is, terminal_commits

pytestmark = pytest.mark.timeout(180)

HOSTILE = {
    "bomb.toml": b'prompt = "x"\n' + b".".join([b"a"] * 1000) + b" = 1\n",
    "arrays.toml": b'prompt = "x"\nlabels = ' + b"[" * 1000 + b"]" * 1000 + b"\n",
    "deep.json": b'{"prompt": "x", "labels": ' + b'{"a": ' * 1000 + b"1" + b"}" * 1000 + b"}",
    "surrogate.json": b'{"prompt": "\\ud800"}',
    "typed.json": b'{"prompt": "x", "max_attempts": "3"}',
    "fifo.json": b"",  # made a FIFO below
}


def _put(root: Root, name: str, data: bytes) -> None:
    tmp = root.inbox / f".{name}.tmp"
    tmp.write_bytes(data)
    os.rename(tmp, root.inbox / name)


def test_hostile_request_files_are_rejected_once_and_later_files_still_run(
    tmp_path: Path, procs: list[Headless]
) -> None:
    root = make_root(tmp_path / "root", agent="true")
    for name, data in HOSTILE.items():
        if name == "fifo.json":
            os.mkfifo(root.inbox / name)
        else:
            _put(root, name, data)
    _put(root, "zz-good.json", b'{"prompt": "after the bombs"}')
    p = Headless(root, tmp_path / "p.log", "--workers", "1")
    procs.append(p)
    wait_until(lambda: os.path.lexists(root.accepted / "zz-good.json"), "the good file accepted")
    for name in HOSTILE:  # after a grace, in case they were still being written
        wait_until(lambda name=name: os.path.lexists(root.rejected / name), f"{name} rejected")
        assert (root.rejected / f"{name}.error.txt").read_text().startswith(f"{name}: ")
    # the inbox still runs: a file dropped now is taken too, and its job runs
    _put(root, "zz-later.json", b'{"prompt": "later"}')
    wait_until(lambda: os.path.lexists(root.accepted / "zz-later.json"), "a later file accepted")
    wait_until(lambda: len(root.ids("done")) == 2, "both good jobs ran")
    log = p.log()
    assert "Traceback" not in log and "RecursionError" not in log, log
    for name in HOSTILE:  # said once, never in a loop
        assert sum(f"rejected {name}" in line for line in log.splitlines()) == 1, log


@pytest.mark.parametrize("as_queued", [False, True], ids=["as-is", "made-queued"])
def test_a_finished_job_copied_back_into_incoming_is_quarantined_not_run(
    tmp_path: Path, procs: list[Headless], as_queued: bool
) -> None:
    root = make_root(tmp_path / "root", agent="echo ran $FARRO_ATTEMPT")
    p = Headless(root, tmp_path / "p.log", "--workers", "1")
    procs.append(p)
    _put(root, "one.json", b'{"prompt": "run me once", "max_attempts": 1}')
    wait_until(lambda: len(root.ids("done")) == 1, "the job ran")
    [job_id] = root.ids("done")
    done = wait_for(lambda: status_is(root, job_id, Status.SUCCEEDED), "succeeded")
    wait_until(lambda: terminal_commits(root, job_id), "its commit audited")  # after its move
    before = (done.path / "job.json").read_bytes()
    lines = len(list(audit.read(root, job_id)))

    copy = tmp_path / "copy"
    shutil.copytree(done.path, copy)
    if as_queued:
        data = json.loads((copy / "job.json").read_text())
        data.update(status="queued", claim=None, result=None)
        (copy / "job.json").write_text(json.dumps(data))
    os.rename(copy, root.incoming / job_id)

    wait_until(lambda: os.path.lexists(root.quarantine / job_id), "the copy quarantined")
    assert not os.path.lexists(root.incoming / job_id)
    assert (done.path / "job.json").read_bytes() == before  # the original never moved on
    assert len(list(audit.read(root, job_id))) == lines  # never claimed, never committed
    assert job.load(root, job_id).status is Status.SUCCEEDED
    # a later job still runs, and nothing was logged as an error, let alone repeatedly
    _put(root, "two.json", b'{"prompt": "after"}')
    wait_until(lambda: len(root.ids("done")) == 2, "a later job ran")
    log = p.log()
    assert "ERROR" not in log and "Traceback" not in log, log
    assert sum("quarantine" in line and job_id in line for line in log.splitlines()) == 1, log
