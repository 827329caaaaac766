"""The whole-system torture run: real ``farro-tui --workers-only`` processes on one root,
killed (``kill -9``) or hung (``SIGSTOP``/``SIGCONT``) at random, then checked on disk.

    python -m tests.torture.harness [--jobs 1000] [--procs 4] [--duration 60] [--mode kill|stop]

1. ``farro submit`` of N jobs whose agent (``agent.py``) sleeps 0-200 ms, leaves a
   marker and exits 0 or 1 at random; prompt.json of each is read back at once.
2. ``--procs`` headless processes (2 workers each; one of them holds the manager
   role, the others stand by). Every 0.2-2 s the driver picks the manager's
   process or a random other one and sends SIGKILL (then starts a new process
   in its place) or SIGSTOP (then SIGCONT after 0.5-4 s, longer than
   ``stale_after_s`` so its jobs go stale by heartbeat while it is hung). Like an
   operator, it also requeues stale jobs while this goes on.
3. After ``--duration`` it stops disturbing, keeps requeueing what is stale, and
   waits until every job is terminal; then SIGTERM (each must exit 0).
4. Checks, on disk: every job exactly once across the queue dirs and none in
   quarantine (lost 0); every job.json parses and sits in its status's dir, every
   prompt.json byte-identical to what was read at submission (torn 0); no
   (job, attempt) claimed twice or with two terminal commits in the audit log
   (double 0); every job terminal; audit revisions contiguous per job, counting
   fsck's ``recovered`` lines; every recorded exit code backed by the agent's marker.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

if str(Path(__file__).parents[1]) not in sys.path:  # python -m tests.torture.harness
    sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, where support.py is
from support import wait_until

from farro_core import audit, fsck, operations
from farro_core.envelope import Lifecycle, load_lifecycle
from farro_core.errors import FarroError
from farro_core.manager import current_manager
from farro_core.root import QUEUES, Root
from farro_core.transitions import QUEUE_DIR, TERMINAL, Status

BIN = Path(sys.executable).parent
AGENT = Path(__file__).with_name("agent.py")


@dataclass
class Report:
    jobs: int = 0
    mode: str = "kill"
    disturbances: int = 0
    manager_hits: int = 0
    restarts: int = 0
    stale_recoveries: int = 0
    fenced: int = 0
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    lost: int = 0
    torn: int = 0
    misplaced: int = 0
    double: int = 0
    not_terminal: int = 0
    audit_gaps: int = 0
    unbacked: int = 0
    fsck_repairs: int = 0
    fsck_kinds: str = ""
    unclean_exits: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return not self.problems

    def table(self) -> str:
        rows = [
            ("mode", self.mode),
            ("jobs", self.jobs),
            ("kills" if self.mode == "kill" else "stops", self.disturbances),
            ("  of the manager's process", self.manager_hits),
            ("process restarts", self.restarts),
            ("stale recoveries", self.stale_recoveries),
            ("attempts fenced (commit refused)", self.fenced),
            ("attempts run", self.attempts),
            ("succeeded / failed", f"{self.succeeded} / {self.failed}"),
            ("lost", self.lost),
            ("torn", self.torn),
            ("misplaced (status vs dir)", self.misplaced),
            ("double", self.double),
            ("not terminal", self.not_terminal),
            ("audit gaps", self.audit_gaps),
            ("results without a marker", self.unbacked),
            ("fsck repairs at the end", f"{self.fsck_repairs} {self.fsck_kinds}".strip()),
            ("unclean exits on SIGTERM", self.unclean_exits),
            ("wall time", f"{self.seconds:.0f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"FARRO torture ({self.mode})", "-" * (width + 12)]
        lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
        lines += [f"PROBLEM: {p}" for p in self.problems[:20]]
        return "\n".join(lines)


class Fleet:
    """The headless processes on one root."""

    def __init__(self, root: Root, procs: int, workers: int, logs: Path) -> None:
        self.root = root
        self.workers = workers
        self.logs = logs
        self.n = 0
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
        self.procs = [self.spawn() for _ in range(procs)]

    def spawn(self) -> subprocess.Popen[bytes]:
        self.n += 1
        cmd = [str(BIN / "farro-tui"), "--workers-only", "--root", str(self.root.path)]
        cmd += ["--workers", str(self.workers)]
        log = open(self.logs / f"proc-{self.n}.log", "wb")  # noqa: SIM115
        try:
            return subprocess.Popen(cmd, stdout=log, stderr=log, env=self.env)
        finally:
            log.close()

    def manager_pid(self) -> int | None:
        try:
            holder = current_manager(self.root)
        except OSError:
            return None
        return holder.pid if holder is not None else None

    def stop_all(self, timeout: float = 60) -> int:
        """SIGTERM everyone; the number that did not exit 0."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        unclean = 0
        for p in self.procs:
            try:
                code = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                code = -9
            if code != 0:
                unclean += 1
        return unclean


