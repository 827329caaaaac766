"""The `farro` CLI end to end: in-process through main() for speed, plus real processes.

In-process runs go through :func:`farro_core.cli.main` (not typer's runner), so
the exit-code mapping and the one-line errors are what is tested.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support import wait_until
from typer.testing import CliRunner

from farro_core import job
from farro_core.cli import main
from farro_core.clock import utcnow
from farro_core.envelope import Envelope, Result, RubricVerdict, parse_spec
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
from farro_core.transitions import Actor, Status

FARRO = str(Path(sys.executable).with_name("farro"))


@dataclass
class Ran:
    code: int
    out: str
    err: str


def cli(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Ran:
    with CliRunner().isolation(input=input, env=env) as (out, err, _):
        code = main(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


def one_error(r: Ran) -> str:
    """The run failed with exactly one clean line on stderr; return it."""
    assert r.err.endswith("\n") and r.err.count("\n") == 1, repr(r.err)
    assert r.err.startswith("farro: "), r.err
    assert "Traceback" not in r.err
    return r.err


def submit(root: Root, prompt: str = "do the thing", **fields: Any) -> str:
    return job.create(root, parse_spec({"prompt": prompt, **fields})).id


def claimed(root: Root, name: str = "w1") -> Envelope:
    env = job.claim(root, WorkerIdentity.current(name))
    assert env is not None
    return env


def status_of(root: Root, job_id: str) -> Status:
    return job.load(root, job_id).status


# ---------------------------------------------------------------- init


def test_init_creates_a_private_root_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "new" / "root"
    r = cli("init", "--root", str(path))
    assert r.code == 0, r.err
    assert "created" in r.out
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert (path / "incoming").is_dir() and (path / "inbox" / "rejected").is_dir()
    assert f'next: farro submit --root {path} -p "TASK", then run `farro-tui --root' in r.out
    again = cli("init", "--root", str(path))
    assert again.code == 0 and again.out == f"FARRO root ready at {path}\n"


def test_root_comes_from_farro_root_env(tmp_path: Path) -> None:
    path = tmp_path / "envroot"
    assert cli("init", env={"FARRO_ROOT": str(path)}).code == 0
    r = cli("submit", "-p", "via env", env={"FARRO_ROOT": str(path)})
    assert r.code == 0, r.err
    assert os.listdir(path / "incoming") == [r.out.strip()]


# ---------------------------------------------------------------- submit


def test_submit_prompt_with_every_flag(
    root: Root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(tmp_path)
    r = cli(
        "submit", "--root", str(root.path), "--prompt", "Fix it\nin detail", "--title", "T",
        "--rubric-check", "pytest -q", "--rubric-check", "ruff check .",
        "--allow", "src/**", "--allow", "tests/*.py", "--agent", "my-agent {prompt_file}",
        "--workspace", "ws", "--timeout", "90.5", "--max-attempts", "5", "--priority", "7",
        "--label", "team=core", "--label", "ticket=A=1",
    )  # fmt: skip
    assert r.code == 0, r.err
    (job_id,) = r.out.split()
    p = job.load(root, job_id).prompt
    assert (p.prompt, p.title, p.agent) == ("Fix it\nin detail", "T", "my-agent {prompt_file}")
    assert [(i.id, i.check) for i in p.rubric] == [("r1", "pytest -q"), ("r2", "ruff check .")]
    assert p.allowed_paths == ["src/**", "tests/*.py"]
    assert p.workspace == str(ws)  # made absolute: the worker runs in another directory
    assert (p.timeout_s, p.max_attempts, p.priority) == (90.5, 5, 7)
    assert p.labels == {"team": "core", "ticket": "A=1"}


def test_submit_defaults_come_from_settings(root: Root) -> None:
    (root.path / "farro.toml").write_text("timeout_s = 42\nmax_attempts = 2\n")
    r = cli("submit", "--root", str(root.path), "-p", "x")
    p = job.load(root, r.out.strip()).prompt
    assert (p.timeout_s, p.max_attempts, p.title, p.allowed_paths) == (42, 2, "x", ["**"])


def test_submit_files_toml_json_and_stdin_in_one_go(root: Root, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"jobs": [{"prompt": "j1"}, {"prompt": "j2"}]}))
    (tmp_path / "b.toml").write_text('[[jobs]]\nprompt = "t1"\n')
    r = cli(
        "submit", "--root", str(root.path), str(tmp_path / "a.json"), str(tmp_path / "b.toml"),
        "-", "-p", "flag job", input=json.dumps({"prompt": "s1"}),
    )  # fmt: skip
    assert r.code == 0, r.err
    ids = r.out.split()
    assert [job.load(root, i).prompt.prompt for i in ids] == ["j1", "j2", "t1", "s1", "flag job"]
    assert sorted(root.ids("incoming")) == sorted(ids)


def test_submit_stdin_toml_by_format_and_prompt_from_stdin(root: Root) -> None:
    r = cli("submit", "--root", str(root.path), "--format", "toml", "-", input='prompt = "t"\n')
    assert r.code == 0, r.err
    r2 = cli("submit", "--root", str(root.path), "-p", "-", input="long prompt\nfrom a pipe\n")
    assert r2.code == 0, r2.err
    assert job.load(root, r2.out.strip()).prompt.prompt == "long prompt\nfrom a pipe\n"


def test_submit_is_all_or_nothing_across_files(root: Root, tmp_path: Path) -> None:
    (tmp_path / "good.json").write_text(json.dumps({"jobs": [{"prompt": "a"}] * 3}))
    (tmp_path / "bad.json").write_text(json.dumps({"prompt": "b", "timeout_s": 0}))
    r = cli("submit", "--root", str(root.path), str(tmp_path / "good.json"), str(tmp_path / "bad"))
    assert r.code == 2 and "cannot read spec file" in one_error(r)
    r = cli(
        "submit", "--root", str(root.path), str(tmp_path / "good.json"),
        str(tmp_path / "bad.json"),
    )  # fmt: skip
    assert r.code == 2
    assert "bad.json: timeout_s" in one_error(r)
    assert r.out == ""
    assert root.ids("incoming") == [] and os.listdir(root.tmp) == []


def test_submit_ids_named_twice_across_files_are_refused(root: Root, tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(json.dumps({"prompt": "x", "id": "job-0000001"}))
    r = cli("submit", "--root", str(root.path), str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert r.code == 2 and "given twice" in one_error(r)
    assert root.ids("incoming") == []


def test_submit_an_existing_id_is_refused(root: Root, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"prompt": "x", "id": "job-0000001"}))
    assert cli("submit", "--root", str(root.path), str(tmp_path / "a.json")).code == 0
    r = cli("submit", "--root", str(root.path), str(tmp_path / "a.json"))
    assert r.code == 1 and "exists already" in one_error(r)
    assert os.listdir(root.tmp) == []


def test_backpressure_queue_full(root: Root) -> None:
    (root.path / "farro.toml").write_text("max_queued = 2\n")
    assert cli("submit", "--root", str(root.path), "-p", "one").code == 0
    before = sorted(root.ids("incoming"))
    r = cli(
        "submit", "--root", str(root.path), "-", input=json.dumps({"jobs": [{"prompt": "a"}] * 2})
    )
    assert r.code == 1
    assert one_error(r).startswith("farro: queue full: 1 queued")
    assert sorted(root.ids("incoming")) == before and os.listdir(root.tmp) == []
    assert cli("submit", "--root", str(root.path), "-p", "fits").code == 0
    r = cli("submit", "--root", str(root.path), "-p", "over")
    assert r.code == 1 and "queue full: 2 queued" in one_error(r)
    assert len(root.ids("incoming")) == 2


# ---------------------------------------------------------------- ls


def test_ls_table_is_aligned_and_sanitised(root: Root) -> None:
    a = submit(root, "first", priority=10)
    b = submit(root, "x", title="evil \x1b[2J title " + "long " * 30)
    r = cli("ls", "--root", str(root.path), env={"COLUMNS": "100"})
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "ATTEMPT", "PRI", "AGE", "TITLE"]
    assert [ln.split()[0] for ln in lines[1:]] == [a, b]
    title_col = lines[0].index("TITLE")
    assert all(ln[title_col - 2 : title_col] == "  " for ln in lines[1:])
    assert lines[1][title_col:] == "first" and " 0/3 " in lines[1] and " 10 " in lines[1]
    assert "\x1b" not in r.out and "\\x1b[2J" in lines[2]
    assert len(lines[2]) == 100 and lines[2].endswith("…")


def test_ls_json_and_status_filter(root: Root) -> None:
    a, b = submit(root, "a"), submit(root, "b")
    cli("kill", "--root", str(root.path), b)
    rows = json.loads(cli("ls", "--root", str(root.path), "--json").out)
    assert [(x["id"], x["status"]) for x in rows] == [(a, "queued"), (b, "killed")]
    queued = json.loads(cli("ls", "--root", str(root.path), "--status", "queued", "--json").out)
    assert [x["id"] for x in queued] == [a]
    both = cli("ls", "--root", str(root.path), "-s", "queued,killed", "--json").out
    assert len(json.loads(both)) == 2
    assert json.loads(cli("ls", "--root", str(root.path), "-s", "running", "--json").out) == []
    assert "no stale jobs" in cli("ls", "--root", str(root.path), "-s", "stale").out


def test_ls_is_oldest_first_by_created_at_not_by_id(root: Root) -> None:
    first = submit(root, "first", id="zzzz-first")
    second = submit(root, "second", id="aaaa-second")
    third = submit(root, "third", id="mmmm-third")
    cli("kill", "--root", str(root.path), first)  # done/ and incoming/: one order still
    rows = json.loads(cli("ls", "--root", str(root.path), "--json").out)
    assert [x["id"] for x in rows] == [first, second, third]
    table = cli("ls", "--root", str(root.path), "--status", "queued").out.splitlines()
    assert [ln.split()[0] for ln in table[1:]] == [second, third]


def test_ls_queued_never_touches_done(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    submit(root, "queued one")
    cli("kill", "--root", str(root.path), submit(root, "done one"))
    seen: list[str] = []
    real_scandir, real_listdir, real_open = os.scandir, os.listdir, os.open

    def scandir(path: Any = ".") -> Any:
        seen.append(str(path))
        return real_scandir(path)

    def listdir(path: Any = ".") -> Any:
        seen.append(str(path))
        return real_listdir(path)

    def open_(path: Any, *a: Any, **kw: Any) -> Any:
        seen.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "open", open_)
    r = cli("ls", "--root", str(root.path), "--status", "queued")
    monkeypatch.undo()
    assert r.code == 0 and "queued one" in r.out and "done one" not in r.out
    assert any("incoming" in p for p in seen)
    assert not [p for p in seen if "done" in p]


# ---------------------------------------------------------------- show


def _finish_with_result(root: Root, job_id: str) -> None:
    env = claimed(root)
    assert env.id == job_id
    now = utcnow()
    result = Result(
        attempt=1,
        exit_code=0,
        started_at=now - timedelta(seconds=12),
        finished_at=now,
        duration_s=12.0,
        rubric=[
            RubricVerdict(id="r1", passed=True, exit_code=0),
            RubricVerdict(
                id="r2", passed=False, required=False, exit_code=1, output_tail="E assert 1 == 2\n"
            ),
        ],
        verdict="failed",
        violations=["secrets.txt"],
        log="logs/attempt-1.log",
    )
    job.commit(env, Status.FAILED, Actor.AGENT, "rubric r2 failed", worker="w1", result=result)
    job.release_claim(env)


def test_show_human_summary(root: Root) -> None:
    job_id = submit(
        root, "Make it fast\nsecond line", rubric=[
            {"id": "r1", "description": "tests pass", "check": "pytest"},
            {"id": "r2", "description": "lint", "check": "ruff check", "required": False},
        ], allowed_paths=["src/**"], labels={"team": "core"},
    )  # fmt: skip
    _finish_with_result(root, job_id)
    r = cli("show", "--root", str(root.path), job_id)
    assert r.code == 0, r.err
    out = r.out
    for needle in (
        f"job        {job_id}",
        "status     failed  (attempt 1 of 3",
        "reason     rubric r2 failed",
        "allowed    src/**",
        "labels     team=core",
        "  Make it fast\n  second line",
        "r1  [required] tests pass",
        "check: pytest",
        "r2  [optional] lint",
        "result:    attempt 1: agent exited 0 after 12s; verdict failed",
        "PASS  r1",
        "FAIL  r2 (optional)  exit 1",
        "E assert 1 == 2",
        "violations (1 path outside allowed_paths)",
        "secrets.txt",
        f"log      logs/attempt-1.log  (farro logs {job_id} --attempt 1)",
    ):
        assert needle in out, (needle, out)


def test_show_names_the_jobs_own_judging_rules(root: Root) -> None:
    plain = submit(root, "p")
    own = submit(root, "p", judge_ignored=True, ignore_file="rules\x1b[2J")
    assert "judging" not in cli("show", "--root", str(root.path), plain).out
    out = cli("show", "--root", str(root.path), own).out
    assert "judging    ignored paths are judged; ignore file rules\\x1b[2J\n" in out


def test_show_json(root: Root) -> None:
    job_id = submit(root, "p", priority=3)
    data = json.loads(cli("show", "--root", str(root.path), "--json", job_id).out)
    assert set(data) >= {"prompt", "lifecycle"}
    assert data["prompt"]["priority"] == 3 and data["prompt"]["id"] == job_id
    assert data["lifecycle"]["status"] == "queued" and data["lifecycle"]["revision"] == 1


def test_show_unknown_job_is_refused(root: Root) -> None:
    r = cli("show", "--root", str(root.path), "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert r.code == 1 and "no job 01ZZZZZZZZZZZZZZZZZZZZZZZZ" in one_error(r)


# ---------------------------------------------------------------- requeue / kill


def test_requeue_failed_and_refuse_queued(root: Root) -> None:
    failed = submit(root, "will fail")
    _finish_with_result(root, failed)
    queued = submit(root, "still queued")
    r = cli("requeue", "--root", str(root.path), failed, queued)
    assert r.code == 1
    assert r.out == f"{failed} queued\n"
    assert f"job {queued} is queued" in one_error(r)
    env = job.load(root, failed)
    assert env.status is Status.QUEUED and env.lifecycle.attempt_base == 1


def test_requeue_checks_every_id_before_acting(root: Root) -> None:
    failed = submit(root)
    _finish_with_result(root, failed)
    r = cli("requeue", "--root", str(root.path), failed, "../x")
    assert r.code == 2 and "invalid job id" in one_error(r)
    assert status_of(root, failed) is Status.FAILED


def test_kill_queued_directly(root: Root) -> None:
    a, b = submit(root), submit(root)
    r = cli("kill", "--root", str(root.path), a, b)
    assert r.code == 0 and r.out.split("\n")[:2] == [f"{a} killed", f"{b} killed"]
    assert status_of(root, a) is Status.KILLED
    again = cli("kill", "--root", str(root.path), a)
    assert again.code == 1
    assert f"job {a} was already killed; only queued, running or stale" in one_error(again)


def test_kill_running_through_its_worker(root: Root) -> None:
    job_id = submit(root)
    env = claimed(root)
    stop = threading.Event()

    def worker() -> None:  # a minimal worker honouring control/kill
        def by() -> str | None:
            return job.kill_requested(root.active / job_id, env.lifecycle.attempt)

        wait_until(lambda: stop.is_set() or by() is not None, "control/kill (or the test's end)")
        if stop.is_set() or (name := by()) is None:  # the test ended first
            return
        job.commit(env, Status.KILLED, Actor.AGENT, f"killed by {name}", worker="w1")
        job.release_claim(env)

    t = threading.Thread(target=worker)
    t.start()
    try:
        r = cli("kill", "--root", str(root.path), "--wait", "20", job_id)
    finally:
        stop.set()
        t.join()
    assert r.code == 0, r.err
    assert r.out == f"{job_id} killed\n"
    assert status_of(root, job_id) is Status.KILLED


def test_kill_running_without_worker_times_out(root: Root) -> None:
    job_id = submit(root)
    env = claimed(root)
    try:
        r = cli("kill", "--root", str(root.path), "--wait", "0.2", job_id)
        assert r.code == 1 and "still in-progress after 0.2s" in one_error(r)
        assert job.kill_requested(root.active / job_id, env.lifecycle.attempt) is not None
        r = cli("kill", "--root", str(root.path), "--wait", "0", job_id)
        assert r.code == 0 and "kill requested" in r.out
    finally:
        job.release_claim(env)


# ---------------------------------------------------------------- logs


def _live_job_with_log(root: Root, text: bytes) -> tuple[str, Envelope, Path]:
    job_id = submit(root)
    env = claimed(root)
    logs = root.active / job_id / "logs"
    logs.mkdir()
    log = logs / "attempt-1.log"
    log.write_bytes(text)
    return job_id, env, log


def test_logs_prints_the_current_and_a_chosen_attempt(root: Root) -> None:
    job_id, env, _ = _live_job_with_log(root, b"hello\nworld\n")
    try:
        r = cli("logs", "--root", str(root.path), job_id)
        assert (r.code, r.out) == (0, "hello\nworld\n")
        assert (
            cli("logs", "--root", str(root.path), "--attempt", "1", job_id).out == "hello\nworld\n"
        )
        r = cli("logs", "--root", str(root.path), "--attempt", "2", job_id)
        assert r.code == 1 and "no attempt 2" in one_error(r)
    finally:
        job.release_claim(env)


def test_logs_of_a_job_that_never_ran_or_has_no_log(root: Root) -> None:
    job_id = submit(root)
    r = cli("logs", "--root", str(root.path), job_id)
    assert r.code == 1 and "has not run yet" in one_error(r)
    env = claimed(root)
    try:
        r = cli("logs", "--root", str(root.path), job_id)
        assert r.code == 1 and "no log for attempt 1" in one_error(r)
    finally:
        job.release_claim(env)


@pytest.mark.timeout(60)
def test_logs_follow_until_the_attempt_ends(root: Root) -> None:
    job_id, env, log = _live_job_with_log(root, b"line 1\n")
    proc = subprocess.Popen(
        [FARRO, "logs", "-f", "--root", str(root.path), job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"line 1\n"
        with log.open("ab") as fh:
            fh.write(b"line 2\n")
        assert proc.stdout.readline() == b"line 2\n"  # followed, not just read once
        with log.open("ab") as fh:
            fh.write(b"last words\n")
        job.commit(env, Status.SUCCEEDED, Actor.AGENT, "done", worker="w1")  # dir -> done/
        job.release_claim(env)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out == b"last words\n" and err == b""


@contextmanager
def _sigint_as_at_a_terminal() -> Iterator[None]:
    """Processes started meanwhile get SIGINT's default action, as Ctrl-C finds it.

    A suite run in the background by a non-interactive shell (``make test &``) has
    SIGINT ignored, and a child inherits that: farro then rightly ignores Ctrl-C too.
    A Python handler here is reset to the default by exec.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.timeout(60)
