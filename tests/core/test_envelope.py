"""The envelope: a frozen prompt, a lifecycle changed only by new values, a runtime never
persisted; strict parsing (unknown fields, unknown schema majors) and the spec's limits."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from farro_core import job
from farro_core.envelope import (
    MAX_PROMPT_BYTES,
    SCHEMA_VERSION,
    JobSpec,
    Kept,
    Lifecycle,
    Prompt,
    Result,
    RubricVerdict,
    default_title,
    dump,
    dump_queued,
    load_lifecycle,
    load_prompt,
    parse_spec,
    queued,
)
from farro_core.errors import BadInput, Corrupt
from farro_core.identity import WorkerIdentity
from farro_core.root import Root
from farro_core.transitions import Actor, Status
from farro_core.work import Change, Work

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
JID = "01JD3ABCDEFGHJKMNPQRSTVWXY"


def make_prompt(**kw: object) -> Prompt:
    fields: dict[str, object] = {
        "id": JID,
        "title": "t",
        "prompt": "do it",
        "created_at": NOW,
        "created_by": "me@host",
    }
    fields.update(kw)
    return Prompt.model_validate(fields)


def make_lifecycle(**kw: object) -> Lifecycle:
    fields: dict[str, object] = {
        "id": JID,
        "status": "queued",
        "attempt": 0,
        "revision": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(kw)
    return Lifecycle.model_validate(fields)


# ------------------------------------------------------------------ immutability


def test_prompt_is_frozen() -> None:
    p = make_prompt()
    with pytest.raises(ValidationError, match="frozen"):
        p.prompt = "something else"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        p.priority = 5  # type: ignore[misc]
    assert p.prompt == "do it"


def test_lifecycle_is_frozen_and_model_copy_makes_a_new_value() -> None:
    lc = make_lifecycle()
    with pytest.raises(ValidationError, match="frozen"):
        lc.status = Status.KILLED  # type: ignore[misc]
    new = lc.model_copy(update={"status": Status.KILLED, "revision": 2})
    assert new is not lc
    assert (lc.status, lc.revision) == (Status.QUEUED, 1)
    assert (new.status, new.revision) == (Status.KILLED, 2)


def test_envelope_is_frozen(root: Root) -> None:
    env = job.create(root, parse_spec({"prompt": "x"}))
    with pytest.raises(ValidationError, match="frozen"):
        env.lifecycle = env.lifecycle  # type: ignore[misc]


# ------------------------------------------------------------------ strictness


@pytest.mark.parametrize("model", ["spec", "prompt", "lifecycle"])
def test_unknown_fields_refused(model: str) -> None:
    if model == "spec":
        with pytest.raises(BadInput, match="promtp: unknown field"):
            parse_spec({"prompt": "x", "promtp": "typo"})
    elif model == "prompt":
        with pytest.raises(ValidationError, match="Extra inputs"):
            make_prompt(extra=1)
    else:
        with pytest.raises(ValidationError, match="Extra inputs"):
            make_lifecycle(extra=1)


def test_unknown_fields_in_nested_rubric_refused() -> None:
    with pytest.raises(BadInput, match=r"rubric\.0\.chek: unknown field"):
        parse_spec({"prompt": "x", "rubric": [{"id": "a", "chek": "true"}]})


@pytest.mark.parametrize("version", ["2.0.0", "0.9.0", "10.0.0"])
def test_unknown_schema_major_refused_with_clear_message(version: str) -> None:
    with pytest.raises(BadInput, match=f"unsupported schema_version '{version}'.*reads 1.0.0"):
        parse_spec({"schema_version": version, "prompt": "x"})
    raw = json.loads(dump(make_lifecycle()))
    raw["schema_version"] = version
    with pytest.raises(Corrupt, match="unsupported schema_version"):
        load_lifecycle(json.dumps(raw).encode(), "x/job.json")
    rawp = json.loads(dump(make_prompt()))
    rawp["schema_version"] = version
    with pytest.raises(Corrupt, match="unsupported schema_version"):
        load_prompt(json.dumps(rawp).encode(), "x/prompt.json")


def test_newer_minor_is_read_and_malformed_version_refused() -> None:
    assert parse_spec({"schema_version": "1.7.3", "prompt": "x"}).schema_version == "1.7.3"
    with pytest.raises(BadInput, match=r"MAJOR\.MINOR\.PATCH"):
        parse_spec({"schema_version": "1.x", "prompt": "x"})


# ------------------------------------------------------------------ defaults and limits


def test_spec_defaults() -> None:
    s = parse_spec({"prompt": "hello"})
    assert s.rubric == []
    assert s.allowed_paths == ["**"]
    assert s.workspace is None and s.agent is None and s.id is None
    assert s.timeout_s == 3600 and s.max_attempts == 3 and s.priority == 0
    assert s.labels == {}
    r = parse_spec({"prompt": "x", "rubric": [{"id": "tests"}]}).rubric[0]
    assert (r.required, r.timeout_s, r.check, r.description) == (True, 600, None, "")


def test_created_prompt_gets_defaults_from_spec_and_settings(root: Root) -> None:
    env = job.create(root, parse_spec({"prompt": "\n\n  First line  \nsecond"}), created_by="ann")
    p = env.prompt
    assert p.title == "First line"
    assert p.schema_version == SCHEMA_VERSION
    assert p.created_by == "ann"
    assert p.timeout_s == root.settings.timeout_s and p.max_attempts == root.settings.max_attempts
    lc = env.lifecycle
    assert (lc.status, lc.attempt, lc.revision, lc.attempt_base) == (Status.QUEUED, 0, 1, 0)
    assert lc.claim is None and lc.result is None and lc.not_before is None


def test_title_default_and_explicit(root: Root) -> None:
    assert default_title("a\nb") == "a"
    assert default_title("x" * 300) == "x" * 200
    env = job.create(root, parse_spec({"prompt": "line one\nline two", "title": "Mine"}))
    assert env.prompt.title == "Mine"
    env = job.create(root, parse_spec({"prompt": "y" * 500}))
    assert env.prompt.title == "y" * 200


def test_prompt_limits() -> None:
    parse_spec({"prompt": "é" * (MAX_PROMPT_BYTES // 2)})  # exactly 1 MiB of UTF-8
    with pytest.raises(BadInput, match="exceeds 1048576 bytes"):
        parse_spec({"prompt": "é" * (MAX_PROMPT_BYTES // 2) + "x"})
    with pytest.raises(BadInput, match="empty"):
        parse_spec({"prompt": "  \n\t"})
    with pytest.raises(BadInput, match="prompt: Field required"):
        parse_spec({"title": "no prompt"})
    with pytest.raises(BadInput, match="NUL"):
        parse_spec({"prompt": "a\0b"})


def test_title_limit() -> None:
    assert parse_spec({"prompt": "x", "title": "t" * 200}).title == "t" * 200
    with pytest.raises(BadInput, match="title exceeds 200"):
        parse_spec({"prompt": "x", "title": "t" * 201})


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("timeout_s", 0, "greater than 0"),
        ("timeout_s", -1, "greater than 0"),
        ("max_attempts", 0, "greater than or equal to 1"),
        ("priority", "high", "integer"),
        ("allowed_paths", ["/etc/passwd"], "absolute"),
        ("allowed_paths", ["src/../.."], "'..'"),
        ("allowed_paths", [""], "empty"),
        ("id", "../x", "pattern"),
        ("id", "a/bcdefghij", "pattern"),
        ("id", "abcdefgh\n", "pattern"),
        ("agent", [], "non-empty"),
        ("agent", ["ok", ""], "non-empty"),
        ("agent", "  ", "empty"),
        ("workspace", " ", "non-empty"),
        ("rubric", [{"id": "a"}, {"id": "a"}], "unique"),
        ("rubric", [{"id": "../a"}], "rubric id"),
        ("rubric", [{"id": "ok\n"}], "rubric id"),
        ("rubric", [{"id": "a", "timeout_s": 0}], "greater than 0"),
        ("labels", {"": "v"}, "label key"),
        ("labels", {"k": 1}, "string"),
    ],
)
def test_bad_spec_fields_refused(field: str, value: object, why: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_spec({"prompt": "x", field: value})
    assert field in str(info.value) and why in str(info.value)


def test_spec_must_be_an_object() -> None:
    with pytest.raises(BadInput, match="must be an object, not list"):
        parse_spec(["prompt"])


def test_lifecycle_consistency_and_reason_one_line() -> None:
    with pytest.raises(ValidationError, match="attempt_base exceeds attempt"):
        make_lifecycle(attempt=1, attempt_base=2)
    assert make_lifecycle(reason="a\nb\t c").reason == "a b c"
    with pytest.raises(ValidationError):
        make_lifecycle(status="running")
    with pytest.raises(ValidationError):
        make_lifecycle(revision=0)


def test_attempts_left_counts_from_attempt_base() -> None:
    assert make_lifecycle(attempt=2).attempts_left(3) == 1
    assert make_lifecycle(attempt=5).attempts_left(3) == 0
    assert make_lifecycle(attempt=5, attempt_base=4).attempts_left(3) == 2


def test_roundtrip_through_json() -> None:
    lc = make_lifecycle(reason="r", attempt=2, attempt_base=1)
    assert load_lifecycle(dump(lc), "w") == lc
    p = make_prompt(rubric=[{"id": "t", "check": "true"}], labels={"a": "b"})
    assert load_prompt(dump(p), "w") == p


def test_corrupt_json_is_corrupt_not_a_crash() -> None:
    with pytest.raises(Corrupt, match="w"):
        load_lifecycle(b'{"id": ', "w")
    with pytest.raises(Corrupt):
        load_prompt(b"[]", "w")


# ------------------------------------------------------------------ persistence


def test_runtime_never_persisted_and_prompt_never_rewritten(root: Root) -> None:
    env = job.create(root, parse_spec({"prompt": "stable", "labels": {"k": "v"}}))
    pfile = env.path / "prompt.json"
    before = pfile.read_bytes()
    st0 = os.stat(pfile)
    assert stat.S_IMODE(st0.st_mode) == 0o444
    worker = WorkerIdentity.current("w1")
    for i in range(10):
        claimed = job.claim(root, worker)
        assert claimed is not None and claimed.id == env.id
        env = job.commit(claimed, Status.QUEUED, Actor.AGENT, f"retry {i}")
        job.release_claim(claimed)
        data = json.loads((env.path / "job.json").read_bytes())
        # every field but the kept mark, which is written only when set (farro keep)
        assert set(data) == set(Lifecycle.model_fields) - {"kept"}
        assert not {"runtime", "path", "root", "loaded_at", "prompt"} & set(data)
        assert str(root.path) not in (env.path / "job.json").read_text()
    st1 = os.stat(env.path / "prompt.json")
    assert (env.path / "prompt.json").read_bytes() == before
    assert (st1.st_ino, st1.st_mtime_ns) == (st0.st_ino, st0.st_mtime_ns)
    assert stat.S_IMODE(st1.st_mode) == 0o444
    assert env.lifecycle.revision == 21


def test_runtime_points_at_the_job_directory(root: Root) -> None:
    env = job.create(root, JobSpec(prompt="x"))
    assert env.runtime.root == root.path
    assert env.path == root.incoming / env.id
    assert env.id == env.lifecycle.id == env.prompt.id
    assert env.status is Status.QUEUED


# ------------------------------------------------------------------ what an attempt stores


def _result(**kw: object) -> Result:
    now = datetime.now(UTC)
    fields: dict[str, object] = dict(
        attempt=1, exit_code=0, started_at=now, finished_at=now, duration_s=0.0
    )
    return Result(**{**fields, **kw})  # type: ignore[arg-type]


def test_a_result_naming_a_non_utf8_file_still_makes_a_readable_job_json() -> None:
    """A path git or os.walk decoded with surrogateescape must not break the commit."""
    name = os.fsdecode(b"src/caf\xe9.txt")  # 'src/caf\udce9.txt'
    result = _result(violations=[name], error=f"touched {name}")
    lc = make_lifecycle(result=result, reason=f"failed: {name}")
    back = load_lifecycle(dump(lc), "w")
    assert back.result is not None
    assert back.result.violations == ["src/caf\ufffd.txt"]
    assert "\ufffd" in back.reason and "\ufffd" in (back.result.error or "")


def test_a_result_never_holds_a_report_nested_past_its_bound() -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(40):
        node["a"] = node = {}
    with pytest.raises(ValidationError, match="nested deeper than 16"):
        _result(report=deep)
    with pytest.raises(ValidationError, match="not finite"):
        _result(report={"cost": float("inf")})


# a new job's job.json is written without building Lifecycle (envelope.queued,
# dump_queued): it must be exactly what Lifecycle itself writes, and read back
CREATORS = [
    "alice@host",
    'é ü \u2028 a\tb\n c \x00 \x1f \x7f "q" \\ \udcff 😀 \x85 end',  # \udcff: a non-UTF-8 name
    "x" * 600,  # cut at 500 characters
    "  \t\n ",
]
TIMES = [
    NOW,
    datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
]


@pytest.mark.parametrize("by", CREATORS)
@pytest.mark.parametrize("at", TIMES, ids=str)
def test_a_new_jobs_job_json_is_the_one_lifecycle_writes(by: str, at: datetime) -> None:
    reason = f"created by {by}"
    own = Lifecycle(
        id=JID,
        status=Status.QUEUED,
        attempt=0,
        revision=1,
        reason=reason,
        created_at=at,
        updated_at=at,
    )
    made = queued(JID, reason, at)
    assert made == own and made.model_fields_set == own.model_fields_set
    raw = dump_queued(made)
    assert raw == dump(own)
    assert load_lifecycle(raw, "job.json") == own


def test_dump_queued_refuses_a_lifecycle_that_is_not_new() -> None:
    lc = queued(JID, "created by a", NOW)
    result = Result(
        attempt=1, exit_code=1, started_at=NOW, finished_at=NOW, duration_s=0.0, error="x"
    )
    with pytest.raises(ValueError, match="only a new job"):
        dump_queued(lc.model_copy(update={"result": result}))


RESULT = Result(
    attempt=1,
    exit_code=1,
    started_at=NOW,
    finished_at=NOW,
    duration_s=1.0,
    rubric=[RubricVerdict(id="r1", passed=False, state="failed", exit_code=1)],
    work=Work(branch="farro/x", changed=[Change(path="a.py", change="M", insertions=1)]),
)


def test_threads_first_reading_a_job_json_build_the_deferred_models_once(root: Root) -> None:
    """Claim, Result, Work... are built on first use; 16 threads of a fresh process
    reading a full job.json at once all get it (pydantic >= 2.14 builds under a lock:
    before, a thread could validate with the parent class's validator)."""
    env = job.create(root, JobSpec(prompt="p", agent=["true"]))
    me = WorkerIdentity.current("w")
    claimed = job.claim(root, me)
    assert claimed is not None
    done = job.commit(claimed, Status.FAILED, Actor.AGENT, "r", worker=me.name, result=RESULT)
    raw = dump(done.lifecycle)
    assert env.id == done.id and b'"work"' in raw and b'"claim"' in raw
    code = (
        "import json, sys, threading\n"
        "from farro_core.envelope import load_lifecycle\n"
        "raw = sys.stdin.buffer.read()\n"
        "gate, out = threading.Barrier(16), []\n"
        "def read():\n"
        "    gate.wait()\n"
        "    try:\n"
        "        out.append(load_lifecycle(raw, 'job.json').result.work.changed[0].path)\n"
        "    except Exception as exc:\n"
        "        out.append(repr(exc))\n"
        "threads = [threading.Thread(target=read) for _ in range(16)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
        "print(json.dumps(out))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], input=raw, capture_output=True, timeout=120, check=True
    )
    assert json.loads(p.stdout) == ["a.py"] * 16


def test_queued_refuses_an_invalid_id() -> None:
    with pytest.raises(ValueError, match="invalid job id"):
        queued("../x", "created by a", NOW)


# job.json as FARRO wrote it before the kept mark (farro keep) existed: a finished job
OLD_JOB_JSON = b"""{
  "schema_version": "1.0.0",
  "id": "01JD3ABCDEFGH12345678",
  "status": "failed",
  "attempt": 1,
  "revision": 3,
  "attempt_base": 0,
  "claim": {
    "worker": "w1",
    "host": "h",
    "boot_id": "b",
    "pid": 1,
    "pid_started_at": null,
    "token": "t",
    "claimed_at": "2026-01-02T03:04:05Z"
  },
  "not_before": null,
  "result": {
    "attempt": 1,
    "exit_code": 3,
    "started_at": "2026-01-02T03:04:05Z",
    "finished_at": "2026-01-02T03:04:05Z",
    "duration_s": 0.5,
    "timed_out": false,
    "killed": false,
    "rubric": [],
    "verdict": null,
    "violations": [],
    "log": "attempt-1.log",
    "base_commit": null,
    "work": null,
    "report": {},
    "error": null,
    "landed": null
  },
  "reason": "agent exited 3",
  "created_at": "2026-01-02T03:04:05Z",
  "updated_at": "2026-01-02T03:04:05Z"
}
"""


def test_a_job_json_from_before_the_kept_mark_loads_unmarked_and_is_written_back_as_it_was() -> (
    None
):
    lc = load_lifecycle(OLD_JOB_JSON, "job.json")
    assert lc.kept is None and lc.status == "failed" and lc.result is not None
    assert dump(lc) == OLD_JOB_JSON  # no field added: an older FARRO still reads it
    marked = lc.model_copy(update={"kept": Kept(at=NOW, by="ops")})
    raw = dump(marked)
    assert b'"kept": {' in raw and load_lifecycle(raw, "job.json") == marked
    with pytest.raises(Corrupt, match="kept"):  # a mark is an object, never a bare flag
        load_lifecycle(OLD_JOB_JSON.replace(b'"reason"', b'"kept": true, "reason"'), "job.json")


def test_dump_queued_refuses_a_marked_lifecycle() -> None:
    lc = queued(JID, "created by a", NOW)
    with pytest.raises(ValueError, match="only a new job"):
        dump_queued(lc.model_copy(update={"kept": Kept(at=NOW, by="ops")}))
