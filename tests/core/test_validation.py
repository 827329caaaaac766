"""nul_at: one NUL finder for every parser of outside input (specs, request files)."""

from __future__ import annotations

import pytest

from farro_core.validation import nul_at


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("a\0b", ("", False)),
        ({"prompt": "ok", "labels": {"k": "v\0"}}, ("labels.k", False)),
        ({"agent": ["echo", "a\0"]}, ("agent.1", False)),
        ({"labels": {"k\0": "v"}}, ("labels", True)),
        ({"k\0": 1}, ("", True)),
        ({"jobs": ({"title": "\0"},)}, ("jobs.0.title", False)),
    ],
)
def test_names_where_the_nul_is(value: object, where: tuple[str, bool]) -> None:
    assert nul_at(value) == where


def test_none_in_clean_data() -> None:
    assert nul_at({"prompt": "x", "n": 3, "list": [1, "two", {"k": None}]}) is None


def test_has_nul_looks_into_keys_nested_values_and_models() -> None:
    from farro_core.envelope import RubricItem
    from farro_core.validation import has_nul

    assert not has_nul({"prompt": "x", "n": 3, "f": 1.5, "list": [None, True, ("a", {"k": "v"})]})
    assert has_nul({"list": [1, ("a", {"k": "v\0"})]})
    assert has_nul({"labels": {"k\0": "v"}})
    assert has_nul([RubricItem(id="r1", check="make\0")])
    assert not has_nul([RubricItem(id="r1", check="make")])


def test_a_nul_inside_a_nested_model_is_refused_when_a_job_is_built() -> None:
    """The model check walks the fields themselves (no dump): a rubric item made in Python too."""
    from pydantic import ValidationError

    from farro_core.envelope import JobSpec, RubricItem

    with pytest.raises(ValidationError, match="NUL"):
        JobSpec(prompt="x", rubric=[RubricItem(id="r1", check="make\0")])
