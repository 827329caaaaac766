"""One attempt end to end: the agent, its environment, its log, its result file."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import stat
from pathlib import Path

import pytest
from support import wait_until

from farro_core import runner
from farro_core.root import Root

from .helpers import PYTHON, current_log, load, make_worker, pid_alive, sh, status_is, submit

DUMP = """
import json, os, sys
env = {k: v for k, v in os.environ.items() if k.startswith("FARRO_")}
body = {"argv": sys.argv[1:], "env": env, "cwd": os.getcwd(), "stdin": sys.stdin.read()}
with open(os.environ["FARRO_RESULT_FILE"], "w") as fh:
    json.dump(body, fh)
"""

NASTY = (
    "$(touch pwned1) ; touch pwned2 ; `touch pwned3` | touch pwned4 && touch pwned5 "
    "' ; touch pwned6 ; ' \" ; touch pwned7 ; \" $HOME ${IFS} \\ \n rm -rf ./* {workspace}"
)


def test_demo_agent_happy_path(wroot: Root) -> None:
    env = submit(wroot, "[fast] add a greeting\nplease", title="greeting")
    out = make_worker(wroot).run_once()
    assert out is not None
    assert out.status == "succeeded", out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.exit_code == 0 and res.verdict == "ungraded"
    assert res.attempt == 1 and res.log == "logs/attempt-1.log" and res.duration_s >= 0
    assert res.report["cost_usd"] > 0 and res.report["tokens_in"] > 0
    assert "summary" in res.report
    work = out.path / "work"
    assert "add a greeting" in (work / "NOTES.md").read_text()
    assert list((work / "src").glob("task_*.py"))
    log = (out.path / "logs" / "attempt-1.log").read_text()
    assert "[4/6] editing files" in log and "done." in log
    assert out.path == wroot.done / env.id


def test_demo_agent_keeps_to_src_without_a_src_src(wroot: Root) -> None:
    """``allowed_paths = ["src/**"]`` (the example's jobs): src/task_….py, never src/src/."""
    submit(wroot, "[fast] type hints", allowed_paths=["src/**"])
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    work = out.path / "work"
    assert list((work / "src").glob("task_*.py")) and (work / "src" / "NOTES.md").exists()
    assert not (work / "src" / "src").exists()
    assert out.lifecycle.result is not None and out.lifecycle.result.violations == []
    # the log names the file it wrote ("edited src/NOTES.md and src/" read as cut short)
    task = next((work / "src").glob("task_*.py")).name
    assert f"  edited src/NOTES.md and src/{task}\n" in current_log(wroot, out.id)


def test_demo_agent_fail_marker_is_retried(wroot: Root) -> None:
    env = submit(wroot, "[fast] [fail] break it", max_attempts=2)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "queued"
    assert out.lifecycle.result is not None and out.lifecycle.result.exit_code == 1
    assert out.lifecycle.not_before is not None
    assert "the tests failed" in current_log(wroot, env.id)


def test_env_placeholders_and_stdin_argv_command(wroot: Root) -> None:
    prompt = "line one\nline two ünïcode"
    agent = [PYTHON, "-c", DUMP, "{prompt_file}", "ws={workspace}", "{job_dir}", "{nope}"]
    env = submit(wroot, prompt, agent=agent)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    rep = out.lifecycle.result.report  # type: ignore[union-attr]
    e = rep["env"]
    active = str(wroot.active / env.id)
    assert e["FARRO_JOB_ID"] == env.id
    assert e["FARRO_JOB_DIR"] == active
    assert e["FARRO_ATTEMPT"] == "1"
    assert e["FARRO_WORKSPACE"] == active + "/work" == rep["cwd"]
    assert e["FARRO_PROMPT_FILE"] == active + "/prompt.txt"
    assert e["FARRO_RESULT_FILE"] == active + "/logs/attempt-1.result.json"
    assert rep["argv"] == [e["FARRO_PROMPT_FILE"], "ws=" + e["FARRO_WORKSPACE"], active, "{nope}"]
    assert rep["stdin"] == prompt
    pf = out.path / "prompt.txt"
    assert pf.read_text() == prompt
    assert stat.S_IMODE(pf.stat().st_mode) == 0o444


def test_a_prompt_bigger_than_the_pipe_reaches_stdin_whole(wroot: Root) -> None:
    """Most prompts are written at once; one beyond the pipe's 64 KiB is written on as
    the agent reads (and an agent that never reads stdin still finishes)."""
    prompt = "".join(f"line {i:06d} of a long prompt\n" for i in range(30_000))  # ~0.9 MiB
    assert len(prompt.encode()) > 1 << 16
    big = submit(wroot, prompt, agent=[PYTHON, "-c", DUMP])
    deaf = submit(wroot, prompt, agent=["true"])
    w = make_worker(wroot)
    outs = {o.id: o for o in (w.run_once(), w.run_once()) if o is not None}
    assert {o.status for o in outs.values()} == {"succeeded"}
    assert outs[big.id].lifecycle.result.report["stdin"] == prompt  # type: ignore[union-attr]
    assert outs[deaf.id].lifecycle.result.exit_code == 0  # type: ignore[union-attr]


def test_string_command_placeholders_become_env_references(wroot: Root, tmp_path: Path) -> None:
    ws = tmp_path / "my workspace"
    ws.mkdir()
    agent = "cat {prompt_file} > got.txt; printf '%s' {workspace} > ws.txt; ls {job_dir} > jd.txt"
    submit(wroot, "hello there", agent=agent, workspace=str(ws))
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert (ws / "got.txt").read_text() == "hello there"
    assert (ws / "ws.txt").read_text() == str(ws)
    assert "prompt.json" in (ws / "jd.txt").read_text()


def test_shell_metacharacters_never_execute(wroot: Root, tmp_path: Path) -> None:
    """Prompt, title, labels and the workspace's own name are full of shell syntax."""
    evil = tmp_path / "ws $(touch pwned8) ; touch pwned9 ; `touch pwned10` 'q\"x"
    evil.mkdir()
    string_agent = (
        "cat {prompt_file} > got-s.txt; echo {workspace} > ws-s.txt; "
        'printf %s "$FARRO_JOB_ID" > id.txt'
    )
    script = 'cat "$1" > got-a.txt; printf %s "$2" > ws-a.txt'
    argv_agent = [*sh(script), "sh", "{prompt_file}", "{workspace}"]
    for agent in (string_agent, argv_agent):
        submit(
            wroot,
            NASTY,
            title="$(touch pwned11) `touch pwned12`; touch pwned13",
            labels={"$(touch pwned14)": "`touch pwned15`; touch pwned16"},
            agent=agent,
            workspace=str(evil),
        )
    w = make_worker(wroot)
    for _ in range(2):
        out = w.run_once()
        assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert (evil / "got-s.txt").read_text() == NASTY
    assert (evil / "got-a.txt").read_text() == NASTY
    assert (evil / "ws-s.txt").read_text() == str(evil) + "\n"
    assert (evil / "ws-a.txt").read_text() == str(evil)
    found = [p for p in tmp_path.rglob("pwned*")] + [
        p for p in Path.cwd().glob("pwned*") if p.is_file()
    ]
    assert found == [], found
    assert not Path("/tmp/pwned").exists()


def test_log_streams_while_the_agent_runs(wroot: Root) -> None:
    agent = sh("i=0; while [ $i -lt 40 ]; do echo tick $i; i=$((i+1)); sleep 0.1; done")
    env = submit(wroot, "tick", agent=agent)
    w = make_worker(wroot)
    w.start()
    wait_until(lambda: "tick 3" in current_log(wroot, env.id), what="tick 3 in the log")
    mid = load(wroot, env.id)
    assert mid.status == "in-progress", "the log must grow while the agent still runs"
    assert "tick 39" not in current_log(wroot, env.id)
    done = wait_until(lambda: status_is(wroot, env.id, "succeeded"), what="success")
    assert "tick 39" in current_log(wroot, done.id)


def test_log_cap_with_one_truncation_line_while_draining(wroot: Root) -> None:
    script = (
        "import sys\nfor i in range(20000): sys.stdout.write('x' * 99 + '\\n')\n"
        "print('THE' + '-END')"
    )
    env = submit(wroot, "noisy", agent=[PYTHON, "-c", script])
    out = make_worker(wroot, log_max_bytes=4096).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    log = (out.path / "logs" / "attempt-1.log").read_text()
    line = "[farro] log truncated at 4096 bytes; the agent's further output was discarded"
    assert log.count(line) == 1
    assert "THE-END" not in log
    assert len(log.encode()) < 4096 + 2000
    assert log.index(line) < log.index("agent exited 0")
    assert env.id in log  # the header line names the job


def test_demo_agent_noisy_marker_hits_the_cap(wroot: Root) -> None:
    submit(wroot, "[fast] [noisy] shout")
    out = make_worker(wroot, log_max_bytes=64 * 1024).run_once()
    assert out is not None and out.status == "succeeded"
    assert "log truncated at 65536 bytes" in (out.path / "logs" / "attempt-1.log").read_text()


def test_result_file_recorded_as_report(wroot: Root) -> None:
    agent = sh(
        """printf '{"cost_usd": 0.12, "tokens_in": 10, "tokens_out": 5, "summary": "ok",
        "extra": {"k": [1, 2]}}' > "$FARRO_RESULT_FILE" """
    )
    submit(wroot, "report", agent=agent)
    out = make_worker(wroot).run_once()
    assert out is not None and out.lifecycle.result is not None
    assert out.lifecycle.result.report == {
        "cost_usd": 0.12,
        "tokens_in": 10,
        "tokens_out": 5,
        "summary": "ok",
        "extra": {"k": [1, 2]},
    }
    on_disk = json.loads((out.path / "job.json").read_text())
    assert on_disk["result"]["report"]["extra"] == {"k": [1, 2]}


def test_bad_result_file_is_ignored_with_a_note(wroot: Root) -> None:
    submit(wroot, "report", agent=sh('echo "[1, 2" > "$FARRO_RESULT_FILE"'))
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded"
    assert out.lifecycle.result is not None and out.lifecycle.result.report == {}
    assert "result file ignored" in (out.path / "logs" / "attempt-1.log").read_text()


@pytest.mark.parametrize(
    ("agent", "reason"),
    [
        (["/nonexistent/agent-bin", "-p"], "agent command not found: /nonexistent/agent-bin"),
        (["no-such-agent-claude", "-p"], "agent command not found: no-such-agent-claude"),
        ("no-such-agent-claude -p --json", "agent command not found: no-such-agent-claude"),
        ('cd "$FARRO_WORKSPACE" && claude-nope -p', "agent command not found: claude-nope"),
        ("./agent.sh --go", "agent command not executable: ./agent.sh"),
    ],
)
def test_an_agent_that_is_not_there_fails_at_once_naming_it(
    wroot: Root, tmp_path: Path, agent: list[str] | str, reason: str
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "agent.sh").write_text("#!/bin/sh\nexit 0\n")  # not executable
    env = submit(wroot, "x", agent=agent, max_attempts=3, workspace=str(ws))
    out = make_worker(wroot, retry_backoff_s=0).run_once()
    assert out is not None and out.status == "failed", "not retried"
    assert out.lifecycle.attempt == 1
    assert out.lifecycle.reason.startswith(f"attempt 1: {reason}")
    res = out.lifecycle.result
    assert res is not None and res.error is not None and res.error.startswith(reason)
    assert reason in current_log(wroot, env.id)


def test_an_argv_agent_that_is_not_executable_fails_at_once(wroot: Root, tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    submit(wroot, "x", agent=[str(script)], max_attempts=3)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed" and out.lifecycle.attempt == 1
    assert f"agent command not executable: {script}" in out.lifecycle.reason


def test_an_argv_agent_exiting_127_itself_is_retried(wroot: Root) -> None:
    """Only sh's 126/127 mean "could not run": an argv agent that ran chose its status."""
    submit(wroot, "x", agent=sh("exit 127"), max_attempts=2)
    out = make_worker(wroot, retry_backoff_s=0).run_once()
    assert out is not None and out.status == "queued"
    assert "agent exited 127; retry" in out.lifecycle.reason


def test_status_file_and_worker_name_checked(wroot: Root) -> None:
    w = make_worker(wroot, "w-7")
    w.start()
    path = wroot.workers_dir / "w-7.json"
    wait_until(
        lambda: path.exists() and json.loads(path.read_text())["state"] == "idle",
        'path.exists() and json.loads(path.read_text())["state"] == "idle"',
    )
    body = json.loads(path.read_text())
    assert body["pid"] == os.getpid() and body["name"] == "w-7" and body["jobs_done"] == 0
    w.stop()
    assert json.loads(path.read_text())["state"] == "stopped"
    assert w.status().state == "stopped"
    try:
        make_worker(wroot, "../evil")
    except ValueError:
        pass
    else:
        raise AssertionError("a worker name with a slash must be refused")


def test_demo_agent_escape_marker_fails_on_allowed_paths(wroot: Root) -> None:
    submit(wroot, "[fast] [escape] rotate keys", allowed_paths=["src/**", "NOTES.md"])
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "failed"
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == ["secrets/leak.txt"]


def test_demo_agent_speed_scales_the_slow_marker(
    wroot: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARRO_DEMO_SPEED", "0.02")  # 30 s of [slow] become 0.6 s
    # unscaled, its 30 s would run into the 20 s timeout (a failure bound only)
    submit(wroot, "[slow] refactor the storage layer", timeout_s=20)
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.report["speed"] == 0.02
    assert res.finished_at is not None
    # its pauses did run: a lower bound, which load can only lengthen
    assert (res.finished_at - res.started_at).total_seconds() >= 0.6


def test_an_escaped_process_holding_the_output_dies_with_the_agent(
    wroot: Root, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A setsid'd child that keeps printing is part of the attempt: it is killed, the log ends."""
    monkeypatch.setattr(runner, "DRAIN_S", 30.0)
    pidfile = tmp_path / "escaped.pid"
    agent = sh(
        f"setsid sh -c 'echo $$ > {pidfile}; while :; do echo spam; sleep 0.01; done' & "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done; echo main done"
    )
    submit(wroot, "x", agent=agent)
    try:
        out = make_worker(wroot).run_once()
        assert out is not None and out.status == "succeeded", out.lifecycle.reason
        assert not pid_alive(int(pidfile.read_text()))
        log = (out.path / "logs" / "attempt-1.log").read_text()
        assert "still holds its output" not in log and "main done" in log
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_transitions_are_logged_readably(wroot: Root, caplog: pytest.LogCaptureFixture) -> None:
    env = submit(wroot, "x", agent=["false"], max_attempts=1)
    with caplog.at_level(logging.INFO, logger="farro.worker"):
        make_worker(wroot).run_once()
    lines = [r.getMessage() for r in caplog.records if r.name == "farro.worker"]
    assert f"w1 {env.id} queued → in-progress (attempt 1)" in lines
    assert any(ln.startswith(f"w1 {env.id} in-progress → failed (attempt 1): ") for ln in lines)
