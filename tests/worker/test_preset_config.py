"""A preset that lacks its key or config on this host costs no attempt (issue 12).

`farro submit` and the inbox refuse the job with what is missing; a worker whose
host lacks it leaves the job queued, untouched, and says why (its status file,
`farro stats`, `farro agents`). No CLI runs: the checks read only the
environment and the CLIs' config files, so an empty ``CODEX_HOME`` is enough.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farro_core import inbox
from farro_core.envelope import AgentPreset
from farro_core.root import Root

from .helpers import load, make_worker, submit

FARRO = str(Path(sys.executable).with_name("farro"))
KEYS = ("ANTHROPIC_", "CLAUDE_", "OPENAI_", "CODEX_", "GEMINI_", "GOOGLE_")


def farro(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FARRO, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No key, no CLI config, no CLI on PATH: every preset lacks something here."""
    for name in list(os.environ):
        if name.startswith(KEYS) or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    (tmp_path / "home").mkdir()
    (tmp_path / "codex").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "codex"))
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "codex").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    return tmp_path / "codex"


def test_submit_refuses_a_batch_whose_preset_this_host_lacks_and_creates_nothing(
    wroot: Root, tmp_path: Path, bare: Path
) -> None:
    spec = tmp_path / "batch.json"
    spec.write_text(json.dumps({"jobs": [{"prompt": "a"}, {"prompt": "b", "agent": "codex"}]}))
    r = farro("submit", "--root", str(wroot.path), str(spec))
    assert r.returncode == 2, r.stdout
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith(f"farro: {spec}: jobs[1]: agent preset codex: no model provider (")
    assert f"{bare}/config.toml not found" in r.stderr and "OPENAI_API_KEY" in r.stderr
    assert wroot.ids("incoming") == [] and r.stdout == ""
    # submitted from a host other than the workers': the check is left to them
    r = farro("submit", "--root", str(wroot.path), "--no-agent-check", str(spec))
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()) == sorted(wroot.ids("incoming")) and len(r.stdout.split()) == 2
    # a table no CLI takes is refused whatever the host
    table = '{"preset": "codex", "allow_tools": ["Bash"]}'
    r = farro("submit", "--root", str(wroot.path), "--no-agent-check", "-p", "x", "--agent", table)
    assert r.returncode == 2 and "agent preset codex takes no allow_tools" in r.stderr


def test_submit_checks_the_roots_agent_unless_agent_check_is_off(
    tmp_path: Path, bare: Path
) -> None:
    root = Root.init(tmp_path / "root")
    (root.path / "farro.toml").write_text('agent = "gemini"\n')
    r = farro("submit", "--root", str(root.path), "-p", "x")
    assert r.returncode == 2, r.stdout
    assert r.stderr.startswith("farro: --prompt: agent preset gemini: no key (")
    assert "GEMINI_API_KEY" in r.stderr and r.stderr.endswith("(the root's agent setting)\n")
    r = farro("submit", "--root", str(root.path), "-p", "x", "--agent", "true")
    assert r.returncode == 0, r.stderr  # its own agent, no preset: nothing to check
    (root.path / "farro.toml").write_text('agent = "gemini"\nagent_check = false\n')
    r = farro("submit", "--root", str(root.path), "-p", "x")
    assert r.returncode == 0, r.stderr
    assert len(root.ids("incoming")) == 2


def test_the_inbox_rejects_a_request_whose_preset_this_host_lacks(wroot: Root, bare: Path) -> None:
    body = {"jobs": [{"prompt": "a"}, {"prompt": "b", "agent": {"preset": "codex", "model": "m"}}]}
    tmp = wroot.inbox / ".ask.json.tmp"
    tmp.write_text(json.dumps(body))
    os.rename(tmp, wroot.inbox / "ask.json")
    (result,) = inbox.ingest(wroot)
    assert result.outcome == "rejected" and result.jobs == ()
    error = (wroot.rejected / "ask.json.error.txt").read_text()
    assert error.startswith("ask.json: jobs[1]: agent preset codex: no model provider (")
    assert f"{bare}/config.toml not found" in error
    assert wroot.ids("incoming") == []