def submit(root: Root, n: int, work: Path) -> dict[str, bytes]:
    """Submit n jobs with `farro submit`; return id -> prompt.json bytes read at once."""
    specs = [
        {"prompt": f"torture job {i}: sleep, mark, exit at random", "labels": {"n": str(i)}}
        for i in range(n)
    ]
    spec_file = work / "jobs.json"
    spec_file.write_text(json.dumps({"jobs": specs}))
    out = subprocess.run(
        [str(BIN / "farro"), "submit", "--root", str(root.path), str(spec_file)],
        capture_output=True,
        check=True,
        timeout=600,
    )
    ids = out.stdout.decode().split()
    assert len(ids) == n == len(set(ids)), "farro submit did not print one new id per job"
    return {i: (root.incoming / i / "prompt.json").read_bytes() for i in ids}


def _requeue_stale(root: Root) -> int:
    n = 0
    for job_id in root.ids("active"):
        try:
            lc = load_lifecycle((root.active / job_id / "job.json").read_bytes(), job_id)
        except (OSError, FarroError):
            continue
        if lc.status is Status.STALE:
            try:
                operations.requeue(root, job_id, by="torture-driver")
                n += 1
            except FarroError:
                pass  # moved on meanwhile
    return n


def _all_terminal(root: Root, n: int) -> bool:
    return not root.ids("incoming") and not root.ids("active") and len(root.ids("done")) >= n


