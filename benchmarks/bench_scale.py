"""Many agents, and a big batch submit.

- 16 workers in one headless process running ``sleep 5`` agents: FARRO's own
  CPU (the headless process's user + system time, agents excluded: they are
  other processes) over the window when all 16 agents run, as a share of one
  core (goal <= 5%).
- ``farro submit`` of a 10,000-job batch file, cold process, full durability
  (goal <= 5 s), with its jobs/s and fsyncs per job (``os.fsync`` and ``fs.syncfs`` counted
  in that process by ``_util.counting_syncs``); and the floor: the
  same file system work (mkdirs, creates, renames, one syncfs) in a bare loop.

    .venv/bin/python benchmarks/bench_scale.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _util import Row, farro_cli, report, scratch
from bench_workers import Headless, _count, _wait

from farro_core import fs, job
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


#: ``farro submit`` as the console script runs it, with its fsyncs and syncfs counted
#: (benchmarks/ on sys.path for _util; the count goes to stderr's last line)
COUNTED_MAIN = """
import sys
sys.path.insert(0, sys.argv.pop(1))
from _util import counting_syncs
from farro_core.cli import main
with counting_syncs() as count:
    code = main()
sys.stderr.write(f"\\nsyncs {count.fsyncs} {count.syncfs}\\n")
sys.exit(code)
"""


def batch_submit(base: Path, n: int = 10_000) -> list[Row]:
    """A cold ``farro submit`` of a batch file, timed and its syncs counted; the disk's floor."""
    root = Root.init(base / "batch")
    batch = base / "batch.json"
    batch.write_text(json.dumps({"jobs": [{"prompt": f"job {i}"} for i in range(n)]}))
    floors = [_floor(base / "floor-before", n)]
    here = str(Path(__file__).resolve().parent)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", COUNTED_MAIN, here, "submit", "--root", str(root.path), str(batch)],
        capture_output=True,
        timeout=600,
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    floors.append(_floor(base / "floor-after", n))
    if proc.returncode != 0:
        raise RuntimeError(f"farro submit failed: {proc.stderr.decode().strip()[-300:]}")
    if _count(root.incoming) != n:
        raise RuntimeError(f"{_count(root.incoming)} of {n} jobs queued")
    _, fsyncs, syncfs = proc.stderr.decode().strip().splitlines()[-1].split()
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return [
        Row(
            f"farro submit of a {n:,}-job batch",
            "<= 5 s",
            f"{wall:.2f} s, {n / wall:,.0f} jobs/s (CPU {user:.1f} s user + {system:.1f} s sys)",
            wall <= 5.0,
        ),
        Row(
            "batch submit: fsyncs per job",
            "-",
            f"{(int(fsyncs) + int(syncfs)) / n:.4f} "
            f"({fsyncs} fsyncs + {syncfs} syncfs, {n:,} jobs)",
            None,
        ),
        Row(
            f"floor: {n:,} stages made, renamed, one syncfs (no FARRO)",
            "-",
            f"{floors[0]:.2f} s just before the submit, {floors[1]:.2f} s just after",
            None,
            "the file system work alone: a mkdir, two file creates and a rename per job",
        ),
    ]


def _floor(base: Path, n: int) -> float:
    """Seconds for the batch's file system work alone, done by the leanest loop: the floor."""
    stage, queue = base / "tmp", base / "incoming"
    stage.mkdir(parents=True)
    queue.mkdir()
    body = b"x" * 600  # about a prompt.json
    t = time.perf_counter()
    sfd = os.open(stage, os.O_RDONLY | os.O_DIRECTORY)
    qfd = os.open(queue, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for i in range(n):
            os.mkdir(str(i), 0o700, dir_fd=sfd)
            dfd = os.open(str(i), os.O_RDONLY | os.O_DIRECTORY, dir_fd=sfd)
            for name in ("prompt.json", "job.json"):
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dfd)
                os.write(fd, body)
                os.close(fd)
            os.close(dfd)
        if not fs.syncfs(sfd):
            raise RuntimeError("no syncfs here: the floor would be per-file fsyncs")
        for i in range(n):
            os.rename(str(i), str(i), src_dir_fd=sfd, dst_dir_fd=qfd)
        os.fsync(qfd)
        os.fsync(sfd)
    finally:
        os.close(sfd)
        os.close(qfd)
    return time.perf_counter() - t


def run() -> list[Row]:
    if farro_cli() is None:
        return [Row("scale benchmarks", "run", "not run", None, "no farro CLI yet")]
    with scratch("scale") as base:
        return [many_agents(base), *batch_submit(base)]


if __name__ == "__main__":
    sys.exit(report(run(), "scale"))