def test_a_worker_leaves_a_job_its_host_cannot_run_without_spending_an_attempt(
    wroot: Root, bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_codex = submit(wroot, "needs codex", agent="codex", priority=5).id
    plain = submit(wroot, "plain", agent=["true"]).id
    w = make_worker(wroot)
    out = w.run_once()  # the codex job comes first, but this host lacks its config
    assert out is not None and out.id == plain and out.status == "succeeded"
    assert w.run_once() is None
    left = load(wroot, needs_codex)
    assert left.status == "queued" and left.lifecycle.attempt == 0
    assert left.lifecycle.result is None and not (left.path / "logs").exists()
    status = json.loads((wroot.workers_dir / "w1.json").read_text())
    assert status["passing"]["codex"].startswith("agent preset codex: no model provider (")
    assert w.status().passing == (("codex", status["passing"]["codex"]),)  # the console's
    # why the job waits, where the operator looks
    r = farro("stats", "--root", str(wroot.path))
    assert r.returncode == 0, r.stderr
    assert "  codex by w1 (every running worker: none will run them): agent preset codex: " in (
        r.stdout
    )
    r = farro("agents", "--root", str(wroot.path))
    assert r.returncode == 0, r.stderr
    assert "left by  workers w1, whose host lacks: agent preset codex: no model provider" in (
        r.stdout
    )
    r = farro("show", "--root", str(wroot.path), needs_codex)
    assert r.returncode == 0, r.stderr
    assert "\nleft       by workers w1: agent preset codex: no model provider (" in r.stdout
    # the configuration arrives: the next scan claims the job, at its first attempt
    (bare / "config.toml").write_text('model_provider = "p"\n[model_providers.p]\nenv_key = "K"\n')
    monkeypatch.setenv("K", "key")
    out = w.run_once()
    assert out is not None and out.id == needs_codex and out.lifecycle.attempt == 1
    status = json.loads((wroot.workers_dir / "w1.json").read_text())
    assert status["passing"] == {} and w.status().passing == ()


def test_a_job_naming_no_agent_is_left_when_the_agent_settings_preset_is_missing(
    wroot: Root, bare: Path
) -> None:
    job_id = submit(wroot, "runs the agent setting's").id
    w = make_worker(wroot, agent=AgentPreset(preset="gemini"))
    assert w.run_once() is None
    left = load(wroot, job_id)
    assert left.status == "queued" and left.lifecycle.attempt == 0
    status = json.loads((wroot.workers_dir / "w1.json").read_text())
    assert status["passing"]["gemini"].startswith("agent preset gemini: no key (")


def test_a_worker_says_what_it_passes_once_not_at_every_scan(
    wroot: Root, bare: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Left jobs stay queued for hours: the scans that find them again log nothing and
    leave the status file as it was (its inode: every write replaces it)."""
    for i in range(20):
        submit(wroot, f"needs codex {i}", agent="codex")
    w = make_worker(wroot)
    with caplog.at_level("WARNING", logger="farro"):
        assert w.run_once() is None
        status = wroot.workers_dir / "w1.json"
        written = status.stat().st_ino
        for _ in range(3):
            assert w.run_once() is None
    said = [r for r in caplog.records if "leaves queued codex jobs" in r.getMessage()]
    assert len(said) == 1
    assert status.stat().st_ino == written
    assert sorted(json.loads(status.read_text())["passing"]) == ["codex"]


def test_an_id_that_comes_back_is_judged_by_its_new_prompt_not_the_one_passed_before(
    wroot: Root, bare: Path
) -> None:
    """A left job quarantined and created again under its id (another process) with an
    agent this host runs: the worker's memory of the old job's preset must not leave it."""
    from farro_core.quarantine import quarantine

    job_id = submit(wroot, "needs codex", agent="codex", id="same-id-01").id
    w = make_worker(wroot)
    assert w.run_once() is None  # passed by: codex lacks its config here
    quarantine(wroot, wroot.incoming / job_id, "test: taken aside")
    again = submit(wroot, "runs here", agent=["true"], id=job_id, priority=3)
    assert again.id == job_id
    out = w.run_once()
    assert out is not None and out.id == job_id and out.status == "succeeded"
    assert out.prompt.prompt == "runs here"