def run(
    path: Path,
    *,
    jobs: int = 1000,
    procs: int = 4,
    workers: int = 2,
    duration: float = 60.0,
    mode: str = "kill",
    settle_timeout: float = 300.0,
    seed: int | None = None,
) -> Report:
    rng = random.Random(seed)
    t_start = time.monotonic()
    report = Report(jobs=jobs, mode=mode)
    work = path / "work"
    markers = path / "markers"
    logs = path / "logs"
    for d in (work, markers, logs):
        d.mkdir(parents=True)
    subprocess.run(
        [str(BIN / "farro"), "init", "--root", str(path / "root")], check=True, capture_output=True
    )
    root = Root.open(path / "root")
    (root.path / "farro.toml").write_text(
        f"agent = {json.dumps([sys.executable, str(AGENT), str(markers)])}\n"
        "heartbeat_s = 0.25\n"
        "stale_after_s = 1.5\n"
        "watchdog_interval_s = 0.25\n"
        "retry_backoff_s = 0.05\n"
        "retry_backoff_max_s = 0.2\n"
        "rescan_s = 0.5\n"
        "shutdown_grace_s = 5\n"
        "kill_grace_s = 1\n"
        "max_attempts = 3\n"
    )
    prompts = submit(root, jobs, work)
    fleet = Fleet(root, procs, workers, logs)
    stopped: dict[int, float] = {}  # index -> when to SIGCONT
    try:
        end = time.monotonic() + duration
        next_hit = time.monotonic() + rng.uniform(0.2, 2.0)
        next_requeue = time.monotonic() + 1.0
        while time.monotonic() < end:
            now = time.monotonic()
            for i, when in list(stopped.items()):
                if now >= when:
                    fleet.procs[i].send_signal(signal.SIGCONT)
                    del stopped[i]
            for i, p in enumerate(fleet.procs):  # a process that died on its own is a bug
                if p.poll() is not None and mode == "stop":
                    report.problems.append(f"process {p.pid} exited {p.returncode} by itself")
                    fleet.procs[i] = fleet.spawn()
                    report.restarts += 1
            if now >= next_hit:
                next_hit = now + rng.uniform(0.2, 2.0)
                mgr = fleet.manager_pid()
                candidates = [i for i in range(len(fleet.procs)) if i not in stopped]
                if candidates:
                    by_pid = {fleet.procs[i].pid: i for i in candidates}
                    if mgr in by_pid and rng.random() < 0.35:
                        i = by_pid[mgr]
                    else:
                        i = rng.choice(candidates)
                    victim = fleet.procs[i]
                    report.disturbances += 1
                    report.manager_hits += victim.pid == mgr
                    if mode == "kill":
                        victim.send_signal(signal.SIGKILL)
                        victim.wait()
                        fleet.procs[i] = fleet.spawn()
                        report.restarts += 1
                    else:
                        victim.send_signal(signal.SIGSTOP)
                        stopped[i] = now + rng.uniform(0.5, 4.0)
            if now >= next_requeue:
                next_requeue = now + 1.0
                _requeue_stale(root)
            time.sleep(0.02)
        for i in list(stopped):
            fleet.procs[i].send_signal(signal.SIGCONT)
        stopped.clear()
        # settle: no more disturbance; requeue what is stale until everything is terminal

        def settled() -> bool:
            if _all_terminal(root, jobs):
                return True
            for i, p in enumerate(fleet.procs):
                if p.poll() is not None:
                    report.problems.append(f"process {p.pid} exited {p.returncode} while settling")
                    fleet.procs[i] = fleet.spawn()
            _requeue_stale(root)
            return False

        try:
            wait_until(settled, "every job terminal", settle_timeout, poll_s=0.25)
        except AssertionError:  # a finding of the report, checked on disk with the rest
            report.problems.append(f"not all terminal after {settle_timeout:.0f}s of settling")
    finally:
        for p in fleet.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
        report.unclean_exits = fleet.stop_all()
    if report.unclean_exits:
        report.problems.append(f"{report.unclean_exits} process(es) did not exit 0 on SIGTERM")
    check(root, prompts, markers, report)
    for log in logs.glob("*.log"):
        report.fenced += log.read_text(errors="replace").count("dropped, nothing recorded")
    report.seconds = time.monotonic() - t_start
    return report


