"""`farro report` on a real batch: submitted from a file (batch=<stem>), run by a worker."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from farro_core.root import Root

from .helpers import make_worker, submit

FARRO = str(Path(sys.executable).with_name("farro"))


def farro(root: Root, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FARRO, *args, "--root", str(root.path)], capture_output=True, text=True, timeout=60
    )


def agent(cost: float, tokens: int, code: int = 0) -> str:
    report = json.dumps({"cost_usd": cost, "tokens_in": tokens, "tokens_out": tokens // 2})
    return f"echo '{report}' > \"$FARRO_RESULT_FILE\"; exit {code}"


def make_batch(root: Root, tmp_path: Path) -> dict[str, str]:
    jobs: list[dict[str, Any]] = [
        {"title": "ok one", "prompt": "x", "agent": agent(0.10, 1000)},
        {"title": "ok two", "prompt": "x", "agent": agent(0.30, 3000)},
        {
            "title": "check fails",
            "prompt": "x",
            "agent": agent(0.20, 2000),
            "rubric": [
                {"id": "tests", "check": "echo 2 failed; exit 1"},
                {"id": "lint", "check": "true"},
            ],
        },
        {
            "title": "check fails too",
            "prompt": "x",
            "agent": agent(0.05, 500),
            "rubric": [{"id": "tests", "check": "exit 1"}],
        },
        {"title": "exits 3", "prompt": "x", "agent": agent(0.01, 10, code=3)},
        {"title": "own batch", "prompt": "x", "labels": {"batch": "other"}},
    ]
    for j in jobs:
        j["max_attempts"] = 1
    spec = tmp_path / "nightly.json"
    spec.write_text(json.dumps({"jobs": jobs}))
    r = farro(root, "submit", str(spec))
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    w = make_worker(root)
    for _ in range(5):  # the "other" batch's job is left queued after them (claim order)
        assert w.run_once() is not None
    return dict(zip([j["title"] for j in jobs], ids, strict=True))


def test_report_of_a_batch_text_json_and_csv(wroot: Root, tmp_path: Path) -> None:
    ids = make_batch(wroot, tmp_path)
    submit(wroot, "not in the batch")

    data = json.loads(farro(wroot, "report", "--label", "batch=nightly", "--json").stdout)
    s = data["summary"]
    assert s["jobs"] == 5 and s["by_status"] == {"succeeded": 2, "failed": 3}
    assert s["finished"] == 5 and s["passed"] == 2 and s["pass_rate"] == 0.4
    assert round(s["cost_usd"], 6) == 0.66 and round(s["mean_cost_usd"], 6) == 0.132
    assert s["tokens"] == 1500 + 4500 + 3000 + 750 + 15
    assert s["costliest"][0] == {"id": ids["ok two"], "cost_usd": 0.3}
    assert len(s["slowest"]) == 5 and s["wall_s"] > 0
    assert s["failures"] == {
        "check tests failed": sorted([ids["check fails"], ids["check fails too"]]),
        "agent exited 3": [ids["exits 3"]],
    }
    by_id = {j["id"]: j for j in data["jobs"]}
    assert set(by_id) == {ids[t] for t in ids if t != "own batch"}
    assert by_id[ids["check fails"]]["checks"] == {"tests": False, "lint": True}
    assert by_id[ids["ok one"]]["verdict"] == "ungraded" and by_id[ids["ok one"]]["attempts"] == 1

    text = farro(wroot, "report", "--label", "batch=nightly").stdout
    for needle in (
        "5 jobs (label batch=nightly)",
        "status     3 failed, 2 succeeded",
        "pass rate  40% (2 of 5 finished)",
        "cost       $0.6600, mean $0.1320",
        "failures:",
        "2  check tests failed: ",
        "1  agent exited 3: ",
        "✗tests ✓lint",
    ):
        assert needle in text, (needle, text)

    rows = list(csv.reader(io.StringIO(farro(wroot, "report", "--label", "batch=nightly",
                                             "--csv").stdout)))  # fmt: skip
    assert rows[0][:3] == ["id", "title", "status"] and len(rows) == 6
    row = next(r for r in rows if r[0] == ids["check fails"])
    assert row[4] == "tests=fail;lint=pass" and row[9] == "check tests failed"

    other = json.loads(farro(wroot, "report", "--label", "batch=other", "--json").stdout)
    assert [j["id"] for j in other["jobs"]] == [ids["own batch"]]
    assert other["summary"]["pass_rate"] is None  # nothing finished
    every = json.loads(farro(wroot, "report", "--since", "1h", "--json").stdout)
    assert every["summary"]["jobs"] == 7


def test_report_bad_input(wroot: Root) -> None:
    for args in (("--label", "nolabel"), ("--since", "yesterday"), ("--json", "--csv")):
        r = farro(wroot, "report", *args)
        assert r.returncode == 2 and r.stderr.startswith("farro: ") and r.stderr.count("\n") == 1
    r = farro(wroot, "report", "--label", "batch=none")
    assert r.returncode == 0 and r.stdout == "0 jobs (label batch=none)\n"


def test_a_job_whose_agent_could_not_run_is_one_group_its_ids_after_the_colon(
    wroot: Root,
) -> None:
    ids = [submit(wroot, "x", agent=["no-such-agent-here"], labels={"batch": "b"}).id]
    ids.append(submit(wroot, "y", agent=["no-such-agent-either"], labels={"batch": "b"}).id)
    worker = make_worker(wroot)
    while worker.run_once() is not None:
        pass
    text = farro(wroot, "report", "--label", "batch=b").stdout
    group = f"     2  could not run (agent command not found): {' '.join(sorted(ids))}\n"
    assert group in text, text
