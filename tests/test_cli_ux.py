"""What the operator reads: `farro` output in words, units and plain sentences.

Each test pins a piece of output that an operator relies on (a status report
instead of key=value dumps, ages like 3m12s, refusals that say what to do next)
and would fail if it regressed to the raw form.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from farro_core import fs, job, locks
from farro_core.cli import _age, _duration, main
from farro_core.clock import utcnow
from farro_core.envelope import Result, parse_spec
from farro_core.identity import WorkerIdentity, pid_started_at
from farro_core.root import Root
from farro_core.transitions import Actor, Status

NO_PID = 2**22 + 1  # above any pid_max: never a live process
REPRS = ("None", "datetime(", "{'", "=")


@dataclass
class Ran:
    code: int
    out: str
    err: str


def cli(*args: str, input: str | None = None) -> Ran:
    with CliRunner().isolation(input=input) as (out, err, _):
        code = main(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


def one_error(r: Ran) -> str:
    assert r.err.endswith("\n") and r.err.count("\n") == 1, repr(r.err)
    assert r.err.startswith("farro: ") and "Traceback" not in r.err
    return r.err


def submit(root: Root, prompt: str = "do it", **fields: Any) -> str:
    return job.create(root, parse_spec({"prompt": prompt, **fields})).id


def stats(root: Root) -> Ran:
    r = cli("stats", "--root", str(root.path))
    assert r.code == 0, r.err
    return r


def section(out: str, label: str) -> list[str]:
    """The line starting with ``label`` and the indented lines under it."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(label))
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    return lines[start:end]


def write_worker(root: Root, name: str, **fields: Any) -> None:
    body = {"name": name, "host": socket.gethostname(), "pid": os.getpid(), "jobs_done": 0}
    (root.workers_dir / f"{name}.json").write_text(json.dumps({**body, **fields}))


def ago(seconds: float) -> str:
    return (utcnow() - timedelta(seconds=seconds)).isoformat()


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59.9, "59s"), (60, "1m00s"), (192, "3m12s"), (7500, "2h05m"), (90000, "1d01h")],
)
def test_ages_have_two_units(seconds: float, text: str) -> None:
    assert _age(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.04s"), (3.029, "3.0s"), (12.0, "12s"), (90, "1m30s"), (600, "10m"), (3600, "1h")],
)
def test_durations_read_like_settings(seconds: float, text: str) -> None:
    assert _duration(seconds) == text


# ---------------------------------------------------------------- stats


def test_stats_manager_running_reads_as_a_status_report(root: Root) -> None:
    since = ago(192)
    body = {"host": socket.gethostname(), "pid": os.getpid(), "since": since}
    (root.run / "manager.json").write_text(json.dumps(body))
    dfd = fs.open_dir(root.run)
    held = locks.try_lock(dfd, "manager.lock")
    os.close(dfd)
    assert held is not None
    try:
        out = stats(root).out
    finally:
        held.release()
    (line,) = section(out, "manager")
    hhmmss = since[11:19]
    assert line == f"manager   {socket.gethostname()} pid {os.getpid()}, since {hhmmss}Z (up 3m12s)"


def test_stats_manager_that_exited_is_none_with_the_last_holder(root: Root) -> None:
    body = {"host": socket.gethostname(), "pid": NO_PID, "since": ago(60)}
    (root.run / "manager.json").write_text(json.dumps(body))
    out = stats(root).out
    assert f"manager   none (last: {socket.gethostname()} pid {NO_PID}, exited)\n" in out
    assert "lock" not in out


def test_stats_manager_pid_reused_by_another_process_counts_as_exited(root: Root) -> None:
    started = pid_started_at(os.getpid())
    assert started is not None
    me = {"host": socket.gethostname(), "pid": os.getpid(), "pid_started_at": started + 1}
    (root.run / "manager.json").write_text(json.dumps(me))
    assert f"pid {os.getpid()}, exited)" in stats(root).out


def test_stats_workers_one_line_each_with_state_job_and_time(root: Root) -> None:
    job_id = submit(root)
    write_worker(root, "w-busy", state="busy", job=job_id, attempt=1, since=ago(192), jobs_done=3)
    write_worker(root, "w-idle", state="idle", job=None, attempt=None, since=ago(5))
    write_worker(root, "w-stop", state="stopped", pid=NO_PID, since=ago(3600))
    write_worker(root, "w-dead", state="busy", job=job_id, attempt=2, pid=NO_PID, since=ago(9))
    out = stats(root).out
    lines = section(out, "workers")
    assert lines[0] == "workers   2 running (1 busy, 1 idle); 2 stopped or gone"
    header, *rows = lines[1:]
    assert header.split() == ["WORKER", "STATE", "FOR", "DONE", "JOB"]
    assert [r.split()[:4] for r in rows] == [
        ["w-busy", "busy", "3m12s", "3"],
        ["w-idle", "idle", "5s", "0"],
        ["w-dead", "gone", "-", "0"],  # died while busy: not "busy for 9s"
        ["w-stop", "stopped", "1h00m", "0"],
    ]
    assert rows[0].endswith(f"{job_id} (attempt 1)") and rows[1].endswith("-")
    assert len({len(r) - len(r.lstrip()) for r in rows}) == 1
    assert header.index("FOR") + 3 == rows[0].index("3m12s") + 5  # right-aligned column
    for bad in REPRS:
        assert bad not in out, bad


