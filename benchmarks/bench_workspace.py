"""Pooled worktrees on a big repository, against git itself in the same run.

A generated repository of 30,000 files (about 120 MB checked out), one worker,
an agent that appends one line to an allowed file:

- per-job wall time, submit -> done, against a bare ``git worktree add`` of the
  same repository (goal <= 0.25x; the median of three adds, since one add's wall
  time swings several-fold on a shared machine). The first job makes the
  worker's worktree (that is a worktree add); the figure is the median of the
  jobs after it. CPU time (user + sys, FARRO's and its children's) is shown
  beside each, as the steadier figure.
- judging plus commit (``workspace.changes`` + ``commit_work``) against ``git
  status`` in that worktree (goal <= 2x).
- worktrees on disk after 50 jobs against one checkout (goal <= 1.2x).

    .venv/bin/python benchmarks/bench_workspace.py [--files 30000] [--jobs 50]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _util import Row, median, report, scratch

from farro_core import api, pool, workspace
from farro_core.root import Root
from farro_core.worker import Worker

LINE = b"x" * 60 + b"\n"


def make_repo(path: Path, files: int, size: int = 4096) -> Path:
    """A repository of ``files`` files of ``size`` bytes, written by git fast-import."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    proc = subprocess.Popen(
        ["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE
    )
    assert proc.stdin is not None
    w = proc.stdin.write
    body = (LINE * (size // len(LINE) + 1))[:size]
    for i in range(files):
        data = b"%d\n" % i + body[: size - 8]
        w(b"blob\nmark :%d\ndata %d\n" % (i + 1, len(data)) + data + b"\n")
    w(b"blob\nmark :%d\ndata 6\nnotes\n\n" % (files + 1))
    w(b"blob\nmark :%d\ndata 14\nbuild/\n*.log\n\n" % (files + 2))
    w(b"commit refs/heads/main\ncommitter b <b@b> 0 +0000\ndata 4\ninit\n")
    for i in range(files):
        w(b"M 100644 :%d src/d%03d/s%d/f%d.txt\n" % (i + 1, i // 300, (i // 30) % 10, i))
    w(b"M 100644 :%d notes.md\n" % (files + 1))
    w(b"M 100644 :%d .gitignore\n\n" % (files + 2))
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError("git fast-import failed")
    subprocess.run(["git", "-C", str(path), "checkout", "-q", "-f", "main"], check=True)
    return path


def du(path: Path) -> int:
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, check=True)
    return int(out.stdout.split()[0])


def git_timed(cwd: Path, *args: str) -> float:
    return git_wall_cpu(cwd, *args)[0]


def cpu_s() -> float:
    """CPU time (user + sys) of this process and its reaped children so far."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def git_wall_cpu(cwd: Path, *args: str) -> tuple[float, float]:
    t, c = time.perf_counter(), cpu_s()
    subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, check=True)
    return time.perf_counter() - t, cpu_s() - c


def run(files: int = 30_000, jobs: int = 50) -> list[Row]:
    rows: list[Row] = []
    with scratch("repo") as base:
        repo = make_repo(base / "repo", files)
        bare = base / "bare-worktree"
        adds = []
        for n in range(3):
            adds.append(git_wall_cpu(repo, "worktree", "add", "-q", "--detach", str(bare), "HEAD"))
            if n == 0:
                checkout = du(bare)
                status_s = median([git_timed(bare, "status", "--porcelain") for _ in range(3)])
            git_timed(repo, "worktree", "remove", "--force", str(bare))
        add_s, add_cpu = median([a[0] for a in adds]), median([a[1] for a in adds])

        root = Root.init(base / "root")
        (root.path / "farro.toml").write_text("max_attempts = 1\n")
        root = Root.open(root.path)
        worker = Worker(root, "bench")
        agent = ["/bin/sh", "-c", "echo line >> notes.md"]
        walls, cpus = [], []
        for i in range(jobs):
            t, c = time.perf_counter(), cpu_s()
            api.submit(
                root, f"job {i}", agent=agent, workspace=str(repo), allowed_paths=["notes.md"]
            )
            out = worker.run_once()
            walls.append(time.perf_counter() - t)
            cpus.append(cpu_s() - c)
            if out is None or out.status != "succeeded":
                raise RuntimeError(f"job {i}: {out.lifecycle.reason if out else 'not run'}")
        disk = du(root.path / "worktrees")
        per_job, per_job_cpu = median(walls[1:]), median(cpus[1:])

        # judging plus commit alone, on the worker's worktree after an agent-like edit
        env = api.submit(root, "judge", agent=agent, workspace=str(repo), allowed_paths=["**"])
        judge = []
        for n in range(1, 4):
            ws = workspace.prepare(root, env, slots=worker.pool)
            with open(ws.path / "notes.md", "ab") as fh:
                fh.write(b"line\n")
            t = time.perf_counter()
            found = workspace.changes(ws)
            workspace.commit_work(ws, env.id, n, found)
            judge.append(time.perf_counter() - t)
        judge_s = median(judge)
        worker.pool.close()
        slots = len(pool.scan(root))

    ratio = per_job / add_s
    rows.append(
        Row(
            f"per job, {files // 1000}k-file repo, 1 worker (median of {jobs - 1})",
            "<= 0.25x worktree add",
            f"{per_job:.3f} s vs {add_s:.2f} s git worktree add: {ratio:.2f}x "
            f"(CPU {per_job_cpu:.3f} s vs {add_cpu:.2f} s: {per_job_cpu / add_cpu:.2f}x; "
            f"first job {walls[0]:.2f} s)",
            ratio <= 0.25,
        )
    )
    ratio = judge_s / status_s
    rows.append(
        Row(
            "judging + commit vs git status",
            "<= 2x",
            f"{judge_s:.3f} s vs {status_s:.3f} s: {ratio:.2f}x",
            ratio <= 2.0,
        )
    )
    ratio = disk / checkout
    rows.append(
        Row(
            f"worktrees on disk after {jobs} jobs",
            "<= 1.2x one checkout",
            f"{disk / 1e6:.0f} MB in {slots} worktree vs {checkout / 1e6:.0f} MB: {ratio:.2f}x",
            ratio <= 1.2,
        )
    )
    return rows


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=30_000)
    p.add_argument("--jobs", type=int, default=50)
    a = p.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    sys.exit(report(run(a.files, a.jobs), "pooled worktrees"))
