"""A host's clock skew, measured against the file system's clock (libfaketime shifts
the measuring process's clock for real): doctor warns, stats and the workers pane
show each host's skew."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from farro_core.fsclock import HostClock
from farro_core.manager import ManagerStatus
from farro_core.root import Root
from farro_core.system import SystemSnapshot
from farro_tui.screens.workers import manager_line

from .harness import HERE, faketime_lib, require_hosts


def _run(argv: list[str], offset_s: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARRO_", "FAKE"))}
    if offset_s is not None:
        env.update(
            LD_PRELOAD=faketime_lib() or "",
            FAKETIME=f"{offset_s:+d}s",
            DONT_FAKE_MONOTONIC="1",
            FAKE_UTIME="1",
            NO_FAKE_STAT="1",
            PYTHONPATH=str(HERE / "site"),  # time.sleep works around a libfaketime bug
        )
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)


def test_skew_is_measured_against_the_file_system_and_shown(tmp_path: Path) -> None:
    require_hosts()
    root = Root.init(tmp_path / "root")
    doctor = _run([sys.executable, "-m", "farro_core.cli", "doctor", "--root", str(root.path)], 120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr  # a warning, not a failure
    skew = [line for line in doctor.stdout.splitlines() if "clock skew" in line]
    assert skew and skew[0].startswith("warn") and "120." in skew[0], doctor.stdout

    tick = "from farro_core.fsclock import SkewMonitor; from farro_core.root import Root; "
    tick += f"SkewMonitor(Root.open({str(root.path)!r}), 5).tick()"
    assert _run([sys.executable, "-c", tick], -90).returncode == 0

    stats = _run([sys.executable, "-m", "farro_core.cli", "stats", "--root", str(root.path)])
    assert stats.returncode == 0, stats.stderr
    assert "-90." in stats.stdout and "over clock_skew_warn_s" in stats.stdout, stats.stdout
    data = json.loads(
        _run(
            [sys.executable, "-m", "farro_core.cli", "stats", "--json", "--root", str(root.path)]
        ).stdout
    )
    (only,) = data["hosts"]
    assert abs(only["skew_s"] + 90) < 5 and only["warn"] is True


def test_the_workers_pane_shows_each_hosts_skew() -> None:
    snap = SystemSnapshot(
        manager=ManagerStatus("here", "h pid 1", None, None, None),
        workers=(),
        paused=False,
        running=True,
        clocks=(HostClock("host-a", 60.2, 1.0), HostClock("host-c", 0.1, 1.0)),
        skew_s=60.2,
        skew_warn_s=5,
    )
    text = manager_line(snap, datetime.now(UTC))
    assert "clock skew vs the file system: host-a +60.2s host-c +0.1s" in text.plain
    assert any(span.style == "bold red" for span in text.spans)


def test_a_claimers_clock_is_never_compared_with_the_managers(tmp_path: Path) -> None:
    """claimed_at is the claiming host's clock: an hour ahead, it must not hide a
    heartbeat that went silent a minute ago (by the file system's clock)."""
    from datetime import timedelta

    from farro_core import job
    from farro_core.envelope import parse_spec
    from farro_core.identity import WorkerIdentity
    from farro_core.locks import CLAIMS
    from farro_core.settings import Settings
    from farro_core.transitions import Status
    from farro_core.watchdog import Watchdog

    root = Root.init(tmp_path / "root")
    job.create(root, parse_spec({"prompt": "p"}))
    ahead = datetime.now(UTC) + timedelta(hours=1)
    env = job.claim(root, WorkerIdentity.current("w-ahead"), now=ahead)
    assert env is not None
    try:
        beat = env.runtime.path / ".claim-1.lock"
        then = os.stat(beat).st_mtime - 60
        os.utime(beat, (then, then))
        report = Watchdog(root, Settings(stale_after_s=30)).sweep()
        assert [j for j, _ in report.stale] == [env.id]
        silent = int(report.stale[0][1].split()[3].rstrip("s"))
        assert 60 <= silent < 90, report.stale
        assert job.load(root, env.id).status is Status.STALE
    finally:
        CLAIMS.release(job.claim_key(root, env.id, 1))
