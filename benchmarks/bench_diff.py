"""The diff pane on a 50,000-line diff (issue 13's goals).

Runs ``python -m farro_tui.bench_diff`` in a fresh process on a scratch root
and repository: the first screen (``d`` to the first diff line drawn, git's
diff and the parse included) and key-to-screen times, timed in the app.
"""

from __future__ import annotations

import json
import subprocess
import sys

from _util import Row, scratch

FIRST_GOAL_S = 0.5
KEY_GOAL_MS = 50.0


def run(lines: int = 50_000) -> list[Row]:
    with scratch("diff") as d:
        out = subprocess.run(
            [sys.executable, "-m", "farro_tui.bench_diff", str(d), "--lines", str(lines)],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    f = json.loads(out.stdout)
    size = f"{f['lines']:,} lines, {f['files']} files"
    rows = [
        Row(
            f"diff pane first screen ({size})",
            f"≤ {FIRST_GOAL_S} s",
            f"{f['first_screen_s']:.2f} s",
            f["first_screen_s"] <= FIRST_GOAL_S,
        ),
        Row(
            "diff pane first screen, CPU of every thread",
            "report",
            f"{f['first_screen_cpu_s']:.2f} s",
            None,
            "the wall time on an idle machine; more than it means waiting for the CPU",
        ),
    ]
    for key, value in f.items():
        if key.startswith("key ") and key.endswith(" ms"):
            name = key.removeprefix("key ").removesuffix(" ms")
            rows.append(
                Row(
                    f"diff pane key → screen: {name}",
                    f"≤ {KEY_GOAL_MS:g} ms",
                    f"{value:.1f} ms",
                    value <= KEY_GOAL_MS,
                )
            )
    return rows


if __name__ == "__main__":
    from _util import print_table

    print_table(run(), "diff pane benchmarks")
