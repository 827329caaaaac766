"""`farro-tui --workers-only`: SIGTERM drain, no textual, one-line errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from support import wait_for

from farro_core import demo
from farro_core.api import submit
from farro_core.root import Root
from farro_core.transitions import Status

from .helpers import (
    PYTHON,
    Headless,
    child_env,
    make_root,
    nothing_in_progress,
    status_is,
    transitions,
)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_stop_signal_drains_releases_the_running_job_and_exits_0(
    tmp_path: Path, procs: list[Headless], sig: signal.Signals
) -> None:
    root = make_root(tmp_path / "root")  # the agent sleeps 60 s on attempt 1
    a = Headless(root, tmp_path / "a.log", "--workers", "2", python_flags=("-X", "importtime"))
    procs.append(a)
    envs = [submit(root, f"long job {i}") for i in range(2)]
    for env in envs:
        wait_for(partial(status_is, root, env.id, Status.IN_PROGRESS), "both claimed")

    a.signal(sig)
    assert a.wait() == 0, a.log()
    assert nothing_in_progress(root)
    assert root.ids("active") == []
    for env in envs:
        back = status_is(root, env.id, Status.QUEUED)
        assert back is not None, "a released job is queued again"
        assert back.lifecycle.claim is None
        # a clean stop never spends the job's budget
        assert back.lifecycle.attempts_left(back.prompt.max_attempts) == back.prompt.max_attempts
        last = transitions(root, env.id)[-1]
        assert (last["from"], last["to"], last["actor"]) == ("in-progress", "queued", "agent")
        # drained by releasing: its 60 s sleep was cut short by the release's SIGTERM
        attempt = (back.path / "logs" / "attempt-1.log").read_text()
        assert "the worker is stopping: releasing the job: SIGTERM" in attempt
    log = a.log()
    assert f"{sig.name}: stopping" in log and "stopped cleanly" in log
    imported = [ln.rsplit("|", 1)[-1].strip() for ln in log.splitlines() if "import time:" in ln]
    assert "farro_core.system" in imported  # -X importtime really listed the imports
    assert not [m for m in imported if m.split(".")[0] == "textual"]


#: farro-tui in this process's main thread, with a profile hook that raises SIGTERM the
#: first time, once the System has started, that thread has just taken the lock of a
#: threading.Condition: where a handler that sets an Event waits for itself for ever
#: (Event.wait holds that lock for a moment each time it wakes)
SIGNAL_WHILE_A_LOCK_IS_HELD = """
import signal, sys, threading
from farro_core.system import System
from farro_tui.main import main

armed = fired = False

def hook(frame, event, arg):
    global armed, fired
    if event != "return":
        return
    if frame.f_code is System.start.__code__:
        armed = True
    elif armed and not fired and frame.f_code is threading.Condition.__enter__.__code__:
        fired = True
        signal.raise_signal(signal.SIGTERM)

sys.setprofile(hook)
sys.exit(main(sys.argv[1:]))
"""


def test_a_stop_signal_while_the_main_thread_holds_a_lock_still_stops_it(
    tmp_path: Path, procs: list[Headless]
) -> None:
    root = make_root(tmp_path / "root")
    a = Headless(
        root, tmp_path / "a.log", "--workers", "1", entry=("-c", SIGNAL_WHILE_A_LOCK_IS_HELD)
    )
    procs.append(a)
    a.wait_log("started:")
    a.signal(signal.SIGTERM)
    assert a.wait() == 0, a.log()
    log = a.log()
    assert "SIGTERM: stopping" in log and "stopped cleanly" in log
    # the hook's own SIGTERM, raised as stopping started a thread (Thread.start waits on
    # an Event), while the main thread held that Event's lock
    assert "SIGTERM: already stopping, please wait" in log


def test_headless_modules_do_not_import_textual() -> None:
    code = (
        "import sys\n"
        "import farro_tui.main, farro_tui.headless, farro_core.system, farro_core.demo\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workers-only", "--root", "{missing}"], "no FARRO root"),
        (["--workers-only", "--no-workers"], "contradict"),
        (["--readonly", "--workers", "2"], "contradict"),
        (["--workers", "-1"], "--workers"),
        (["--bogus"], "unrecognized arguments"),
        (["--workers-only", "--root", "{badtoml}"], "farro.toml"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    bad = make_root(tmp_path / "bad")
    (bad.path / "farro.toml").write_text("workerz = 3\n")
    argv = [a.format(missing=tmp_path / "nope", badtoml=bad.path) for a in args]
    out = subprocess.run(
        [PYTHON, "-m", "farro_tui.main", *argv],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=30,
    )
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr
    assert lines[0].startswith("farro-tui: ")


def test_entry_point_is_the_console_script() -> None:
    script = Path(sys.executable).with_name("farro-tui")
    if not script.exists():
        pytest.skip("farro-tui is not installed in this environment")
    out = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "--workers-only" in out.stdout


def test_demo_without_root_seeds_a_fresh_temporary_root(tmp_path: Path) -> None:
    env = {**child_env(), "TMPDIR": str(tmp_path)}
    log = tmp_path / "demo.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [PYTHON, "-m", "farro_tui.main", "--demo", "--workers-only"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(lambda: "inbox: accepted demo-goal.json" in log.read_text() or None, "demo up")
        [demo_root] = [p for p in tmp_path.iterdir() if p.name.startswith("farro-demo-")]
        assert f"demo root {demo_root}" in log.read_text()
        assert (demo_root / "farro.toml").exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait(30)


def test_demo_refuses_a_real_root_and_reseeds_its_own(tmp_path: Path) -> None:
    # seeded into a real root, demo jobs ran with its real agent at priority 10
    real = tmp_path / "real"
    Root.init(real)
    (real / "farro.toml").write_text('agent = "claude -p"\n')
    before = sorted(os.listdir(real))
    out = subprocess.run(
        [PYTHON, "-m", "farro_tui.main", "--demo", "--root", str(real), "--workers-only"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert out.returncode == 2 and out.stderr.startswith("farro-tui: --demo ")
    assert "not a demo root" in out.stderr and len(out.stderr.splitlines()) == 1
    assert sorted(os.listdir(real)) == before and Root.open(real).ids("incoming") == []
    # a demo root (make demo's .demo-root) may be seeded again
    mine = Root.init(tmp_path / "mine")
    demo.seed(mine)
    demo.refuse_real_root(mine.path)
    demo.refuse_real_root(tmp_path / "new")  # nothing there yet: fine