def test_logs_follow_of_a_queued_job_waits_for_its_claim(root: Root) -> None:
    # it used to exit 1 at once, saying `farro logs -f` works once a worker claimed it
    job_id = submit(root)
    proc = subprocess.Popen(
        [FARRO, "logs", "-f", "--root", str(root.path), job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line == f"waiting for a worker to claim job {job_id} (ctrl-c stops)\n".encode()
        env = claimed(root)
        logs = root.active / job_id / "logs"
        logs.mkdir()
        (logs / "attempt-1.log").write_bytes(b"claimed at last\n")
        job.commit(env, Status.SUCCEEDED, Actor.AGENT, "done", worker="w1")
        job.release_claim(env)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (proc.returncode, out, err) == (0, b"claimed at last\n", b"")


def test_logs_follow_of_a_job_killed_before_it_ran_is_refused(root: Root) -> None:
    job_id = submit(root)
    job.commit(job.load(root, job_id), Status.KILLED, Actor.OPERATOR, "not needed")
    for follow in (("-f",), ()):  # without -f it said "`farro logs -f` waits for a worker"
        r = cli("logs", *follow, "--root", str(root.path), job_id)
        assert r.code == 1
        assert one_error(r) == f"farro: job {job_id} is killed and never ran, so it has no log\n"


@pytest.mark.timeout(60)
def test_logs_follow_ctrl_c_exits_quietly(root: Root) -> None:
    job_id, env, _ = _live_job_with_log(root, b"running\n")
    with _sigint_as_at_a_terminal():
        proc = subprocess.Popen(
            [FARRO, "logs", "-f", "--root", str(root.path), job_id],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"running\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        job.release_claim(env)
    assert proc.returncode == 130
    assert err == b""


# ---------------------------------------------------------------- history / stats / fsck


def test_history_lists_the_audit_lines(root: Root) -> None:
    job_id = submit(root)
    other = submit(root)
    cli("kill", "--root", str(root.path), job_id)
    r = cli("history", "--root", str(root.path), job_id)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].split() == ["TIME", "FROM", "TO", "ATTEMPT", "BY", "REASON"]
    assert len(lines) == 3
    # date, time, from, to, attempt, by, reason...
    assert lines[1].split()[2:6] == ["-", "queued", "-", "creator"]
    assert lines[2].split()[2:7] == ["queued", "killed", "-", "operator", "killed"]
    assert lines[1].index("queued") == lines[2].index("killed")  # aligned columns
    assert other not in r.out
    data = json.loads(cli("history", "--root", str(root.path), "--json", job_id).out)
    assert [d["to"] for d in data] == ["queued", "killed"]
    r = cli("history", "--root", str(root.path), "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert r.code == 1 and "no job" in one_error(r)


def test_stats_counts_and_tolerates_odd_status_files(root: Root) -> None:
    submit(root)
    submit(root)
    cli("kill", "--root", str(root.path), submit(root))
    r = cli("stats", "--root", str(root.path), "--json")
    data = json.loads(r.out)
    assert data["counts"]["queued"] == 2 and data["counts"]["killed"] == 1
    assert data["total"] == 3 and data["oldest_queued_age_s"] >= 0
    assert data["workers"] == {} and data["manager"] is None
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    w1 = {"name": "w1", **me, "state": "busy", "job": "J1", "attempt": 2, "jobs_done": 4}
    (root.workers_dir / "w1.json").write_text(json.dumps({**w1, "since": utcnow().isoformat()}))
    (root.workers_dir / "w2.json").write_text("{not json")
    dead = {"name": "w3", **me, "pid": 2**22 + 1, "state": "idle"}  # above pid_max: no such pid
    (root.workers_dir / "w3.json").write_text(json.dumps(dead))
    (root.workers_dir / "w4.json").write_text(json.dumps({"custom": "shape"}))
    (root.run / "manager.json").write_text(json.dumps({"pid": 123, "host": "elsewhere"}))
    data = json.loads(cli("stats", "--root", str(root.path), "--json").out)
    assert data["workers"]["w1"]["state"] == "busy" and data["workers"]["w2"] is None
    assert data["manager"] == {"pid": 123, "host": "elsewhere"}
    assert data["manager_lock_held"] is False
    human = cli("stats", "--root", str(root.path))
    assert human.code == 0, human.err
    rows = {ln.split()[0]: ln.split() for ln in human.out.splitlines() if ln.startswith("  w")}
    assert rows["w1"] == ["w1", "busy", "0s", "4", "J1", "(attempt", "2)"], rows["w1"]
    assert rows["w2"][:2] == ["w2", "?"] and "(unreadable status file)" in " ".join(rows["w2"])
    assert rows["w3"][:3] == ["w3", "gone", "-"]  # its process is gone: not "idle"
    assert "(unrecognised status file)" in " ".join(rows["w4"])
    assert "workers   1 running (1 busy); 1 stopped or gone; 2 unreadable" in human.out
    assert "manager   none (last: elsewhere pid 123)\n" in human.out
    assert "queued 2 oldest" in " ".join(human.out.split())
    assert "=" not in human.out and "None" not in human.out  # no key=value dumps, no reprs


def test_fsck_reports_then_repairs(root: Root) -> None:
    assert cli("fsck", "--root", str(root.path)).code == 0
    job_id = submit(root)
    os.rename(root.incoming / job_id, root.done / job_id)  # misplaced: status says queued
    r = cli("fsck", "--root", str(root.path))
    assert r.code == 1 and "misplaced" in r.out and "fsck --repair" in one_error(r)
    r = cli("fsck", "--root", str(root.path), "--repair")
    assert r.code == 0, r.err
    assert root.ids("incoming") == [job_id]
    assert cli("fsck", "--root", str(root.path)).code == 0


# ---------------------------------------------------------------- main's contract


def test_no_arguments_prints_help() -> None:
    r = cli()
    assert r.code == 0 and "Commands:" in r.out and "submit" in r.out


def test_keyboard_interrupt_is_quiet_130(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr("farro_core.listing.scan", interrupted)
    r = cli("ls", "--root", str(root.path))
    assert (r.code, r.err) == (130, "")


def test_an_internal_error_is_one_line_not_a_traceback(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("farro_core.listing.scan", broken)
    r = cli("ls", "--root", str(root.path))
    assert r.code == 1 and "internal error: ZeroDivisionError: boom" in one_error(r)


def test_real_process_exit_codes_and_one_line_errors(root: Root, tmp_path: Path) -> None:
    def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([FARRO, *args], input=input, capture_output=True, timeout=60)

    ok = run("submit", "--root", str(root.path), "-", input=b'{"prompt": "hi"}')
    assert ok.returncode == 0 and len(ok.stdout.split()) == 1
    for args, code in [
        (("show", "--root", str(root.path), "01ZZZZZZZZZZZZZZZZZZZZZZZZ"), 1),
        (("show", "--root", str(root.path), "../x"), 2),
        (("ls", "--root", str(tmp_path / "missing")), 2),
        (("ls", "--root", str(root.path), "--frobnicate"), 2),
    ]:
        p = run(*args)
        assert p.returncode == code, (args, p.stderr)
        assert p.stderr.count(b"\n") == 1 and p.stderr.startswith(b"farro: "), p.stderr
        assert b"Traceback" not in p.stderr


def test_cli_imports_no_console_and_no_rich(root: Root) -> None:
    code = (
        "import sys\n"
        "import farro_core.cli as cli\n"
        "assert 'textual' not in sys.modules and 'pydantic' not in sys.modules\n"
        f"rc = cli.main(['ls', '--root', {str(root.path)!r}])\n"
        "rc2 = cli.main(['show', '--root', '/nonexistent', '01ZZZZZZZZZZZZZZZZZZZZZZZZ'])\n"
        "bad = sorted(m for m in ('textual', 'rich') if m in sys.modules)\n"
        "print(rc, rc2, bad, file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines()[-1] == "0 2 []"


def test_stale_jobs_are_requeued_and_killed_directly(root: Root) -> None:
    a, b = submit(root, "a"), submit(root, "b")
    for _ in range(2):
        env = claimed(root)
        job.commit(env, Status.STALE, Actor.WATCHDOG, "no heartbeat")
        job.release_claim(env)
    r = cli("requeue", "--root", str(root.path), a)
    assert (r.code, r.out) == (0, f"{a} queued\n")
    r = cli("kill", "--root", str(root.path), "--wait", "0", b)
    assert (r.code, r.out) == (0, f"{b} killed\n")
    assert (status_of(root, a), status_of(root, b)) == (Status.QUEUED, Status.KILLED)


def test_a_closed_stdout_is_not_a_traceback(root: Root) -> None:
    submit(root, "one")
    proc = subprocess.Popen(
        [FARRO, "ls", "--root", str(root.path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.close()  # like `farro ls | head -0`
    _, err = proc.communicate(timeout=60)
    assert err == b""
    assert proc.returncode in (0, 1)


# ---------------------------------------------------------------- selecting by status and label


def _failed(root: Root, prompt: str, **fields: Any) -> str:
    job_id = submit(root, prompt, **fields)
    env = claimed(root)
    assert env.id == job_id
    job.commit(env, Status.FAILED, Actor.AGENT, "exit 1")
    job.release_claim(env)
    return job_id


def test_requeue_and_kill_select_by_status_and_label(root: Root) -> None:
    f1 = _failed(root, "f1", labels={"batch": "a"})
    f2 = _failed(root, "f2", labels={"batch": "b"})
    q1 = submit(root, "q1", labels={"batch": "a"})
    q2 = submit(root, "q2", labels={"batch": "b"})
    r = cli("requeue", "--root", str(root.path), "--status", "failed", "--label", "batch=a")
    assert (r.code, r.out, r.err) == (0, f"{f1} queued\n", "")
    assert status_of(root, f2) is Status.FAILED
    r = cli("kill", "--root", str(root.path), "--label", "batch=a")  # queued: q1 and f1 now
    assert (r.code, r.err) == (0, "")
    assert r.out.splitlines() == [f"{f1} killed", f"{q1} killed"]  # oldest first
    assert status_of(root, q2) is Status.QUEUED
    r = cli("requeue", "--root", str(root.path), "-s", "failed")
    assert (r.code, r.out) == (0, f"{f2} queued\n")
    r = cli("kill", "--root", str(root.path), "--status", "queued", "--wait", "0")
    assert r.out.splitlines() == [f"{f2} killed", f"{q2} killed"]


def test_nothing_selected_exits_0_and_says_so(root: Root) -> None:
    submit(root, "only queued")
    for args, said in [
        (("requeue",), "nothing to requeue: no job given"),
        (("kill",), "nothing to kill: no job given"),
        (("requeue", "--status", "failed"), "nothing to requeue: no failed jobs"),
        (("requeue", "--label", "batch=x"), "no stale or failed jobs labelled batch=x"),
        (("kill", "--status", "running"), "nothing to kill: no in-progress jobs"),
    ]:
        r = cli(*args, "--root", str(root.path))
        assert (r.code, r.err) == (0, ""), args
        assert said in r.out, (args, r.out)


def test_selection_bad_input(root: Root) -> None:
    job_id = submit(root)
    for args, said in [
        (("requeue", "--status", "succeeded"), "--status succeeded: only stale or failed jobs"),
        (("kill", "--status", "failed"), "only queued, in-progress or stale jobs can be killed"),
        (("kill", "--status", "nope"), "--status 'nope'"),
        (("kill", "--label", "novalue"), "expected KEY=VALUE"),
        (("kill", "--status", "queued", job_id), "give job ids or --status/--label, not both"),
    ]:
        r = cli(*args, "--root", str(root.path))
        assert r.code == 2 and said in one_error(r), (args, r.err)
    assert status_of(root, job_id) is Status.QUEUED


def test_readme_requeue_idiom_with_nothing_failed(root: Root) -> None:
    """`farro requeue $(farro ls --status failed --json | jq ...)`: no failed job, no error."""
    submit(root, "queued, not failed")
    line = "farro requeue $(farro ls --status failed --json | jq -r '.[].id')"
    path = f"{Path(FARRO).parent}:/usr/bin:/bin"
    env = {**os.environ, "FARRO_ROOT": str(root.path), "PATH": path}
    p = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, timeout=60)
    assert (p.returncode, p.stderr) == (0, ""), p.stderr
    assert "nothing to requeue" in p.stdout


# ---------------------------------------------------------------- submit --like


def test_submit_like_copies_a_job_with_the_given_fields_changed(root: Root) -> None:
    made = cli(
        "submit", "--root", str(root.path), "-p", "Fix it\n\nall of it", "--title", "fix",
        "--rubric-check", "true", "--allow", "docs/**", "--label", "batch=a", "--priority", "2",
        "--timeout", "90",
    )  # fmt: skip
    assert made.code == 0, made.err
    original = made.out.strip()
    path = root.incoming / original / "prompt.json"
    before = path.read_bytes()
    r = cli(  # the operator fixes a bad spec with a copy
        "submit", "--root", str(root.path), "--like", original,
        "--allow", "src/**", "--allow", "tests/**", "--label", "try=2",
    )  # fmt: skip
    assert r.code == 0, r.err
    copy = r.out.strip()
    assert copy != original
    old, new = job.load(root, original).prompt, job.load(root, copy).prompt
    assert new.allowed_paths == ["src/**", "tests/**"]
    assert new.labels == {"batch": "a", "try": "2", "like": original}
    same = ("prompt", "title", "rubric", "workspace", "agent", "timeout_s", "priority")
    assert all(getattr(new, f) == getattr(old, f) for f in same)
    assert path.read_bytes() == before  # prompt.json is never rewritten
    r = cli("submit", "--root", str(root.path), "--like", copy, "-p", "Another task")
    third = job.load(root, r.out.strip()).prompt
    assert (third.prompt, third.title, third.labels["like"]) == (
        "Another task",
        "Another task",
        copy,
    )
    assert third.allowed_paths == ["src/**", "tests/**"]


def test_submit_like_copies_every_field_of_the_original(root: Root, tmp_path: Path) -> None:
    # judge_ignored and ignore_file came with the judging work: a copy that dropped
    # them would judge the same task by other rules
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({
        "prompt": "p", "title": "t", "rubric": [{"id": "c", "description": "d", "check": "true"}],
        "allowed_paths": ["src/**"], "workspace": str(tmp_path), "agent": ["true"],
        "timeout_s": 90, "max_attempts": 2, "priority": 3, "labels": {"k": "v"},
        "judge_ignored": True, "ignore_file": ".farroignore",
    }))  # fmt: skip
    made = cli("submit", "--root", str(root.path), str(spec))
    assert made.code == 0, made.err
    original = made.out.strip()
    r = cli("submit", "--root", str(root.path), "--like", original)
    assert r.code == 0, r.err
    old, new = job.load(root, original).prompt, job.load(root, r.out.strip()).prompt
    shared = set(old.model_dump()) - {"id", "schema_version", "created_at", "created_by", "labels"}
    assert {f: getattr(new, f) for f in shared} == {f: getattr(old, f) for f in shared}
    assert (new.judge_ignored, new.ignore_file) == (True, ".farroignore")
    assert new.labels == {"k": "v", "batch": "spec", "like": original}  # batch= from submit FILE


def test_submit_like_bad_input_and_unknown_job(root: Root, tmp_path: Path) -> None:
    job_id = submit(root)
    spec = tmp_path / "a.json"
    spec.write_text('{"prompt": "x"}')
    r = cli("submit", "--root", str(root.path), "--like", job_id, str(spec))
    assert r.code == 2 and "--like copies one job" in one_error(r)
    # the label naming the original is --like's own: another value was silently replaced
    r = cli("submit", "--root", str(root.path), "--like", job_id, "--label", "like=mine")
    assert r.code == 2 and f"--like sets the label like={job_id}" in one_error(r)
    r = cli("submit", "--root", str(root.path), "--like", "../x")
    assert r.code == 2 and "invalid job id" in one_error(r)
    r = cli("submit", "--root", str(root.path), "--like", "01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert r.code == 1 and "no job 01ZZZZZZZZZZZZZZZZZZZZZZZZ" in one_error(r)
    r = cli("submit", "--root", str(root.path), "--like", job_id, "--timeout", "0")
    assert r.code == 2 and "--timeout" in one_error(r)
    assert len(root.ids("incoming")) == 1


# ---------------------------------------------------------------- init --example


def test_init_example_makes_a_repo_to_try_jobs_on(tmp_path: Path) -> None:
    repo, root = tmp_path / "src" / "myrepo", tmp_path / "q"
    r = cli("init", "--root", str(root), "--example", str(repo))
    assert r.code == 0, r.err
    assert f"example repository created at {repo}" in r.out
    head = subprocess.run(["git", "-C", str(repo), "log", "--format=%s"], capture_output=True)
    assert head.stdout == b"example\n"  # a commit: a job's worktree branches from it
    clean = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True)
    assert clean.stdout == b""
    assert (repo / "tests" / "test_io.py").is_file() and (repo / "batch.json").is_file()
    again = cli("init", "--root", str(root), "--example", str(repo))
    assert again.code == 0 and "example repository kept" in again.out
    assert sorted(os.listdir(repo.parent)) == ["myrepo"]  # nothing left aside


def test_init_example_never_overwrites_and_refuses_before_making_the_root(
    tmp_path: Path,
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    r = cli("init", "--root", str(tmp_path / "q"), "--example", str(taken))
    assert r.code == 2 and "exists and is not a git repository" in one_error(r)
    assert os.listdir(taken) == ["mine.txt"] and not (tmp_path / "q").exists()
    r = cli("init", "--root", str(tmp_path / "q"), "--example", str(tmp_path / "q" / "repo"))
    assert r.code == 2 and "inside the root" in one_error(r)


def test_init_example_that_cannot_be_made_leaves_no_root(tmp_path: Path) -> None:
    # its parent is a file: the repository cannot be made, so neither is the root
    (tmp_path / "afile").write_text("x")
    r = cli("init", "--root", str(tmp_path / "q"), "--example", str(tmp_path / "afile" / "repo"))
    assert r.code == 2 and "--example" in one_error(r)
    assert not (tmp_path / "q").exists() and sorted(os.listdir(tmp_path)) == ["afile"]


def test_init_example_with_a_root_that_cannot_be_made_leaves_no_repo(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    repo = tmp_path / "src" / "myrepo"
    r = cli("init", "--root", str(tmp_path / "afile" / "q"), "--example", str(repo))
    assert r.code != 0 and r.err.startswith("farro: ")
    assert not repo.exists() and os.listdir(repo.parent) == []  # nothing built left aside
