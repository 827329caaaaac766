"""``FARRO_ENV_ALLOW`` / ``FARRO_ENV_DENY`` set but empty are unset, not "nothing"."""

from __future__ import annotations

from pathlib import Path

import pytest

from farro_core.settings import load_settings

ENV = {"PATH": "/bin", "HOME": "/home/op", "AWS_SECRET": "s3cr3t", "FARRO_JOB_ID": "J1"}


@pytest.mark.parametrize("empty", ["", " ", ","])
def test_an_empty_allow_list_is_the_default_every_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    monkeypatch.setenv("FARRO_ENV_ALLOW", empty)
    settings = load_settings(tmp_path)
    assert settings.env_allow is None
    assert settings.passed_env(ENV) == ENV


def test_an_empty_allow_list_keeps_farro_toml_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "farro.toml").write_text('env_allow = ["PATH"]\nenv_deny = ["AWS_*"]\n')
    monkeypatch.setenv("FARRO_ENV_ALLOW", "")
    monkeypatch.setenv("FARRO_ENV_DENY", "")  # would have passed AWS_* to every agent
    settings = load_settings(tmp_path)
    assert settings.passed_env(ENV) == {"PATH": "/bin", "FARRO_JOB_ID": "J1"}


def test_allowing_only_farro_variables_is_the_explicit_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARRO_ENV_ALLOW", "FARRO_*")
    assert load_settings(tmp_path).passed_env(ENV) == {"FARRO_JOB_ID": "J1"}
    monkeypatch.delenv("FARRO_ENV_ALLOW")
    (tmp_path / "farro.toml").write_text("env_allow = []\n")
    assert load_settings(tmp_path).passed_env(ENV) == {"FARRO_JOB_ID": "J1"}
