"""The torture run under pytest: short in `make test`, full under `make torture`.

``FARRO_TORTURE=full`` (what `make torture` sets) runs 1000 jobs for 60 s per
variant; otherwise 250 jobs for 10 s. ``FARRO_TORTURE_JOBS`` and
``FARRO_TORTURE_S`` override either. The summary table is printed (use -s).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .harness import BIN, run

FULL = os.environ.get("FARRO_TORTURE") == "full"
JOBS = int(os.environ.get("FARRO_TORTURE_JOBS") or (1000 if FULL else 250))
SECONDS = float(os.environ.get("FARRO_TORTURE_S") or (60 if FULL else 10))

pytestmark = [
    pytest.mark.timeout(SECONDS + 900),
    pytest.mark.skipif(not (BIN / "farro-tui").exists(), reason="farro-tui is not installed"),
]


@pytest.mark.parametrize("mode", ["kill", "stop"])
def test_torture(tmp_path: Path, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    report = run(tmp_path / mode, jobs=JOBS, procs=4, duration=SECONDS, mode=mode)
    with capsys.disabled():
        print("\n" + report.table())
    assert report.disturbances >= 3, "the driver barely disturbed anything"
    assert (report.lost, report.torn, report.double, report.misplaced) == (0, 0, 0, 0)
    assert report.not_terminal == 0 and report.audit_gaps == 0 and report.unbacked == 0
    assert report.problems == []
    shutil.rmtree(tmp_path / mode, ignore_errors=True)  # keep a failing run for inspection
