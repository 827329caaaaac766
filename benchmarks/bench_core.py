"""Core costs on this machine, with full durability (every fsync done).

- create, claim and commit cost per job (median, p99), in-process;
- ``farro submit`` cold wall time (a fresh process each time, its bytecode compiled as
  ``pip install`` leaves it; goal <= 100 ms), and its instructions where valgrind is
  installed (callgrind: a count that, unlike wall time, does not move with the load);
- ``farro ls --status queued`` on a root of 100k jobs (goal <= 0.5 s);
- claim cost with 100k done jobs vs 1k done (goal <= 1.2x: claim never scans done/);
- claim CPU with 1k and 10k jobs queued (a claim should cost what changed since the
  last one, not what is queued: issue 11, item 4).

    .venv/bin/python benchmarks/bench_core.py [--jobs 200] [--big 100000]
    .venv/bin/python benchmarks/bench_core.py --submit-only [--submit-runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _util import Row, farro_cli, fs_type, median, ms, pct, report, scratch, timed
from gen_root import generate

from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
from farro_core.transitions import Actor, Status


def bench_transactions(base: Path, n: int) -> list[Row]:
    root = Root.init(base / "tx")
    spec = parse_spec({"prompt": "benchmark: do nothing", "agent": ["true"]})
    me = WorkerIdentity.current("bench")
    create_t, claim_t, commit_t = [], [], []
    for _ in range(n):
        create_t.append(timed(job.create, root, spec)[1])
    claimed = []
    for _ in range(n):
        env, took = timed(job.claim, root, me)
        claim_t.append(took)
        assert env is not None
        claimed.append(env)
    for env in claimed:
        _, took = timed(job.commit, env, Status.SUCCEEDED, Actor.AGENT, "bench", worker=me.name)
        commit_t.append(took)
        job.release_claim(env)
    rows = []
    for name, vals in (("create", create_t), ("claim", claim_t), ("commit", commit_t)):
        rows.append(
            Row(
                f"{name} per job (n={n})",
                "report",
                f"median {ms(median(vals))}, p99 {ms(pct(vals, 99))}",
                None,
            )
        )
    return rows


def bench_submit_cold(base: Path, cli: list[str], runs: int) -> Row:
    # an installed farro has its bytecode (pip compiles it); this tree may not, and with
    # PYTHONDONTWRITEBYTECODE set each run would compile farro_core again (~100 ms)
    compileall.compile_dir(Path(job.__file__).parent, quiet=1)
    root = Root.init(base / "submit")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    walls = []
    for i in range(runs + 1):
        proc, wall = timed(
            subprocess.run,
            [*cli, "submit", "--root", str(root.path), "--prompt", f"cold submit {i}"],
            capture_output=True,
            env=env,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"farro submit failed: {proc.stderr.decode().strip()}")
        if i > 0:  # the first run warms the page cache of the interpreter and libraries
            walls.append(wall)
    m = median(walls)
    count = instructions([*cli, "submit", "--root", str(root.path), "--prompt", "counted"], env)
    return Row(
        f"farro submit wall (n={runs})",
        "<= 100 ms",
        f"median {ms(m)}, p90 {ms(pct(walls, 90))}"
        + (f", {count / 1e6:,.0f} M instructions" if count is not None else ""),
        m <= 0.100,
    )


def instructions(argv: list[str], env: dict[str, str]) -> int | None:
    """Instructions ``argv`` runs, counted by callgrind; None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True,
        env=env,
        timeout=300,
    )
    found = re.search(rb"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind of farro submit failed: {proc.stderr.decode()[-500:]}")
    return int(found[1])


def bench_ls(root: Root, cli: list[str], runs: int, big: int) -> Row:
    walls = []
    lines = 0
    for _ in range(runs + 1):
        proc, wall = timed(
            subprocess.run,
            [*cli, "ls", "--root", str(root.path), "--status", "queued"],
            capture_output=True,
            timeout=120,
        )
        walls.append(wall)
        if proc.returncode != 0:
            raise RuntimeError(f"farro ls failed: {proc.stderr.decode().strip()}")
        lines = len(proc.stdout.splitlines())
    first, rest = walls[0], walls[1:]
    m = median(rest)
    return Row(
        f"farro ls --status queued ({big // 1000}k jobs)",
        "<= 0.5 s",
        f"median {m:.3f} s (first {first:.3f} s), {lines} lines",
        m <= 0.5,
    )


