"""Worker throughput against nq and task-spooler, and pickup latency.

- 1000 no-op jobs (``true`` as the agent), 2 workers, full durability (every
  fsync done), wall time from the start of submission to the last job done,
  side by side in the same run with ``nq`` (two queue dirs, one per "worker",
  since nq runs one queue strictly in order) and ``task-spooler`` (``tsp -S 2``).
  Goals: >= 1x nq (issue 11), >= 0.7x task-spooler.
- Pickup latency, submit -> in-progress, with an idle worker: goal p50 <= 20 ms,
  p99 <= 100 ms. Measured from just before ``create()`` to the moment the job's
  directory appears in active/ (polled every 0.5 ms).
- Kill latency: ``operations.kill`` of a running job (a 60 s sleep) until it is
  committed killed, the agent ended by its SIGTERM: goal <= 1 s (the worker looks
  at control/kill every tick). The tests check that the kill happens, not how fast.
- Manager failover: kill -9 of the manager process until its hot standby holds
  the role: goal <= 5 s (a standby retries the lock every second).

FARRO's 1000 jobs are submitted as one ``farro submit`` of a 1000-job file (its
batch idiom); nq and tsp have no batch form, so they get 1000 invocations. The
table also shows FARRO's processing-only rate (jobs already queued).

    .venv/bin/python benchmarks/bench_workers.py [--jobs 1000] [--latency 100]
"""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from _headless import command as headless_command
from _util import Row, median, ms, pct, report, scratch

from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.root import Root

SETTINGS = """\
workers = 2
agent = ["true"]
max_attempts = 1
"""


def _count(path: Path) -> int:
    with os.scandir(path) as it:
        return sum(1 for e in it if not e.name.startswith("."))


def _wait(pred, timeout: float, what: str, poll: float = 0.005) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)


