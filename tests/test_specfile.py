"""Request files: the one reader shared by `farro submit` and the manager's inbox."""

from __future__ import annotations

import json
from typing import Any

import pytest

from farro_core.errors import BadInput
from farro_core.specfile import (
    MAX_REQUEST_BYTES,
    decode,
    format_for,
    is_goal,
    load_specs,
    parse_request,
    spec_dicts,
)


def j(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_single_json_spec() -> None:
    (spec,) = load_specs(j({"prompt": "fix it", "priority": 3}), "a.json")
    assert spec.prompt == "fix it"
    assert spec.priority == 3
    assert spec.model_fields_set == {"prompt", "priority"}  # defaults stay settings-driven


def test_jobs_list_keeps_order() -> None:
    specs = load_specs(j({"jobs": [{"prompt": "one"}, {"prompt": "two"}]}), "b.json")
    assert [s.prompt for s in specs] == ["one", "two"]


def test_toml_single_and_jobs_tables() -> None:
    (one,) = load_specs(b'prompt = "hi"\ntimeout_s = 1.5\n', "x.toml")
    assert one.timeout_s == 1.5
    raw = b'[[jobs]]\nprompt = "a"\n\n[[jobs]]\nprompt = "b"\nlabels = { team = "core" }\n'
    specs = load_specs(raw, "many.TOML")
    assert [s.prompt for s in specs] == ["a", "b"]
    assert specs[1].labels == {"team": "core"}


def test_rubric_items_in_toml() -> None:
    raw = b'prompt = "p"\n[[rubric]]\nid = "tests"\ncheck = "pytest -q"\n'
    (spec,) = load_specs(raw, "r.toml")
    assert spec.rubric[0].id == "tests"
    assert spec.rubric[0].check == "pytest -q"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.toml", "toml"), ("A.TOML", "toml"), ("a.json", "json"), ("<stdin>", "json")],
)
def test_format_by_suffix(name: str, fmt: str) -> None:
    assert format_for(name) == fmt


def test_explicit_format_overrides_the_suffix() -> None:
    (spec,) = load_specs(b'prompt = "from stdin"\n', "<stdin>", "toml")
    assert spec.prompt == "from stdin"
    with pytest.raises(BadInput, match="invalid JSON"):
        load_specs(b'prompt = "x"\n', "<stdin>")


def test_goal_is_detected_and_refused_for_submit() -> None:
    data = decode(j({"goal": "make the tests pass"}), "g.json")
    assert is_goal(data)
    assert not is_goal({"prompt": "x"})
    assert not is_goal([{"goal": "x"}])
    with pytest.raises(BadInput, match=r"^g\.json: a goal request goes in inbox/"):
        spec_dicts(data, "g.json")


def test_parse_request_returns_unvalidated_dicts() -> None:
    assert parse_request(j({"jobs": [{"prompt": 1}]}), "r.json") == [{"prompt": 1}]


def test_utf8_bom_is_accepted() -> None:
    (spec,) = load_specs(b"\xef\xbb\xbf" + j({"prompt": "bom"}), "bom.json")
    assert spec.prompt == "bom"


BAD: list[tuple[str, bytes, str]] = [
    ("syntax.json", b'{"prompt": "x"', "invalid JSON"),
    ("empty.json", b"", "empty JSON document"),
    ("blank.toml", b"  \n", "empty TOML document"),
    ("latin1.json", b'{"prompt": "caf\xe9"}', "not UTF-8"),
    ("dup.json", b'{"prompt": "a", "prompt": "b"}', "duplicate key 'prompt'"),
    ("nan.json", b'{"prompt": "a", "timeout_s": NaN}', "NaN is not valid JSON"),
    ("list.json", b'[{"prompt": "a"}]', "not a list"),
    ("str.json", b'"prompt"', "not a string"),
    ("jobs.json", j({"jobs": {"prompt": "a"}}), '"jobs" must be a list'),
    ("none.json", j({"jobs": []}), '"jobs" is empty'),
    ("item.json", j({"jobs": [{"prompt": "a"}, 3]}), "jobs[1] must be a job spec object"),
    ("extra.json", j({"jobs": [{"prompt": "a"}], "x": 1}), "unknown top-level field 'x'"),
    ("field.json", j({"jobs": [{"prompt": "a"}, {"promt": "b"}]}), "promt: unknown field"),
    ("ids.json", j({"jobs": [{"prompt": "a", "id": "job-0001"}] * 2}), "job-0001 is given twice"),
    ("nul.json", j({"prompt": "a", "labels": {"k": "v\u0000"}}), "labels.k: may not contain NUL"),
    ("nulkey.json", j({"prompt": "a", "labels": {"k\u0000": "v"}}), "a key may not contain NUL"),
    ("bad.toml", b"prompt = ", "invalid TOML"),
    ("date.toml", b'prompt = "a"\ntitle = 1979-05-27\n', "title"),
    ("goal.toml", b'goal = "plan it"\n', "goal request"),
]


@pytest.mark.parametrize(("name", "raw", "needle"), BAD, ids=[b[0] for b in BAD])
def test_bad_requests_are_one_line_naming_the_file(name: str, raw: bytes, needle: str) -> None:
    with pytest.raises(BadInput) as info:
        load_specs(raw, name)
    msg = str(info.value)
    assert msg.startswith(f"{name}: "), msg
    assert needle in msg
    assert "\n" not in msg


def test_oversized_request_is_refused_before_parsing() -> None:
    with pytest.raises(BadInput, match="larger than"):
        decode(b" " * (MAX_REQUEST_BYTES + 1), "huge.json")


def test_deeply_nested_json_is_bad_input_not_a_crash() -> None:
    with pytest.raises(BadInput, match=r"deep\.json"):
        load_specs(b"[" * 100_000 + b"]" * 100_000, "deep.json")