def test_stats_lists_few_stopped_workers_and_counts_the_rest(root: Root) -> None:
    for i in range(8):
        write_worker(root, f"old{i}", state="stopped", pid=NO_PID, since=ago(100 + i))
    lines = section(stats(root).out, "workers")
    assert lines[0].startswith("workers   none running; 8 stopped or gone")
    assert "farro-tui --workers-only" in lines[0]  # nothing runs the queue: say how to
    assert [ln.split()[0] for ln in lines[2:]] == ["old0", "old1", "old2", "old3", "old4", "…"]
    assert lines[-1].endswith("3 more stopped or gone (farro stats --json)")


def test_stats_counts_with_notes(root: Root) -> None:
    (root.path / "farro.toml").write_text("max_queued = 50\n")
    submit(root)
    (root.incoming / "not-a-job-1").mkdir()
    out = stats(root).out
    assert "jobs      2 in all\n" in out
    assert " ".join(section(out, "jobs")[1].split()).startswith("queued 1 oldest ")
    assert "limit 50 (max_queued)" in out
    assert "`farro fsck --repair`" in next(ln for ln in out.splitlines() if "corrupt" in ln)


# ---------------------------------------------------------------- show


def _failed_by_signal(root: Root, job_id: str, **extra: Any) -> None:
    env = job.claim(root, WorkerIdentity.current("w1"))
    assert env is not None and env.id == job_id
    now = utcnow()
    result = Result(
        attempt=1,
        exit_code=-15,
        started_at=now - timedelta(seconds=4),
        finished_at=now,
        duration_s=4.02,
        log="logs/attempt-1.log",
        **extra,
    )
    job.commit(env, Status.FAILED, Actor.AGENT, "attempt 1: timed out", worker="w1", result=result)
    job.release_claim(env)


def test_show_queued_job_in_words(root: Root) -> None:
    job_id = submit(root, rubric=[{"id": "r1", "description": "pytest -q", "check": "pytest -q"}])
    out = cli("show", "--root", str(root.path), job_id).out
    assert "status     queued  (not run yet; up to 3 attempts)" in out
    assert "timeout 1h    max attempts 3" in out
    assert "  r1  [required] pytest -q  (timeout 10m)\n" in out  # the check is not said twice
    assert "check:" not in out
    assert "s ago)" in next(ln for ln in out.splitlines() if ln.startswith("created"))


def test_show_failed_job_names_the_signal_and_the_agent_report(root: Root) -> None:
    job_id = submit(root, timeout_s=4)
    report = {"cost_usd": 0.01234, "tokens_in": 12345, "tokens_out": 678, "summary": "did\nit"}
    _failed_by_signal(root, job_id, report=report)
    out = cli("show", "--root", str(root.path), job_id).out
    assert "result:    attempt 1: agent ended by SIGTERM after 4.0s; verdict not judged" in out
    assert "  report   cost $0.0123, tokens 12,345 in / 678 out\n" in out
    assert "  summary  did it\n" in out
    assert "exit -15" not in out and "verdict -" not in out
    assert "last claim w1 (" in out and "worker     " not in out  # ended: not a live worker
    for bad in REPRS[:3]:
        assert bad not in out, bad


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.KILLED])
def test_show_a_finished_job_says_its_claim_ended(root: Root, status: Status) -> None:
    """Its claim is history (as the console's "last claim … (ended)"); a live one reads live."""
    job_id = submit(root)
    env = job.claim(root, WorkerIdentity.current("w1"))
    assert env is not None
    live = cli("show", "--root", str(root.path), job_id).out
    line = next(ln for ln in live.splitlines() if ln.startswith("worker "))
    assert re.fullmatch(r"worker     w1 \(.+ pid \d+\), running since .+ ago\)", line), line
    assert "last claim" not in live and "ended" not in live
    job.commit(env, status, Actor.AGENT, "done", worker="w1")
    job.release_claim(env)
    out = cli("show", "--root", str(root.path), job_id).out
    line = next(ln for ln in out.splitlines() if ln.startswith("last claim"))
    assert re.fullmatch(r"last claim w1 \(.+ pid \d+\), from .+ ago\), ended", line), line
    assert "worker     " not in out and "running since" not in out and "claimed " not in out
    data = json.loads(cli("show", "--root", str(root.path), "--json", job_id).out)
    assert data["lifecycle"]["status"] == status.value  # --json is data: the claim as stored
    claim = env.lifecycle.claim
    assert claim is not None and data["lifecycle"]["claim"] == claim.model_dump(mode="json")


