"""Named crash points: the process dies exactly at the named point and nowhere else, and
every named point exists in the code (and every point in the code is named)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import farro_core
from farro_core import crash

CODE = (
    "from farro_core import crash\n"
    "print('before', flush=True)\n"
    "crash.point('claim.committed')\n"
    "print('after', flush=True)\n"
)


def run(env_value: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FARRO_CRASH_AT"}
    if env_value is not None:
        env["FARRO_CRASH_AT"] = env_value
    return subprocess.run(
        [sys.executable, "-c", CODE], env=env, capture_output=True, text=True, timeout=60
    )


def test_dies_at_the_named_point() -> None:
    res = run("claim.committed")
    assert res.returncode == crash.CRASH_EXIT == 77
    assert res.stdout == "before\n"


@pytest.mark.parametrize(
    "value", [None, "", "claim.locked", "claim.committed.x", "CLAIM.COMMITTED"]
)
def test_lives_elsewhere(value: str | None) -> None:
    res = run(value)
    assert res.returncode == 0 and res.stdout == "before\nafter\n"


def test_in_process_point_is_a_no_op_without_the_variable() -> None:
    crash.point("create.staged")  # the autouse fixture cleared FARRO_CRASH_AT


def test_points_match_the_transactions() -> None:
    """Every listed point is reached in the code, and every point in the code is listed
    (the three transactions in job.py and the inbox alike), so the crash tests cover each."""
    pkg = Path(farro_core.__file__).parent
    pattern = r"crash\.point\(\"([^\"]+)\"\)"
    everywhere = re.findall(pattern, "".join(p.read_text() for p in pkg.glob("*.py")))
    in_job = re.findall(pattern, (pkg / "job.py").read_text())
    unlisted = sorted(set(everywhere) - set(crash.POINTS))
    assert not unlisted, f"crash points reached in farro_core but not in crash.POINTS: {unlisted}"
    assert set(crash.POINTS) <= set(everywhere)
    assert set(in_job) <= set(crash.POINTS)
    assert len(set(crash.POINTS)) == len(crash.POINTS)
    for step in ("create", "claim", "commit"):
        assert any(p.startswith(step + ".") for p in crash.POINTS)
