"""What a cold ``farro`` imports: only the command it runs, never the others' modules.

Start-up time is part of the CLI's interface (README, Performance: ``farro submit``
cold). These tests guard its structure, not a timing: the command modules load
on demand (``farro_core.cli.base.COMMANDS``), so ``farro submit`` imports neither
the other commands nor the console, and ``COMMANDS`` names each command's module.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import typer

from farro_core.cli import COMMANDS, app
from farro_core.job import load
from farro_core.root import Root
from farro_core.transitions import Status

MODULES = {f"farro_core.cli.{m}" for m in COMMANDS.values()}


def modules_after(argv: list[str], root: Root) -> tuple[int, str, set[str]]:
    """Run ``farro ARGV`` in a fresh interpreter: exit code, stdout, modules imported."""
    code = (
        "import json, sys\n"
        "from farro_core.cli import main\n"
        f"rc = main({argv!r})\n"
        "sys.stdout.flush()\n"
        "print(json.dumps([rc, sorted(sys.modules)]), file=sys.stderr)\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root.path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(root.path)},
    )
    rc, modules = json.loads(p.stderr.splitlines()[-1])
    return rc, p.stdout, set(modules)


def test_submit_imports_no_other_command_and_no_console(root: Root) -> None:
    rc, out, modules = modules_after(["submit", "--root", str(root.path), "-p", "x"], root)
    assert rc == 0 and (root.incoming / out.strip()).is_dir(), out
    assert modules & MODULES == {"farro_core.cli.submit"}
    # the console, rich; what only --allow, --workspace, an agent preset, a batch of
    # several jobs, a TOML file (farro.toml, a spec) or a finishing job needs
    unwanted = {"textual", "farro_tui", "rich", "typer.rich_utils", "pathspec"}
    unwanted |= {"farro_core.workspace", "farro_core.pool", "farro_core.notify"}
    unwanted |= {"farro_core.agents", "concurrent", "tomllib"}
    assert not {m for m in modules if m.split(".")[0] in unwanted or m in unwanted}


def test_submit_builds_the_models_of_a_jobs_definition_not_of_its_result(root: Root) -> None:
    """A claim, a result and the work it holds are built on first use (envelope._Strict):
    a submit writes the new job's job.json without building Lifecycle."""
    code = (
        "import json, sys\n"
        "from pydantic import BaseModel\n"
        "from farro_core.cli import main\n"
        f"rc = main(['submit', '--root', {str(root.path)!r}, '-p', 'x'])\n"
        "sys.stdout.flush()\n"
        "models, todo = {}, [BaseModel]\n"
        "while todo:\n"
        "    for c in todo.pop().__subclasses__():\n"
        "        todo.append(c)\n"
        "        if c.__module__.startswith('farro_core.'):\n"
        "            models[c.__name__] = c.__pydantic_complete__\n"
        "print(json.dumps([rc, models]), file=sys.stderr)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    rc, built = json.loads(p.stderr.splitlines()[-1])
    assert rc == 0, p.stderr
    assert built["JobSpec"] and built["Prompt"] and built["Settings"], built
    later = {"Lifecycle", "Claim", "Result", "RubricVerdict", "Landing", "Runtime", "Envelope"}
    later |= {"Work", "Change", "Ignored", "IgnoredTop", "AttemptCommit", "_JobFields"}
    assert {name: built[name] for name in later} == dict.fromkeys(later, False)
    # and what it wrote is a job like any other
    (job_id,) = root.ids("incoming")
    env = load(root, job_id)
    assert env.lifecycle.status == Status.QUEUED and env.prompt.prompt == "x"
    assert env.lifecycle.reason.startswith("created by ")


def test_each_command_loads_its_own_module_only(root: Root) -> None:
    for name, module in COMMANDS.items():
        rc, out, modules = modules_after([name, "--help"], root)
        assert rc == 0 and out.startswith(f"Usage: farro {name} "), (name, out)
        # fsck.py takes the selection options of steer.py
        expected = {f"farro_core.cli.{module}"} | (
            {"farro_core.cli.steer"} if module == "fsck" else set()
        )
        assert modules & MODULES == expected, name


def test_the_top_level_help_loads_every_command(root: Root) -> None:
    rc, out, modules = modules_after(["--help"], root)
    assert rc == 0 and modules >= MODULES
    rows = out.split("Commands:\n")[1].split("\n\n")[0]
    assert [row.split()[0] for row in rows.splitlines()] == list(COMMANDS)


def test_commands_names_every_command_with_the_module_that_defines_it() -> None:
    assert list(typer.main.get_command(app).commands) == list(COMMANDS)  # type: ignore[attr-defined]
    defined = {
        info.name or info.callback.__name__: info.callback.__module__
        for info in app.registered_commands
        if info.callback is not None
    }
    assert defined == {name: f"farro_core.cli.{m}" for name, m in COMMANDS.items()}


def test_the_farro_process_exits_with_its_objects_frozen_and_its_exit_work_done(
    root: Root,
) -> None:
    """``run`` (the console script) freezes the garbage collector before exiting, so
    the interpreter's last collections skip typer's and pydantic's objects; atexit
    handlers still run, after the output, and the exit code is main's."""
    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert scripts["project"]["scripts"]["farro"] == "farro_core.cli:run"
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "from farro_core.cli import run\n"
        "sys.argv[1:] = sys.argv[2:]\n"
        "run()\n"
    )
    for argv, rc in ((["submit", "--root", str(root.path), "-p", "x"], 0), (["ls", "--x"], 2)):
        p = subprocess.run(
            [sys.executable, "-c", code, "farro", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == rc, p.stderr
        *printed, last = p.stdout.splitlines()
        assert last == "frozen at exit: True", p.stdout
        assert len(printed) == (1 if rc == 0 else 0), p.stdout
        assert all((root.incoming / job_id).is_dir() for job_id in printed)


def test_the_farro_process_imports_typer_with_the_collector_off(root: Root) -> None:
    """``import farro_core.cli`` imports nothing; ``run`` imports typer (with the app)
    with the garbage collector off and freezes what the import made, so no collection
    walks it during the import; the collector is on again for the command."""
    code = (
        "import atexit, gc, json, sys\n"
        "seen, on = [], []\n"
        "def during(phase, info):\n"
        "    base = sys.modules.get('farro_core.cli.base')\n"
        "    if phase == 'start' and base is not None and not hasattr(base, 'run'):\n"
        "        seen.append(info['generation'])\n"
        "gc.callbacks.append(during)\n"
        "from farro_core.cli import run\n"
        "light = 'typer' not in sys.modules\n"
        "atexit.register(lambda: print(json.dumps([light, seen, gc.isenabled()])))\n"
        "sys.argv[1:] = sys.argv[2:]\n"
        "run()\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, "farro", "submit", "--root", str(root.path), "-p", "x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    job_id, last = p.stdout.splitlines()
    assert (root.incoming / job_id).is_dir()
    assert json.loads(last) == [True, [], True]
