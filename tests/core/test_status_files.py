"""run/workers/*.json as farro stats and the console read them: state, liveness, host."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from farro_core.identity import host
from farro_core.root import Root
from farro_core.status_files import (
    PASSING_CHARS,
    PASSING_MAX,
    presets_left,
    worker_files,
    workers_seen,
)


def _write(root: Root, name: str, **body: object) -> None:
    (root.workers_dir / f"{name}.json").write_text(json.dumps(body))


def test_workers_seen_tells_live_gone_and_remote_workers_apart(root: Root) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    _write(
        root,
        "here-busy",
        host=host(),
        pid=os.getpid(),
        state="busy",
        job="J1",
        attempt=2,
        since="2026-01-01T00:00:00+00:00",
        jobs_done=3,
    )
    _write(root, "here-dead", host=host(), pid=int(dead.stdout), state="idle")
    _write(root, "there-idle", host="another-host.example", pid=1, state="idle")
    _write(root, "stopped", host=host(), pid=int(dead.stdout), state="stopped")
    (root.workers_dir / "torn.json").write_text("{")
    seen = {w.name: w for w in workers_seen(root)}
    assert sorted(seen) == ["here-busy", "here-dead", "stopped", "there-idle", "torn"]
    busy = seen["here-busy"]
    assert (busy.state, busy.local, busy.live, busy.job, busy.attempt, busy.jobs_done) == (
        "busy",
        True,
        True,
        "J1",
        2,
        3,
    )
    assert (seen["here-dead"].state, seen["here-dead"].live) == ("gone", False)
    assert (seen["there-idle"].state, seen["there-idle"].local) == ("idle", False)
    assert seen["there-idle"].live  # another host: trusted as written, it cannot be checked
    assert seen["stopped"].state == "stopped" and not seen["stopped"].live
    assert seen["torn"].state == "?" and not seen["torn"].live


def test_a_status_files_passing_is_read_bounded_whatever_its_writer_made_it(root: Root) -> None:
    """`farro stats` and the console show it: a file of 200 long reasons shows 16, cut short."""
    flood = {f"p{i:05d}": "x" * 4000 for i in range(200)}  # under the 1 MiB read limit
    _write(root, "far", host="far.example", pid=1, state="idle", passing=flood)
    _write(root, "odd", host="far.example", pid=1, state="idle", passing=["claude"])
    seen = {w.name: w for w in workers_seen(root)}
    assert len(seen["far"].passing) == PASSING_MAX
    assert all(len(why) == PASSING_CHARS for _, why in seen["far"].passing)
    assert seen["odd"].passing == ()
    left = presets_left(worker_files(root))
    assert len(left) == PASSING_MAX and all(names == ["far"] for _, _, names in left)
