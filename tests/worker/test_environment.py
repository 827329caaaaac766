"""What agents, checks and the planner receive: read from their real environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farro_core.errors import BadInput
from farro_core.planner import run_planner
from farro_core.root import Root
from farro_core.runner import GIT_CONFIG_IDENTITY, GIT_IDENTITY
from farro_core.settings import Settings, load_settings

from .helpers import PYTHON, make_worker, submit

DUMP = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "s3cret",
    "AWS_PROFILE": "prod",
    "GITHUB_TOKEN": "ghp_x",
    "LANG": "C.UTF-8",
    "FARRO_CUSTOM": "mine",
    "MY_TOOL_HOME": "/opt/tool",
}


@pytest.fixture(autouse=True)
def _secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def run_job(
    root: Root, tmp_path: Path, **settings: object
) -> tuple[dict[str, str], dict[str, str]]:
    """The environment the agent and its rubric check really had."""
    agent_file, check_file = tmp_path / "agent.json", tmp_path / "check.json"
    check = f'{PYTHON} -c "{DUMP}" {check_file}'
    submit(
        root,
        "x",
        agent=[PYTHON, "-c", DUMP, str(agent_file)],
        rubric=[{"id": "env", "check": check}],
    )
    out = make_worker(root, **settings).run_once()  # type: ignore[arg-type]
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    return json.loads(agent_file.read_text()), json.loads(check_file.read_text())


def farro_vars(env: dict[str, str]) -> set[str]:
    return {k for k in env if k.startswith("FARRO_")}


JOB_VARS = {
    "FARRO_JOB_ID",
    "FARRO_JOB_DIR",
    "FARRO_PROMPT_FILE",
    "FARRO_ATTEMPT",
    "FARRO_WORKSPACE",
    "FARRO_RESULT_FILE",
    "FARRO_WORKER",
    "FARRO_UNIT_TOKEN",
}


def test_by_default_the_whole_worker_environment_passes(wroot: Root, tmp_path: Path) -> None:
    agent, check = run_job(wroot, tmp_path)
    for env in (agent, check):
        assert all(env[k] == v for k, v in SECRETS.items())
        assert farro_vars(env) >= JOB_VARS and env["PYTHONUNBUFFERED"] == "1"
        # a git identity, so no agent writes one into the repository's shared .git/config
        assert all(env[k] == v for k, v in GIT_IDENTITY.items())
        assert env["GIT_CONFIG_KEY_0"] == "user.name" and env["GIT_CONFIG_VALUE_0"] == "farro"
    assert agent["FARRO_UNIT_TOKEN"] != check["FARRO_UNIT_TOKEN"], "a unit each"


def test_a_git_identity_of_the_worker_is_kept(
    wroot: Root, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada")
    agent, _ = run_job(wroot, tmp_path)
    assert agent["GIT_AUTHOR_NAME"] == "Ada" and agent["GIT_COMMITTER_NAME"] == "farro"


def test_env_deny_keeps_cloud_credentials_away(wroot: Root, tmp_path: Path) -> None:
    agent, check = run_job(wroot, tmp_path, env_deny=["AWS_*", "*_TOKEN"])
    for env in (agent, check):
        assert not {"AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "GITHUB_TOKEN"} & set(env)
        assert env["LANG"] == "C.UTF-8" and env["MY_TOOL_HOME"] == "/opt/tool" and "PATH" in env
        # FARRO_* always passes, even where a deny pattern matches (FARRO_UNIT_TOKEN)
        assert JOB_VARS | {"FARRO_CUSTOM"} <= farro_vars(env)


def test_env_allow_passes_only_what_it_names(wroot: Root, tmp_path: Path) -> None:
    agent, check = run_job(wroot, tmp_path, env_allow=["PATH", "LANG", "MY_*"], env_deny=["MY_*"])
    for env in (agent, check):
        given = {"PATH", "LANG", "PYTHONUNBUFFERED", "PWD", *GIT_IDENTITY, *GIT_CONFIG_IDENTITY}
        assert set(env) - farro_vars(env) <= given
        assert "HOME" not in env and "AWS_PROFILE" not in env and "MY_TOOL_HOME" not in env
        assert JOB_VARS | {"FARRO_CUSTOM"} <= farro_vars(env)


def test_the_planner_gets_the_same_environment(tmp_path: Path) -> None:
    dump = tmp_path / "planner.json"
    planner = [PYTHON, "-c", DUMP + '; print(\'[{"prompt": "p"}]\')', str(dump)]
    settings = Settings(env_deny=["AWS_*"], env_allow=["PATH", "AWS_*", "GITHUB_TOKEN"])
    plan = run_planner(planner, "goal", env={"FARRO_GOAL_FILE": "g.json"}, settings=settings)
    assert plan == [{"prompt": "p"}]
    env = json.loads(dump.read_text())
    # LC_CTYPE: Python's own locale coercion in the planner, without LANG; PWD: the shell
    # that joins the cgroup sets it to the working directory
    assert (
        {"PATH", "GITHUB_TOKEN"}
        <= set(env) - farro_vars(env)
        <= {"PATH", "GITHUB_TOKEN", "LC_CTYPE", "PWD"}
    )
    assert {"FARRO_GOAL_FILE", "FARRO_UNIT_TOKEN", "FARRO_CUSTOM"} <= farro_vars(env)


def test_lists_from_environment_variables_and_bad_patterns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARRO_ENV_DENY", "AWS_*, GCP_* ,")
    monkeypatch.setenv("FARRO_ENV_ALLOW", "PATH")
    s = load_settings(None)
    assert s.env_deny == ["AWS_*", "GCP_*"] and s.env_allow == ["PATH"]
    monkeypatch.delenv("FARRO_ENV_DENY")
    monkeypatch.delenv("FARRO_ENV_ALLOW")
    (tmp_path / "farro.toml").write_text('env_deny = ["AWS_KEY=x"]\n')
    with pytest.raises(BadInput, match="env_deny"):
        load_settings(tmp_path)