def claim_costs(root: Root, n: int) -> list[float]:
    me = WorkerIdentity.current(f"bench-{root.path.name}")
    out = []
    for _ in range(n):
        env, took = timed(job.claim, root, me)
        out.append(took)
        assert env is not None
        job.release_claim(env)
    return out


def bench_claim_scaling(small: Root, big: Root, n: int, big_n: int) -> Row:
    # warm both (first claim reads every queued prompt for its priority), then interleave
    claim_costs(small, 5)
    claim_costs(big, 5)
    a, b = [], []
    for _ in range(n // 10):
        a += claim_costs(small, 10)
        b += claim_costs(big, 10)
    ma, mb = median(a), median(b)
    ratio = mb / ma
    return Row(
        f"claim, {big_n // 1000}k done vs 1k done",
        "<= 1.2x",
        f"{ratio:.2f}x ({ms(mb)} vs {ms(ma)} median, n={len(a)})",
        ratio <= 1.2,
    )


def bench_claim_queued(base: Path, sizes: tuple[int, ...] = (1000, 10_000), n: int = 200) -> Row:
    """CPU per claim (process time: steadier than wall time on a shared machine) with
    ``size`` jobs queued, over ``n`` claims after a warm-up one."""
    spec = parse_spec({"prompt": "benchmark: do nothing", "agent": ["true"]})
    me = WorkerIdentity.current("bench-queued")
    got = []
    for size in sizes:
        root = Root.init(base / f"queued-{size}")
        job.create_many(root, [spec] * size)
        claimed = [job.claim(root, me)]  # warm: every queued prompt read once
        t = time.process_time()
        claimed += [job.claim(root, me) for _ in range(n)]
        got.append((time.process_time() - t) / n)
        for env in claimed:
            assert env is not None
            job.release_claim(env)
    return Row(
        "claim CPU, " + " / ".join(f"{s // 1000}k" for s in sizes) + " queued",
        "report",
        " / ".join(ms(c) for c in got) + f" per claim (n={n})",
        None,
    )


def run(
    jobs: int = 200, big_n: int = 100_000, submit_runs: int = 15, submit_only: bool = False
) -> list[Row]:
    rows: list[Row] = []
    cli = farro_cli()
    with scratch("core") as base:
        print(f"bench_core: scratch {base} ({fs_type(base)}), {os.cpu_count()} cores", flush=True)
        if submit_only:
            if cli is None:
                raise SystemExit("bench_core: no farro CLI")
            return [bench_submit_cold(base, cli, submit_runs)]
        rows += bench_transactions(base, jobs)
        rows.append(bench_claim_queued(base))
        if cli is not None:
            rows.append(bench_submit_cold(base, cli, submit_runs))
        else:
            rows.append(Row("farro submit wall", "<= 100 ms", "not run", None, "no farro CLI"))
        t = time.perf_counter()
        big = generate(base / "big", done=big_n - 1000, queued=1000, check=True)
        small = generate(base / "small", done=1000, queued=1000, check=True)
        print(f"bench_core: generated roots in {time.perf_counter() - t:.1f}s", flush=True)
        if cli is not None:
            rows.append(bench_ls(big, cli, 5, big_n))
        else:
            rows.append(Row("farro ls --status queued", "<= 0.5 s", "not run", None, "no CLI"))
        rows.append(bench_claim_scaling(small, big, min(jobs, 500), big_n))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--submit-only", action="store_true", help="Only the cold `farro submit`.")
    ap.add_argument("--submit-runs", type=int, default=15, metavar="N")
    args = ap.parse_args(argv)
    rows = run(args.jobs, args.big, args.submit_runs, args.submit_only)
    return report(rows, "FARRO core benchmarks")


if __name__ == "__main__":
    sys.exit(main())
