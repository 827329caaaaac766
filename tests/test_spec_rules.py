"""Spec rules that close gaps between the CLI, the inbox and the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farro_core.cli import main
from farro_core.envelope import parse_spec
from farro_core.errors import BadInput
from farro_core.job import load
from farro_core.root import Root


@pytest.mark.parametrize(
    "spec",
    [
        {"prompt": "x", "title": "a\0b"},
        {"prompt": "x", "labels": {"k": "v\0"}},
        {"prompt": "x", "rubric": [{"id": "t", "check": "true\0"}]},
        {"prompt": "x", "agent": ["echo", "a\0"]},
    ],
)
def test_nul_is_refused_anywhere(spec: dict[str, object]) -> None:
    with pytest.raises(BadInput, match="NUL"):
        parse_spec(spec)


def test_empty_rubric_check_is_refused() -> None:
    with pytest.raises(BadInput, match="rubric check may not be empty"):
        parse_spec({"prompt": "x", "rubric": [{"id": "t", "check": "  "}]})


def test_relative_workspace_is_refused_by_the_api() -> None:
    with pytest.raises(BadInput, match="relative"):
        parse_spec({"prompt": "x", "workspace": "src/project"})


def test_home_workspace_is_expanded() -> None:
    spec = parse_spec({"prompt": "x", "workspace": "~/project"})
    assert spec.workspace is not None and spec.workspace.startswith("/")


def test_relative_workspace_in_a_spec_file_is_relative_to_the_file(
    root: Root, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sub = tmp_path / "specs"
    sub.mkdir()
    (tmp_path / "repo").mkdir()
    spec_file = sub / "job.json"
    spec_file.write_text(json.dumps({"prompt": "x", "workspace": "../repo"}))
    code = main(["submit", "--root", str(root.path), str(spec_file)])
    assert code == 0
    job_id = capsys.readouterr().out.strip()
    assert load(root, job_id).prompt.workspace == str(tmp_path / "repo")