def check(root: Root, prompts: dict[str, bytes], markers: Path, report: Report) -> None:
    """Everything the brief promises, read from disk (before and after fsck)."""
    where: dict[str, list[str]] = defaultdict(list)
    for q in QUEUES:
        for name in os.listdir(root.path / q):
            where[name].append(q)
    quarantined = [n for n in os.listdir(root.quarantine) if not n.endswith(".reason.txt")]
    if quarantined:
        report.problems.append(f"quarantined: {quarantined[:5]}")
    strays = set(where) - set(prompts)
    if strays:
        report.problems.append(f"entries that are no submitted job: {sorted(strays)[:5]}")
    finals: dict[str, Lifecycle] = {}
    for job_id, body in prompts.items():
        qs = where.get(job_id, [])
        if len(qs) != 1:
            report.lost += not qs
            report.double += len(qs) > 1
            report.problems.append(f"{job_id} is in {qs or 'no queue'}")
            continue
        d = root.path / qs[0] / job_id
        try:
            lc = load_lifecycle((d / "job.json").read_bytes(), f"{job_id}/job.json")
        except (OSError, FarroError) as exc:
            report.torn += 1
            report.problems.append(f"{job_id}/job.json: {exc}")
            continue
        if lc.id != job_id:
            report.torn += 1
            report.problems.append(f"{job_id}/job.json names {lc.id}")
        if QUEUE_DIR[lc.status] != qs[0]:
            report.misplaced += 1
            report.problems.append(f"{job_id}: {lc.status} in {qs[0]}/ (id {lc.id})")
        if (d / "prompt.json").read_bytes() != body:
            report.torn += 1
            report.problems.append(f"{job_id}/prompt.json changed since submission")
        if lc.status not in TERMINAL:
            report.not_terminal += 1
            report.problems.append(f"{job_id} ended {lc.status}")
        report.succeeded += lc.status is Status.SUCCEEDED
        report.failed += lc.status is Status.FAILED
        finals[job_id] = lc
        res = lc.result
        marker = None if res is None else markers / f"{job_id}.{res.attempt}.{res.exit_code}"
        if res is not None and res.exit_code in (0, 1) and not marker.exists():  # type: ignore[union-attr]
            report.unbacked += 1
            report.problems.append(
                f"{job_id}: attempt {res.attempt} recorded exit {res.exit_code}, no marker"
            )
    # the audit log
    report.attempts = len(os.listdir(markers))
    claims: Counter[tuple[str, int]] = Counter()
    terminal: Counter[tuple[str, int]] = Counter()
    revisions: dict[str, list[int]] = defaultdict(list)
    for rec in audit.read(root):
        jid, att, rev = rec.get("job"), rec.get("attempt"), rec.get("revision")
        if not isinstance(jid, str) or jid not in prompts:
            continue
        revisions[jid].append(int(rev))  # type: ignore[arg-type]
        if rec.get("event") == "recovered":
            continue
        to, frm = rec.get("to"), rec.get("from")
        if frm == "queued" and to == "in-progress":
            claims[(jid, int(att))] += 1  # type: ignore[arg-type]
        if to in {s.value for s in TERMINAL}:
            terminal[(jid, int(att))] += 1  # type: ignore[arg-type]
        if to == "stale":
            report.stale_recoveries += 1
    for key in claims + terminal:
        if claims[key] > 1 or terminal[key] > 1:
            report.double += 1
            report.problems.append(f"{key}: claimed {claims[key]}x, terminal {terminal[key]}x")
    # fsck at rest: may add recovered lines for revisions a kill kept out of the log
    findings = fsck.fsck(root, repair=True)
    report.fsck_repairs = len(findings)
    if findings:
        kinds = Counter(f.kind for f in findings)
        report.fsck_kinds = "(" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")"
    # what kill -9 legitimately leaves: a missing audit line, a temp file of a cut write
    bad = [f for f in findings if f.kind not in ("unaudited", "leftover")]
    if bad:
        report.problems.append(f"fsck found {[(f.kind, f.path, f.detail) for f in bad][:5]}")
    for rec in audit.read(root):
        if rec.get("event") == "recovered" and rec.get("job") in prompts:
            revisions[rec["job"]].append(int(rec["revision"]))
    for job_id, lc in finals.items():
        have = set(revisions.get(job_id, []))
        want = set(range(1, lc.revision + 1))
        if not want <= have:
            report.audit_gaps += 1
            report.problems.append(f"{job_id}: revisions {sorted(want - have)} not audited")


def main(argv: list[str] | None = None) -> int:
    import tempfile

    ap = argparse.ArgumentParser(description="FARRO whole-system torture run")
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--mode", choices=("kill", "stop"), default="kill")
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args(argv)
    base = args.dir or Path(tempfile.mkdtemp(prefix="farro-torture-"))
    report = run(
        base / args.mode,
        jobs=args.jobs,
        procs=args.procs,
        workers=args.workers,
        duration=args.duration,
        mode=args.mode,
    )
    print(report.table())
    print(f"(root and logs kept in {base})")
    return 0 if report.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
