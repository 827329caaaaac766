"""The small public API at the package top, used the way the review describes: open a root,
load an envelope, look at it, commit a change, see it on disk. Plus the error contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import farro_core as farro
from farro_core import errors
from farro_core.errors import BadInput, FarroError, RootError


def test_python_prompt_session(tmp_path: Path) -> None:
    farro.init_root(tmp_path / "q")
    root = farro.open_root(tmp_path / "q")
    made = farro.submit(root, "write the docs\nall of them", priority=2)
    job = farro.load(root, made.id)
    assert isinstance(job, farro.Envelope)
    assert (job.lifecycle.status, job.prompt.title) == ("queued", "write the docs")
    job = farro.commit(job, "killed", actor="operator", reason="not needed")
    on_disk = json.loads((root.done / made.id / "job.json").read_text())
    assert (on_disk["status"], on_disk["reason"], on_disk["revision"]) == (
        "killed",
        "not needed",
        2,
    )
    with pytest.raises(farro.IllegalTransition):
        farro.commit(job, "queued", actor="agent", reason="no")


def test_submit_validates_like_any_spec(tmp_path: Path) -> None:
    root = farro.init_root(tmp_path / "q")
    with pytest.raises(BadInput, match="unknown field"):
        farro.submit(root, "x", priorty=3)
    with pytest.raises(BadInput):
        farro.submit(root, "")
    assert root.ids("incoming") == []


def test_open_root_uses_env_and_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    farro.init_root(tmp_path / "q")
    monkeypatch.setenv("FARRO_ROOT", str(tmp_path / "q"))
    root = farro.open_root(workers=5)
    assert root.path == tmp_path / "q" and root.settings.workers == 5
    with pytest.raises(RootError):
        farro.open_root(tmp_path / "missing")


def test_every_export_resolves() -> None:
    for name in farro.__all__:
        assert getattr(farro, name) is not None, name
    with pytest.raises(AttributeError):
        _ = farro.no_such_thing


def test_error_exit_codes() -> None:
    assert FarroError.exit_code == 1
    refused: list[type[FarroError]] = [errors.Refused, errors.NotFound, errors.AlreadyExists]
    refused += [errors.IllegalTransition, errors.Conflict, errors.QueueFull]
    for cls in refused:
        assert issubclass(cls, errors.Refused) and cls.exit_code == 1
    for cls in (errors.BadInput, errors.RootError):
        assert cls.exit_code == 2
    assert issubclass(errors.Corrupt, FarroError) and issubclass(errors.DurabilityError, FarroError)
