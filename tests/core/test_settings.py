"""Settings: defaults, then farro.toml, then FARRO_* env, then flags; unknown keys and bad
values refused with the file and key named; the agent's FARRO_JOB_ID etc. ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from farro_core.errors import BadInput
from farro_core.root import Root
from farro_core.settings import Settings, load_settings


def write_toml(root: Root, text: str) -> None:
    (root.path / "farro.toml").write_text(text)


def test_defaults_match_the_spec(root: Root) -> None:
    s = load_settings(root.path)
    assert s == Settings()
    assert (s.workers, s.timeout_s, s.max_attempts) == (2, 3600, 3)
    assert (s.heartbeat_s, s.stale_after_s, s.auto_requeue_stale) == (2, 30, False)
    assert (s.retry_backoff_s, s.watchdog_interval_s, s.shutdown_grace_s) == (5, 2, 10)
    assert s.log_max_bytes == 10 << 20 and s.max_queued == 0
    assert s.agent is None and s.planner is None


def test_precedence_toml_then_env_then_flags(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(root, "workers = 3\ntimeout_s = 10\nmax_attempts = 4\nheartbeat_s = 0.5\n")
    s = load_settings(root.path)
    assert (s.workers, s.timeout_s, s.max_attempts, s.heartbeat_s) == (3, 10, 4, 0.5)
    monkeypatch.setenv("FARRO_WORKERS", "5")
    monkeypatch.setenv("FARRO_TIMEOUT_S", "20.5")
    s = load_settings(root.path)
    assert (s.workers, s.timeout_s, s.max_attempts) == (5, 20.5, 4)
    s = load_settings(root.path, {"workers": 9, "max_attempts": None})
    assert (s.workers, s.timeout_s, s.max_attempts) == (9, 20.5, 4)  # None flag: not given


def test_env_bool_and_command(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARRO_AUTO_REQUEUE_STALE", "true")
    monkeypatch.setenv("FARRO_AGENT", "my-agent --fast")
    s = load_settings(root.path)
    assert s.auto_requeue_stale is True
    assert s.agent == "my-agent --fast" and s.agent_argv() == "my-agent --fast"


def test_toml_command_list(root: Root) -> None:
    write_toml(root, 'agent = ["claude", "-p", "{prompt_file}"]\n[keys]\nquit = "ctrl+q"\n')
    s = load_settings(root.path)
    assert s.agent_argv() == ["claude", "-p", "{prompt_file}"]
    assert s.keys == {"quit": "ctrl+q"}
    argv = Settings().agent_argv()
    assert isinstance(argv, list) and argv[-1] == "farro_core.demo_agent"


def test_unknown_key_refused_naming_file_and_key(root: Root) -> None:
    write_toml(root, "wokers = 3\n")
    with pytest.raises(BadInput, match=r"farro\.toml: wokers: unknown field") as info:
        load_settings(root.path)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("workers = -1", "workers"),
        ("workers = 'many'", "workers"),
        ("timeout_s = 0", "timeout_s"),
        ("max_attempts = 0", "max_attempts"),
        ("heartbeat_s = -2", "heartbeat_s"),
        ("log_max_bytes = 10", "log_max_bytes"),
        ("max_queued = -1", "max_queued"),
        ("auto_requeue_stale = 'perhaps'", "auto_requeue_stale"),
        # "" would name the workspace itself: every plain-directory job failed at run time
        ("ignore_file = ''", "ignore_file"),
        ("ignore_file = '  '", "ignore_file"),
        ('ignore_file = "a\\u0000b"', "ignore_file"),
    ],
)
def test_bad_value_refused(root: Root, text: str, key: str) -> None:
    write_toml(root, text + "\n")
    with pytest.raises(BadInput, match=key):
        load_settings(root.path)


def test_bad_env_value_refused_naming_the_variable(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARRO_STALE_AFTER_S", "soon")
    with pytest.raises(BadInput, match=r"FARRO_STALE_AFTER_S.*stale_after_s"):
        load_settings(root.path)


def test_empty_ignore_file_variable_refused(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARRO_IGNORE_FILE", "")
    with pytest.raises(BadInput, match=r"FARRO_IGNORE_FILE.*ignore_file"):
        load_settings(root.path)


def test_bad_flag_refused(root: Root) -> None:
    with pytest.raises(BadInput, match="workers"):
        load_settings(root.path, {"workers": -3})
    with pytest.raises(BadInput, match="unknown field"):
        load_settings(root.path, {"nonsense": 1})


def test_invalid_toml_refused(root: Root) -> None:
    write_toml(root, "workers = = 3\n")
    with pytest.raises(BadInput, match="invalid TOML"):
        load_settings(root.path)


def test_symlinked_toml_refused(root: Root, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.toml").write_text("workers = 3\n")
    (root.path / "farro.toml").symlink_to(tmp_path / "elsewhere.toml")
    with pytest.raises(BadInput, match="symlink"):
        load_settings(root.path)


def test_agent_environment_is_ignored(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "FARRO_JOB_ID": "01JD3ABCDEFGHJKMNPQRSTVWXY",
        "FARRO_JOB_DIR": "/x",
        "FARRO_PROMPT_FILE": "/x/prompt.json",
        "FARRO_ATTEMPT": "2",
        "FARRO_WORKSPACE": "/w",
        "FARRO_ROOT": "/r",
        "FARRO_CRASH_AT": "claim.locked",
        "FARRO_KEYS": "not a dict",
        "FARRO_WHATEVER": "x",
    }.items():
        monkeypatch.setenv(name, value)
    assert load_settings(root.path) == Settings()


def test_no_root_means_env_and_flags_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARRO_WORKERS", "4")
    assert load_settings(None).workers == 4
    assert load_settings(None, {"workers": 1}).workers == 1


def test_backoff_doubles_and_is_capped() -> None:
    s = Settings(retry_backoff_s=5, retry_backoff_max_s=300)
    assert [s.backoff(n) for n in (1, 2, 3, 4, 5, 6, 7, 8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert Settings(retry_backoff_s=0).backoff(5) == 0
    assert s.backoff(0) == 5


def test_settings_frozen() -> None:
    s = Settings()
    with pytest.raises(ValueError):
        s.workers = 3  # type: ignore[misc]


def test_oversize_or_binary_toml_refused(root: Root) -> None:
    (root.path / "farro.toml").write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    with pytest.raises(BadInput, match="larger than"):
        load_settings(root.path)
    (root.path / "farro.toml").write_bytes(b"workers = 3\n\xff\xfe\n")
    with pytest.raises(BadInput, match="invalid TOML"):
        load_settings(root.path)
