"""No job data is ever spliced into shell text.

Jobs whose prompt, title, labels, workspace directory name and id-derived paths
are full of shell metacharacters -- each payload would create a canary file if
a shell ever parsed it -- run through an argv agent (with placeholders), a
string agent (run by /bin/sh with the placeholders as "$FARRO_..." references),
and a rubric check (a shell command by design). Every attempt must succeed, the
agent must see the data verbatim, and no canary may exist afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.locks import CLAIMS
from farro_core.root import Root
from farro_core.transitions import Status
from farro_core.worker import Worker


def _payloads(canary: Path) -> list[str]:
    c = str(canary)
    return [
        f"$(touch {c}-dollar)",
        f"`touch {c}-backtick`",
        f"; touch {c}-semicolon",
        f"| touch {c}-pipe",
        f"&& touch {c}-and",
        f"\ntouch {c}-newline\n",
        f"'; touch {c}-squote; '",
        f'"; touch {c}-dquote; "',
        f"${{IFS}}touch${{IFS}}{c}-ifs",
        f"> {c}-redirect",
        f"$((1+1)) {{a,b}} * ? ~ ! # % \\ {c}",
    ]


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Root, Path, list[str]]:
    root = Root.init(tmp_path / "root")
    canary = tmp_path / "canary"
    return root, canary, _payloads(canary)


def _run_all(root: Root) -> list[job.Envelope]:  # type: ignore[name-defined]
    w = Worker(root, "hardening")
    done = []
    try:
        while (env := w.run_once()) is not None:
            done.append(env)
    finally:
        for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
            CLAIMS.release(key)
    return done


def _no_canary(tmp_path: Path) -> None:
    fired = sorted(str(p) for p in tmp_path.rglob("canary*"))
    assert fired == [], f"job data was run as shell text: {fired}"


def test_argv_string_and_rubric_never_run_job_data(hostile: tuple[Root, Path, list[str]]) -> None:
    root, canary, payloads = hostile
    tmp = canary.parent
    echo = tmp / "seen"
    echo.mkdir()
    # an argv agent: the placeholders fill whole items, no shell at all
    argv_agent = [
        sys.executable,
        "-c",
        "import os, sys, shutil; "
        "shutil.copy(sys.argv[1], os.path.join(sys.argv[3], os.environ['FARRO_JOB_ID'] + '.argv'));"
        "sys.exit(0 if os.path.isdir(sys.argv[2]) else 3)",
        "{prompt_file}",
        "{workspace}",
        str(echo),
    ]
    # a string agent run by /bin/sh: job data only as "$FARRO_..." variables
    string_agent = (
        'cat "$FARRO_PROMPT_FILE" > "' + str(echo) + '/$FARRO_JOB_ID.sh" && '
        "test -d {workspace} && test -f {prompt_file} && test -d {job_dir}"
    )
    check = 'test -f "$FARRO_PROMPT_FILE" && test -n "$FARRO_JOB_ID"'
    specs = []
    for i, p in enumerate(payloads):
        ws = tmp / f"ws {i} $(touch canary-ws) ;`touch canary-ws2`"
        ws.mkdir()
        for agent in (argv_agent, string_agent):
            specs.append(
                {
                    "prompt": f"payload {i}: {p}",
                    "title": p.strip()[:200] or "x",
                    "labels": {"payload": p, p.strip()[:100] or "k": "v"},
                    "agent": agent,
                    "workspace": str(ws),
                    "rubric": [{"id": "safe", "check": check}],
                    "max_attempts": 1,
                }
            )
    envs = job.create_many(root, [parse_spec(s) for s in specs])
    done = _run_all(root)
    assert len(done) == len(envs)
    for env in done:
        assert env.status is Status.SUCCEEDED, (env.lifecycle.reason, env.lifecycle.result)
        assert [v.passed for v in env.lifecycle.result.rubric] == [True]  # type: ignore[union-attr]
    by_id = {e.id: e for e in envs}
    for f in echo.iterdir():
        job_id = f.name.split(".")[0]
        assert f.read_text() == by_id[job_id].prompt.prompt  # verbatim, nothing expanded
    assert len(list(echo.iterdir())) == len(envs)
    _no_canary(tmp)


def test_cli_submit_of_hostile_fields_runs_nothing(tmp_path: Path) -> None:
    farro = Path(sys.executable).parent / "farro"
    root = Root.init(tmp_path / "root")
    canary = tmp_path / "canary"
    for p in _payloads(canary):
        proc = subprocess.run(
            [
                str(farro),
                "submit",
                "--root",
                str(root.path),
                "--prompt",
                p or "x",
                "--title",
                p.strip()[:200] or "x",
                "--label",
                f"k={p}",
                "--agent",
                "true",
            ],
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode in (0, 2), proc.stderr.decode()
    listing = subprocess.run(
        [str(farro), "ls", "--root", str(root.path), "--json"], capture_output=True, timeout=60
    )
    assert listing.returncode == 0
    json.loads(listing.stdout)
    for env in _run_all(root):
        assert env.status is Status.SUCCEEDED
    for cmd in ("ls", "stats"):
        subprocess.run([str(farro), cmd, "--root", str(root.path)], capture_output=True)
    _no_canary(tmp_path)
    assert not os.path.exists(canary)
