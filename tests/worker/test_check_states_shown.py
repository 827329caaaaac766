"""The console's job pane says each check's state, as `farro show` does.

A check that could not run (exit 127) or timed out is not the same as one that
failed; a bare ✗ for all three sent the operator to the wrong fix.
"""

from __future__ import annotations

from rich.console import Console

from farro_core.root import Root
from farro_tui.screens.job import render_job

from .helpers import make_worker, sh, submit


def test_job_pane_names_failed_error_and_timed_out_checks(wroot: Root) -> None:
    rubric = [
        {"id": "ok", "description": "passes", "check": "true"},
        {"id": "bad", "description": "fails", "check": "exit 3", "required": False},
        {"id": "gone", "description": "not there", "check": "no-such-linter .", "required": False},
        {"id": "slow", "description": "too slow", "check": "sleep 30", "timeout_s": 0.5},
    ]
    submit(wroot, "x", agent=sh("true"), rubric=rubric)
    out = make_worker(wroot, kill_grace_s=0.5).run_once()
    assert out is not None and out.lifecycle.result is not None
    states = {v.id: v.state for v in out.lifecycle.result.rubric}
    assert states == {"ok": "passed", "bad": "failed", "gone": "error", "slow": "timed_out"}

    console = Console(width=120, record=True, color_system=None)
    console.print(render_job(out, [], False))
    lines = {
        ln.split()[1]: ln for ln in console.export_text().splitlines() if ln[:3] in (" ✓ ", " ✗ ")
    }
    assert lines["ok"].split() == ["✓", "ok"]
    assert "failed, exit 3" in lines["bad"]
    assert "could not run, exit 127" in lines["gone"]
    assert "timed out" in lines["slow"]