# ---------------------------------------------------------------- refusals


def test_refusals_say_what_the_job_is_in_words(root: Root) -> None:
    done = submit(root)
    env = job.claim(root, WorkerIdentity.current("w1"))
    assert env is not None
    job.commit(env, Status.SUCCEEDED, Actor.AGENT, "ok", worker="w1")
    job.release_claim(env)
    r = cli("requeue", "--root", str(root.path), done)
    assert r.code == 1
    assert one_error(r) == (
        f"farro: job {done} has already succeeded; only stale or failed jobs can be requeued\n"
    )
    queued = submit(root)
    r = cli("requeue", "--root", str(root.path), queued)
    assert r.code == 1 and f"job {queued} is queued;" in one_error(r)


def test_kill_the_same_id_twice_acts_once(root: Root) -> None:
    job_id = submit(root)
    r = cli("kill", "--root", str(root.path), job_id, job_id)
    assert (r.code, r.out, r.err) == (0, f"{job_id} killed\n", "")


def test_an_invalid_id_is_explained_without_a_regex(root: Root) -> None:
    r = cli("show", "--root", str(root.path), "nope")
    assert r.code == 2
    err = one_error(r)
    assert "invalid job id 'nope': expected 8 to 64 letters" in err and "[0-9" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--timeout", "0"], "--timeout 0: must be more than 0 seconds"),
        (["--max-attempts", "0"], "--max-attempts 0: must be 1 or more"),
    ],
)
def test_submit_flag_values_are_refused_in_the_flags_words(
    root: Root, flags: list[str], message: str
) -> None:
    r = cli("submit", "--root", str(root.path), "-p", "x", *flags)
    assert r.code == 2 and one_error(r) == f"farro: {message}\n"
    assert root.ids("incoming") == []


def test_submit_an_empty_prompt(root: Root) -> None:
    r = cli("submit", "--root", str(root.path), "-p", "  ")
    assert r.code == 2 and "--prompt is empty" in one_error(r)


def test_logs_of_a_queued_job_says_when_there_will_be_one(root: Root) -> None:
    job_id = submit(root)
    r = cli("logs", "--root", str(root.path), job_id)
    assert r.code == 1
    assert "is queued and has not run yet" in one_error(r) and "farro logs -f" in r.err


# ---------------------------------------------------------------- ls / fsck


def test_ls_with_a_status_says_unreadable_jobs_were_left_out(root: Root) -> None:
    submit(root, "a queued job")
    (root.incoming / "broken-job-1").mkdir()
    r = cli("ls", "--root", str(root.path), "-s", "queued")
    assert r.code == 0
    assert r.out.splitlines()[-1].startswith("(1 unreadable job not shown: `farro fsck`")
    assert json.loads(cli("ls", "--root", str(root.path), "-s", "queued", "--json").out)[0]


def test_kill_and_requeue_by_label_say_unreadable_jobs_were_not_considered(root: Root) -> None:
    # a job whose job.json is torn may carry the label: a silent "nothing to kill" misled
    note = (
        "(1 unreadable job not considered: `farro fsck` tells what is wrong, "
        "`farro fsck --repair` quarantines)"
    )
    broken = submit(root, "broken", labels={"batch": "x"})
    (root.incoming / broken / "job.json").write_text('{"torn')
    r = cli("kill", "--root", str(root.path), "--label", "batch=x")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "nothing to kill: no queued, in-progress or stale jobs labelled batch=x",
        note,
    ]
    fine = submit(root, "fine", labels={"batch": "x"})
    r = cli("kill", "--root", str(root.path), "--status", "queued")
    assert r.out.splitlines() == [note, f"{fine} killed"]
    r = cli("requeue", "--root", str(root.path), "--status", "failed")
    assert r.out.splitlines() == ["nothing to requeue: no failed jobs"]  # done/ holds none


def test_ls_status_error_mentions_the_running_alias(root: Root) -> None:
    r = cli("ls", "--root", str(root.path), "-s", "runing")
    assert r.code == 2 and "running means in-progress" in one_error(r)


def test_fsck_counts_in_words(root: Root, tmp_path: Path) -> None:
    (root.incoming / "broken-job-1").mkdir()
    r = cli("fsck", "--root", str(root.path))
    assert r.code == 1
    assert r.out.splitlines()[-1] == "1 problem found"
    assert one_error(r) == "farro: 1 problem found; `farro fsck --repair` fixes it\n"
    r = cli("fsck", "--root", str(root.path), "--repair")
    assert (r.code, r.out.splitlines()[-1]) == (0, "1 problem found, 1 repaired")
    assert "(s)" not in r.out