class Headless:
    """``farro-tui --workers-only`` (or its stand-in) on a root, stopped with SIGTERM."""

    def __init__(
        self, root: Root, workers: int, *, no_fsync: bool = False, name: str | None = None
    ) -> None:
        self.root = root
        env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
        self.log = root.path.parent / f"{name or root.path.name}.log"
        self.proc = subprocess.Popen(
            headless_command(root.path, workers, no_fsync=no_fsync),
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "wb"),  # noqa: SIM115
            env=env,
        )
        self.workers = workers

    def wait_idle(self, timeout: float = 60) -> None:
        """Up and idle: a warm-up job went through (status files are written on change only)."""
        probe = job.create(self.root, parse_spec({"prompt": "warm-up", "agent": ["true"]}))
        _wait(lambda: os.path.lexists(self.root.done / probe.id), timeout, "the warm-up job", 0.01)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _cpu_s(pid: int) -> tuple[float, float]:
    """(user+sys seconds of ``pid`` itself, of its reaped children) from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def farro_throughput(
    base: Path, n: int, cli: list[str]
) -> tuple[float, float, tuple[float, float]]:
    """(end-to-end jobs/s from submission, processing-only jobs/s with all pre-queued,
    CPU seconds per job of the workers' process and of its children (the agents and
    their ``sh``), pre-queued, counted from its 50th job on so start-up is left out)."""
    # end to end: idle workers, then one `farro submit` of n jobs
    root = Root.init(base / "farro-e2e")
    (root.path / "farro.toml").write_text(SETTINGS)
    spec = {"jobs": [{"prompt": f"no-op {i}", "agent": ["true"]} for i in range(n)]}
    (base / "jobs.json").write_text(json.dumps(spec))
    h = Headless(root, 2)
    try:
        h.wait_idle()
        t = time.perf_counter()
        subprocess.run(
            [*cli, "submit", "--root", str(root.path), str(base / "jobs.json")],
            check=True,
            capture_output=True,
            timeout=300,
        )
        _wait(lambda: _count(root.done) >= n + 1, 600, f"{n} FARRO jobs")
        e2e = n / (time.perf_counter() - t)
    finally:
        h.stop()
    # processing only: n queued first, then the workers start
    root2 = Root.init(base / "farro-proc")
    (root2.path / "farro.toml").write_text(SETTINGS)
    job.create_many(root2, [parse_spec(s) for s in spec["jobs"]])
    t = time.perf_counter()
    h = Headless(root2, 2)
    try:
        warm = min(50, n // 2)
        _wait(lambda: _count(root2.done) >= warm, 600, f"{warm} FARRO jobs")
        first, at = _cpu_s(h.proc.pid), _count(root2.done)
        _wait(lambda: _count(root2.done) >= n, 600, f"{n} FARRO jobs")
        proc = n / (time.perf_counter() - t)
        last = _cpu_s(h.proc.pid)
        per_job = ((last[0] - first[0]) / (n - at), (last[1] - first[1]) / (n - at))
    finally:
        h.stop()
    bad = [
        r
        for r in (root.done, root2.done)
        for d in os.scandir(r)
        if json.loads((Path(d.path) / "job.json").read_text())["status"] != "succeeded"
    ]
    if bad:
        raise RuntimeError(f"{len(bad)} FARRO no-op jobs did not succeed")
    return e2e, proc, per_job


def farro_no_fsync(base: Path, n: int) -> float:
    """What-if: the same pre-queued run with fsync made a no-op (not a FARRO mode)."""
    root = Root.init(base / "farro-nofsync")
    (root.path / "farro.toml").write_text(SETTINGS)
    specs = [parse_spec({"prompt": f"no-op {i}", "agent": ["true"]}) for i in range(n)]
    job.create_many(root, specs)
    t = time.perf_counter()
    h = Headless(root, 2, no_fsync=True)
    try:
        _wait(lambda: _count(root.done) >= n, 600, f"{n} FARRO jobs (no fsync)")
        return n / (time.perf_counter() - t)
    finally:
        h.stop()


def fsync_profile(base: Path, n: int = 50) -> tuple[float, float]:
    """(fsync calls per no-op job from claim to done, median fsync cost in seconds)."""
    from farro_core.worker import Worker

    root = Root.init(base / "fsync-count")
    (root.path / "farro.toml").write_text(SETTINGS)
    root = Root.open(root.path)
    job.create_many(root, [parse_spec({"prompt": f"n{i}", "agent": ["true"]}) for i in range(n)])
    real = os.fsync
    costs: list[float] = []

    def counting(fd: FileDescriptorLike) -> None:
        t = time.perf_counter()
        real(fd)
        costs.append(time.perf_counter() - t)

    os.fsync = counting
    try:
        w = Worker(root, "fsync-count")
        done = 0
        while w.run_once() is not None:
            done += 1
    finally:
        os.fsync = real
    return len(costs) / max(done, 1), median(costs)


def nq_throughput(base: Path, n: int) -> float:
    dirs = [base / "nq0", base / "nq1"]
    for d in dirs:
        d.mkdir()
    t = time.perf_counter()
    for i in range(n):
        env = {**os.environ, "NQDIR": str(dirs[i % 2])}
        subprocess.run(["nq", "-q", "true"], check=True, env=env, stdout=subprocess.DEVNULL)
    for d in dirs:
        subprocess.run(
            ["nq", "-w"],
            check=True,
            env={**os.environ, "NQDIR": str(d)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    took = time.perf_counter() - t
    outputs = sum(len(list(d.glob(",*"))) for d in dirs)
    if outputs != n:
        raise RuntimeError(f"nq ran {outputs} of {n} jobs")
    return n / took


def tsp_throughput(base: Path, n: int) -> float:
    tmp = base / "tsp"
    tmp.mkdir()
    env = {
        **os.environ,
        "TS_SOCKET": str(tmp / "socket"),
        "TMPDIR": str(tmp),
        "TS_MAXFINISHED": str(n + 10),
        "TS_MAXCONN": str(n + 100),
    }
    subprocess.run(["tsp", "-S", "2"], check=True, env=env)
    try:
        t = time.perf_counter()
        ids = []
        for _ in range(n):
            out = subprocess.run(["tsp", "true"], check=True, env=env, capture_output=True)
            ids.append(out.stdout.decode().strip())
        for jid in ids[-2:]:
            subprocess.run(["tsp", "-w", jid], env=env, capture_output=True)

        def finished() -> int:
            out = subprocess.run(["tsp", "-l"], env=env, capture_output=True).stdout.decode()
            return sum(1 for line in out.splitlines()[1:] if " finished " in line)

        _wait(lambda: finished() >= n, 120, f"{n} task-spooler jobs", 0.001)
        took = time.perf_counter() - t
    finally:
        subprocess.run(["tsp", "-K"], env=env, capture_output=True)
    return n / took


def ensure_tools() -> dict[str, str]:
    """nq and tsp, installed with apt-get if absent (when we may); reasons for what is not."""
    missing = {
        tool: pkg
        for tool, pkg in (("nq", "nq"), ("tsp", "task-spooler"))
        if shutil.which(tool) is None
    }
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"bench_workers: installing {' '.join(missing.values())} with apt-get", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *missing.values()],
            capture_output=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    return {
        tool: f"{pkg} is not installed and could not be installed (apt-get install {pkg})"
        for tool, pkg in missing.items()
        if shutil.which(tool) is None
    }


def pickup_latency(base: Path, samples: int) -> list[float]:
    root = Root.init(base / "latency")
    (root.path / "farro.toml").write_text('workers = 1\nagent = ["sleep", "0.05"]\n')
    spec = parse_spec({"prompt": "latency probe", "agent": ["sleep", "0.05"]})
    h = Headless(root, 1)
    out = []
    try:
        h.wait_idle()
        for _ in range(samples):
            time.sleep(0.2)  # the worker is idle again, waiting for a hint or its rescan
            t = time.perf_counter()
            env = job.create(root, spec)
            target = root.active / env.id
            done = root.done / env.id
            deadline = t + 10
            while not os.path.lexists(target):
                if os.path.lexists(done):
                    raise RuntimeError("missed the in-progress moment")
                if time.perf_counter() > deadline:
                    raise TimeoutError("job not picked up within 10 s")
                time.sleep(0.0005)
            out.append(time.perf_counter() - t)
            _wait(lambda d=done: os.path.lexists(d), 30, "the probe job to finish")
    finally:
        h.stop()
    return out


def kill_latency(base: Path, samples: int) -> list[float]:
    """Seconds from ``operations.kill`` of a running job to its killed commit."""
    from farro_core import operations

    root = Root.init(base / "kill")
    (root.path / "farro.toml").write_text('workers = 1\nagent = ["sleep", "60"]\n')
    h = Headless(root, 1)
    out = []
    try:
        for i in range(samples):
            env = job.create(root, parse_spec({"prompt": f"kill me {i}", "timeout_s": 3600}))
            agent = root.active / env.id / "logs" / "attempt-1.agent.json"
            _wait(agent.exists, 30, "the agent to run")  # written once it is started
            t = time.perf_counter()
            killed = operations.kill(root, env.id, by="bench", wait_s=30)
            out.append(time.perf_counter() - t)
            if killed.status != "killed":
                raise RuntimeError(f"kill not done: {killed.status}")
    finally:
        h.stop()
    return out


def failover(base: Path, samples: int) -> list[float]:
    """Seconds from kill -9 of the manager's process until its standby holds the role."""
    from farro_core.manager import current_manager

    out = []
    for i in range(samples):
        root = Root.init(base / f"failover-{i}")
        a = Headless(root, 0, name=f"failover-{i}-a")
        b: Headless | None = None
        try:
            _wait(lambda a=a: "manager role taken" in a.log.read_text(), 60, "A the manager")
            b = Headless(root, 0, name=f"failover-{i}-b")
            _wait(lambda b=b: "standby:" in b.log.read_text(), 60, "B the standby")
            t = time.perf_counter()
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait()
            _wait(
                lambda b=b, r=root: (m := current_manager(r)) is not None and m.pid == b.proc.pid,
                60,
                "B the manager",
                0.001,
            )
            out.append(time.perf_counter() - t)
        finally:
            for h in (a, b):
                if h is not None:
                    h.stop()
    return out


