"""Console figures on a 100k-job root (99k done): issue 4's goals.

Runs ``python -m farro_tui.bench`` in a fresh process (so RSS is the console's
own) on a root made by :func:`gen_root.generate`. Key times are measured inside
the app as the handler plus drawing every visible line: a Pilot key press adds
a fixed wait of its own that no terminal user sees.
"""

from __future__ import annotations

import json
import subprocess
import sys

from _util import Row, scratch
from gen_root import generate

KEY_GOAL_MS = 50.0


def run(done: int = 99_000, queued: int = 1_000) -> list[Row]:
    with scratch("console") as d:
        root = generate(d / "root", done=done, queued=queued, check=False)
        out = subprocess.run(
            [sys.executable, "-m", "farro_tui.bench", str(root.path)],
            capture_output=True,
            text=True,
            timeout=900,
            check=True,
        )
    f = json.loads(out.stdout)
    jobs = f"{f['jobs'] // 1000}k jobs"
    rows = [
        Row(
            f"console first screen ({jobs}, app start → first row)",
            "≤ 1.5 s",
            f"{f['first_screen_s']:.2f} s",
            f["first_screen_s"] <= 1.5,
        ),
        Row("console RSS, every row read", "≤ 250 MB", f"{f['rss_mb']:.0f} MB", f["rss_mb"] <= 250),
        Row(
            "console: external change visible",
            "≤ 300 ms",
            f"{f['external_change_ms']} ms",
            f["external_change_ms"] <= 300,
            "includes the submit's own fsyncs",
        ),
    ]
    for key, value in f.items():
        if key.startswith("key ") and key.endswith(" ms"):
            name = key.removeprefix("key ").removesuffix(" ms")
            rows.append(
                Row(
                    f"console key → screen: {name}",
                    "≤ 50 ms",
                    f"{value:.1f} ms",
                    value <= KEY_GOAL_MS,
                )
            )
    rows.append(
        Row(
            "console: all done/ rows read in background",
            "report",
            f"{f['all_rows_read_s']:.1f} s",
            None,
        )
    )
    return rows


if __name__ == "__main__":
    from _util import print_table

    print_table(run(), "console benchmarks")