def test_show_after_a_release_does_not_claim_a_requeue(root: Root) -> None:
    job_id = submit(root)
    env = job.claim(root, WorkerIdentity.current("w1"))
    assert env is not None
    job.commit(
        env,
        Status.QUEUED,
        Actor.AGENT,
        "released: worker stopping (attempt 1 not counted)",
        worker="w1",
        claim=None,
        attempt_base=1,
    )
    job.release_claim(env)
    out = cli("show", "--root", str(root.path), job_id).out
    assert "status     queued  (up to 3 attempts, after 1 uncounted run)\n" in out
    assert "not run yet" not in out  # it did run, once


# ---------------------------------------------------------------- help


def test_help_names_arguments_plainly() -> None:
    r = cli("kill", "--help")
    assert r.code == 0
    assert "Usage: farro kill [OPTIONS] [ID]...\n" in r.out  # or --status, --label
    assert "\n  ID  Job ids (or select with --status, --label)." in r.out
    assert "<list[str]>" not in r.out and "{ID}" not in r.out
    assert "Usage: farro submit [OPTIONS] [SPEC_FILE]...\n" in cli("submit", "--help").out
    assert "Usage: farro show [OPTIONS] ID\n" in cli("show", "--help").out
    r = cli("show")
    assert (
        r.code == 2 and one_error(r) == "farro: Missing argument 'ID' (see `farro show --help`)\n"
    )


def test_an_option_without_its_value_points_at_the_commands_help() -> None:
    # click raises these without a context: the hint read `farro --help`, whose
    # page does not list -p
    r = cli("submit", "-p")
    assert one_error(r) == "farro: Option '-p' requires an argument (see `farro submit --help`)\n"
    assert r.code == 2
    r = cli("logs", "01M8P3WC78HC3DD7T4QVFS7QWS", "--attempt")
    assert r.code == 2 and one_error(r).endswith("(see `farro logs --help`)\n")


def test_a_mistyped_agent_preset_is_named_once_not_per_union_member(root: Root) -> None:
    # the agent is a table, an argv list or a string: pydantic refused all three, and
    # the line read "agent.AgentPreset.preset: …; agent.'list[str]': …; agent.str: …"
    r = cli("submit", "--root", str(root.path), "-p", "x", "--agent", '{"preset": "claud"}')
    assert r.code == 2
    assert one_error(r) == (
        "farro: --prompt: agent.preset: Input should be 'claude', 'codex', 'gemini' or 'aider'\n"
    )
    r = cli("submit", "--root", str(root.path), "-p", "x", "--agent", '["echo", 3]')
    assert r.code == 2 and one_error(r).endswith(": agent.1: Input should be a valid string\n")
    assert root.ids("incoming") == []


def test_a_spec_through_a_pipe_is_read_as_stdin_is(root: Root) -> None:
    # `farro submit <(jq …)` names /dev/fd/63: its jobs were labelled batch=63 and a
    # relative workspace was looked for in /dev/fd
    def piped(text: str) -> Ran:
        r, w = os.pipe()
        os.write(w, text.encode())
        os.close(w)
        try:
            return cli("submit", "--root", str(root.path), f"/dev/fd/{r}")
        finally:
            os.close(r)

    made = piped('{"prompt": "from a pipe"}')
    assert made.code == 0, made.err
    assert job.load(root, made.out.strip()).prompt.labels == {}
    r = piped('{"prompt": "x", "workspace": "src"}')
    assert r.code == 2 and "workspace 'src' is relative; give an absolute path" in one_error(r)


def test_toml_on_stdin_without_format_says_which_flag_is_missing(root: Root) -> None:
    r = cli("submit", "--root", str(root.path), "-", input='prompt = "x"\n')
    assert r.code == 2 and one_error(r).endswith("(TOML on stdin needs --format toml)\n")


def test_show_a_job_backing_off_says_when_it_retries(root: Root) -> None:
    job_id = submit(root)
    env = job.claim(root, WorkerIdentity.current("w1"))
    assert env is not None
    job.commit(
        env,
        Status.QUEUED,
        Actor.AGENT,
        "attempt 1: agent exited 1",
        worker="w1",
        claim=None,
        not_before=utcnow() + timedelta(seconds=90.5),
    )
    job.release_claim(env)
    out = cli("show", "--root", str(root.path), job_id).out
    assert "status     queued  (1 of 3 attempts used; next: attempt 2)" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("retry at"))
    assert line.endswith("(in 1m31s), backing off after a failed attempt"), line