def run(n: int = 1000, latency_samples: int = 100) -> list[Row]:
    from _util import farro_cli

    rows: list[Row] = []
    cli = farro_cli()
    if cli is None:
        return [Row("worker benchmarks", "run", "not run", None, "no farro CLI yet")]
    missing = ensure_tools()
    with scratch("workers") as base:
        e2e, proc, cpu = farro_throughput(base, n, cli)
        rows.append(
            Row(
                "CPU per no-op job, 2 workers (pre-queued)",
                "report",
                f"{ms(cpu[0])} FARRO's process + {ms(cpu[1])} its children (agent and sh)",
                None,
                "user+sys from /proc: steadier than jobs/s on a shared machine",
            )
        )
        per_job, cost = fsync_profile(base)
        rows.append(
            Row(
                "fsyncs per no-op job (claim..done)",
                "report",
                f"{per_job:.1f} x {ms(cost)} median = {ms(per_job * cost)} per job",
                None,
            )
        )
        rows.append(
            Row(
                f"what-if: fsync a no-op ({n} pre-queued)",
                "report",
                f"{farro_no_fsync(base, n):.0f} jobs/s",
                None,
                "not a FARRO mode: shows what full durability costs on this disk",
            )
        )
        rows.append(
            Row(
                f"FARRO {n} no-op jobs, 2 workers",
                "report",
                f"{e2e:.0f} jobs/s from submit ({proc:.0f} jobs/s pre-queued)",
                None,
            )
        )
        for tool, name, setup, goal, throughput in (
            ("nq", "nq", "2 queues", 1.0, nq_throughput),
            ("tsp", "task-spooler", "-S 2", 0.7, tsp_throughput),
        ):
            target = f">= {goal:g}x"
            if tool in missing:
                rows.append(Row(f"FARRO vs {name}", target, "skipped", None, missing[tool]))
                continue
            rate = throughput(base, n)
            rows.append(
                Row(
                    f"FARRO vs {name} ({setup})",
                    target,
                    f"{e2e / rate:.2f}x ({e2e:.0f} vs {rate:.0f} jobs/s)",
                    e2e / rate >= goal,
                )
            )
        lat = pickup_latency(base, latency_samples)
        p50, p99 = median(lat), pct(lat, 99)
        rows.append(Row(f"pickup latency p50 (n={len(lat)})", "<= 20 ms", ms(p50), p50 <= 0.020))
        rows.append(
            Row(
                f"pickup latency p99 (n={len(lat)})",
                "<= 100 ms",
                ms(p99),
                p99 <= 0.100,
                f"max {ms(max(lat))}",
            )
        )
        kills = kill_latency(base, 10)
        rows.append(
            Row(
                f"kill of a running job, request -> killed (n={len(kills)})",
                "<= 1 s",
                f"median {ms(median(kills))}, max {ms(max(kills))}",
                max(kills) <= 1.0,
            )
        )
        overs = failover(base, 3)
        rows.append(
            Row(
                f"manager failover after kill -9 (n={len(overs)})",
                "<= 5 s",
                f"median {median(overs):.2f} s, max {max(overs):.2f} s",
                max(overs) <= 5.0,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--latency", type=int, default=100)
    args = ap.parse_args(argv)
    rows = run(args.jobs, args.latency)
    return report(rows, "FARRO worker benchmarks")


if __name__ == "__main__":
    sys.exit(main())
