"""Run every benchmark and print one table: goal / measured / pass per line.

    .venv/bin/python benchmarks/run_all.py        (what `make bench` runs)

Exit status 1 when a goal is missed. Roots are made under $FARRO_BENCH_DIR
(default /var/tmp), on the real disk, and removed afterwards.
"""

from __future__ import annotations

import os
import platform
import sys
import time

import bench_console
import bench_core
import bench_diff
import bench_scale
import bench_workers
import bench_workspace
from _util import Row, fs_type, report, scratch_base


def main() -> int:
    t = time.perf_counter()
    base = scratch_base()
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"scratch {base} ({fs_type(base)}), load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    rows: list[Row] = []
    for name, fn in (
        ("core", bench_core.run),
        ("workers", bench_workers.run),
        ("workspace", bench_workspace.run),
        ("scale", bench_scale.run),
        ("console", bench_console.run),
        ("diff pane", bench_diff.run),
    ):
        try:
            rows += fn()
        except Exception as exc:  # one broken benchmark must not hide the others
            rows.append(Row(f"{name} benchmarks", "run", f"error: {exc}", False))
    title = f"FARRO benchmarks ({time.perf_counter() - t:.0f} s, load {os.getloadavg()[0]:.1f})"
    return report(rows, title)


if __name__ == "__main__":
    sys.exit(main())
