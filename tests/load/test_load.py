"""Load: 10 concurrent submitters, CLI and inbox mixed, while 4 workers run.

Every job must be accepted exactly once: no duplicate ids, no (submitter, seq)
twice, nothing lost, every inbox file accepted, and every job runs to the end.
``FARRO_TORTURE=full`` (make torture) runs 10 x 500 jobs; `make test` 10 x 60.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from support import wait_until

from farro_core.root import QUEUES, Root

BIN = Path(sys.executable).parent
FULL = os.environ.get("FARRO_TORTURE") == "full"
SUBMITTERS = 10
PER = int(os.environ.get("FARRO_LOAD_JOBS") or (500 if FULL else 60))
BATCH = 25 if FULL else 10

pytestmark = [
    pytest.mark.timeout(1200 if FULL else 300),
    pytest.mark.skipif(not (BIN / "farro-tui").exists(), reason="farro-tui is not installed"),
]


def _jobs(root: Root) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for q in QUEUES:
        for name in os.listdir(root.path / q):
            out.setdefault(name, []).append(q)
    return out


def test_concurrent_submitters_cli_and_inbox(tmp_path: Path) -> None:
    subprocess.run([str(BIN / "farro"), "init", "--root", str(tmp_path / "root")], check=True)
    root = Root.open(tmp_path / "root")
    (root.path / "farro.toml").write_text('agent = ["true"]\nrescan_s = 0.5\n')
    staging = tmp_path / "staging"
    staging.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    logs = [open(tmp_path / f"headless-{i}.log", "wb") for i in range(2)]  # noqa: SIM115
    fleet = [
        subprocess.Popen(
            [str(BIN / "farro-tui"), "--workers-only", "--root", str(root.path), "--workers", "2"],
            stdout=log,
            stderr=log,
            env=env,
        )
        for log in logs
    ]
    total = SUBMITTERS * PER
    t0 = time.monotonic()
    try:
        subs = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(Path(__file__).with_name("submitter.py")),
                    str(root.path),
                    f"s{i}",
                    str(PER),
                    str(BATCH),
                    str(staging),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
            )
            for i in range(SUBMITTERS)
        ]
        outputs = [p.communicate(timeout=600)[0].decode() for p in subs]
        assert [p.returncode for p in subs] == [0] * SUBMITTERS, outputs
        via_cli = sum(int(x.split()[1]) for o in outputs for x in o.splitlines() if x[:3] == "cli")
        via_inbox = total - via_cli
        assert via_cli > 0 and via_inbox > 0

        def left() -> str | None:
            """What is not done yet, or None once every job is done and the inbox empty."""
            jobs = _jobs(root)
            busy = [j for j, qs in jobs.items() if qs != ["done"]]
            inbox_left = [n for n in os.listdir(root.inbox) if n.endswith(".json")]
            if len(jobs) >= total and not busy and not inbox_left:
                return None
            return f"{len(jobs)}/{total} jobs, {len(busy)} not done, inbox {inbox_left[:3]}"

        def all_done() -> bool:
            if left() is None:
                return True
            for p in fleet:
                assert p.poll() is None, "a headless process died under load"
            return False

        wait_until(
            all_done,
            "every job done and the inbox empty",
            900 if FULL else 240,
            diagnose=left,
            poll_s=0.25,
        )
        took = time.monotonic() - t0
    finally:
        for p in fleet:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(60) for p in fleet]
        for log in logs:
            log.close()
    assert codes == [0, 0]

    jobs = _jobs(root)
    assert all(qs == ["done"] for qs in jobs.values())
    seen: Counter[tuple[str, str]] = Counter()
    for job_id in jobs:
        prompt = json.loads((root.done / job_id / "prompt.json").read_text())
        lc = json.loads((root.done / job_id / "job.json").read_text())
        assert lc["status"] == "succeeded", (job_id, lc["reason"])
        seen[(prompt["labels"]["sub"], prompt["labels"]["seq"])] += 1
    want = {(f"s{i}", str(k)) for i in range(SUBMITTERS) for k in range(PER)}
    assert set(seen) == want, f"lost: {sorted(want - set(seen))[:5]}"
    dup = {k: n for k, n in seen.items() if n > 1}
    assert dup == {}, f"accepted more than once: {list(dup.items())[:5]}"
    assert len(jobs) == total
    accepted = [n for n in os.listdir(root.accepted) if n.endswith(".json")]
    assert len(accepted) == sum(1 for o in outputs for x in o.splitlines() if x[:5] == "inbox")
    assert os.listdir(root.rejected) == []
    assert [n for n in os.listdir(root.quarantine)] == []
    print(
        f"\nload: {total} jobs ({via_cli} by CLI, {via_inbox} by inbox) from {SUBMITTERS} "
        f"submitters with 4 workers: all accepted once, all done, in {took:.0f} s"
    )
