"""A heartbeat too slow for ``stale_after_s`` is refused before anything starts.

With ``heartbeat_s`` at or above half of ``stale_after_s`` the watchdog marks a
healthy worker's job stale between two beats, which fences the worker and kills
its agent: no job could ever finish. ``farro-tui --workers-only`` says so in
one line and exits 2, like any other bad setting.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from farro_core.errors import BadInput
from farro_core.root import Root
from farro_core.settings import load_settings

from .helpers import PYTHON, child_env


@pytest.mark.parametrize(("beat", "stale"), [(30, 10), (2, 3)])
def test_a_heartbeat_too_slow_for_stale_after_s_is_refused(
    tmp_path: Path, beat: float, stale: float
) -> None:
    root = Root.init(tmp_path / "root")
    (root.path / "farro.toml").write_text(f"heartbeat_s = {beat}\nstale_after_s = {stale}\n")
    with pytest.raises(BadInput, match="heartbeat_s"):
        load_settings(root.path)
    proc = subprocess.run(
        [PYTHON, "-m", "farro_tui.main", "--workers-only", "--root", str(root.path)],
        capture_output=True,
        text=True,
        timeout=30,
        env=child_env(),
    )
    assert proc.returncode == 2, proc.stderr
    assert "heartbeat_s" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_heartbeat_well_within_stale_after_s_is_fine(tmp_path: Path) -> None:
    root = Root.init(tmp_path / "root")
    (root.path / "farro.toml").write_text("heartbeat_s = 1\nstale_after_s = 2\n")
    assert load_settings(root.path).stale_after_s == 2
