"""Many agents, and a big batch submit.

- 16 workers in one headless process running ``sleep 5`` agents: FARRO's own
  CPU (the headless process's user + system time, agents excluded: they are
  other processes) over the window when all 16 agents run, as a share of one
  core (goal <= 5%).
- ``farro submit`` of a 10,000-job batch file, cold process, full durability
  (goal <= 5 s).

    .venv/bin/python benchmarks/bench_scale.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _util import Row, farro_cli, report, scratch
from bench_workers import Headless, _count, _wait

from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.root import Root

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process itself (its threads, not its children)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def many_agents(base: Path, workers: int = 16, sleep_s: int = 5) -> Row:
    root = Root.init(base / "many")
    (root.path / "farro.toml").write_text(f"workers = {workers}\nmax_attempts = 1\n")
    h = Headless(root, workers)
    try:
        h.wait_idle()
        specs = [
            parse_spec({"prompt": f"sleep {i}", "agent": ["sleep", str(sleep_s)]})
            for i in range(workers)
        ]
        job.create_many(root, specs)
        _wait(lambda: _count(root.active) >= workers, 60, "all agents running", 0.05)
        time.sleep(0.5)  # past the claims: the steady state while agents run
        c0, t0 = _cpu_s(h.proc.pid), time.perf_counter()
        time.sleep(sleep_s - 2)
        c1, t1 = _cpu_s(h.proc.pid), time.perf_counter()
        _wait(lambda: _count(root.done) >= workers + 1, 120, "the sleeps to end", 0.05)
    finally:
        h.stop()
    share = (c1 - c0) / (t1 - t0)
    return Row(
        f"{workers} workers, sleep {sleep_s} agents: FARRO's CPU",
        "<= 5% of one core",
        f"{share * 100:.1f}% ({c1 - c0:.2f} s CPU in {t1 - t0:.1f} s)",
        share <= 0.05,
    )


def batch_submit(base: Path, cli: list[str], n: int = 10_000) -> Row:
    root = Root.init(base / "batch")
    batch = base / "batch.json"
    batch.write_text(json.dumps({"jobs": [{"prompt": f"job {i}"} for i in range(n)]}))
    t = time.perf_counter()
    proc = subprocess.run(
        [*cli, "submit", "--root", str(root.path), str(batch)],
        capture_output=True,
        timeout=600,
    )
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"farro submit failed: {proc.stderr.decode().strip()[-300:]}")
    if _count(root.incoming) != n:
        raise RuntimeError(f"{_count(root.incoming)} of {n} jobs queued")
    return Row(f"farro submit of a {n:,}-job batch", "<= 5 s", f"{wall:.2f} s", wall <= 5.0)


def run() -> list[Row]:
    cli = farro_cli()
    if cli is None:
        return [Row("scale benchmarks", "run", "not run", None, "no farro CLI yet")]
    with scratch("scale") as base:
        return [many_agents(base), batch_submit(base, cli)]


if __name__ == "__main__":
    sys.exit(report(run(), "scale"))
