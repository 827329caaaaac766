"""The bad-input corpus: every case is refused with exit 2 and one line, and leaves nothing.

Each spec file goes through both doors: `farro submit` (exit 2, one line, no
traceback, no "internal error") and the manager's inbox (rejected beside its
reason, once: the pass goes on to a good file, and a second pass has nothing
left to retry). Cases cover nesting 1,000 and 100,000 deep, TOML bombs, lone
surrogates, non-finite numbers and wrongly typed values, which are never coerced.

"Nothing half-made" is checked, not assumed: tmp/, incoming/ and the audit log
are snapshotted around each run. On-disk corruption is the other half: `show`
refuses it in one line, `ls` survives it, and `fsck --repair` moves it to
quarantine/ beside a reason file, deleting nothing (not even a symlink's target).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from farro_core import inbox, job
from farro_core.cli import main
from farro_core.envelope import parse_spec
from farro_core.root import Root


@dataclass
class Ran:
    code: int
    out: str
    err: str


def cli(*args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> Ran:
    with CliRunner().isolation(input=input, env=env) as (out, err, _):
        code = main(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


def assert_one_line(r: Ran) -> None:
    assert r.err.endswith("\n") and r.err.count("\n") == 1, repr(r.err)
    assert r.err.startswith("farro: "), r.err
    assert "Traceback" not in r.err and "Error:" not in r.err
    assert "internal error" not in r.err


def state(root: Root) -> tuple[list[str], list[str], bytes]:
    audit = root.audit_file.read_bytes() if root.audit_file.exists() else b""
    return sorted(os.listdir(root.tmp)), sorted(os.listdir(root.incoming)), audit


def j(data: Any) -> bytes:
    return json.dumps(data).encode()


def spec(**fields: Any) -> bytes:
    return j({"prompt": "do it", **fields})


# ---------------------------------------------------------------- spec files

BIG = "x" * (2 << 20)
DEEP_LIST = b"[" * 1000 + b"]" * 1000
DEEP_OBJ = b'{"a": ' * 1000 + b"1" + b"}" * 1000
DEEP_TOML_TABLE = b"{a = " * 1000 + b"1" + b"}" * 1000
DEEP_DOTTED = b".".join([b"a"] * 1000)

SPEC_FILES: list[tuple[str, str, bytes]] = [
    ("json-unterminated", "a.json", b'{"prompt": "x"'),
    ("json-trailing-comma", "a.json", b'{"prompt": "x",}'),
    ("json-single-quotes", "a.json", b"{'prompt': 'x'}"),
    ("json-empty-file", "a.json", b""),
    ("json-whitespace", "a.json", b" \n\t "),
    ("json-not-utf8", "a.json", b'{"prompt": "\xff\xfe"}'),
    ("json-top-list", "a.json", j([{"prompt": "x"}])),
    ("json-top-string", "a.json", j("do it")),
    ("json-top-number", "a.json", b"42"),
    ("json-top-null", "a.json", b"null"),
    ("json-duplicate-key", "a.json", b'{"prompt": "a", "prompt": "b"}'),
    ("json-nan", "a.json", b'{"prompt": "a", "timeout_s": NaN}'),
    ("json-infinity", "a.json", b'{"prompt": "a", "timeout_s": Infinity}'),
    ("missing-prompt", "a.json", j({})),
    ("prompt-int", "a.json", j({"prompt": 5})),
    ("prompt-list", "a.json", j({"prompt": ["a"]})),
    ("prompt-empty", "a.json", j({"prompt": ""})),
    ("prompt-blank", "a.json", j({"prompt": "  \n "})),
    ("prompt-2mib", "a.json", j({"prompt": BIG})),
    ("prompt-nul", "a.json", j({"prompt": "a\u0000b"})),
    ("unknown-field", "a.json", spec(promt="typo")),
    ("unknown-rubric-field", "a.json", spec(rubric=[{"id": "r1", "chek": "true"}])),
    ("title-too-long", "a.json", spec(title="t" * 201)),
    ("title-list", "a.json", spec(title=["t"])),
    ("title-nul", "a.json", spec(title="a\u0000")),
    ("id-dotdot", "a.json", spec(id="../x")),
    ("id-slash", "a.json", spec(id="a/b")),
    ("id-hidden", "a.json", spec(id=".hidden")),
    ("id-too-short", "a.json", spec(id="abc1234")),
    ("id-too-long", "a.json", spec(id="a" * 65)),
    ("id-newline", "a.json", spec(id="abcdefgh\n")),
    ("id-empty", "a.json", spec(id="")),
    ("id-int", "a.json", spec(id=12345678)),
    ("allowed-absolute", "a.json", spec(allowed_paths=["/etc/passwd"])),
    ("allowed-dotdot", "a.json", spec(allowed_paths=["../outside"])),
    ("allowed-inner-dotdot", "a.json", spec(allowed_paths=["src/../../x"])),
    ("allowed-home", "a.json", spec(allowed_paths=["~/x"])),
    ("allowed-empty", "a.json", spec(allowed_paths=[""])),
    ("allowed-string", "a.json", spec(allowed_paths="src/**")),
    ("allowed-nul", "a.json", spec(allowed_paths=["src/\u0000"])),
    ("schema-major-2", "a.json", spec(schema_version="2.0.0")),
    ("schema-garbage", "a.json", spec(schema_version="one")),
    ("timeout-zero", "a.json", spec(timeout_s=0)),
    ("timeout-negative", "a.json", spec(timeout_s=-5)),
    ("timeout-string", "a.json", spec(timeout_s="soon")),
    ("max-attempts-zero", "a.json", spec(max_attempts=0)),
    ("max-attempts-fraction", "a.json", spec(max_attempts=1.5)),
    ("priority-string", "a.json", spec(priority="high")),
    ("rubric-duplicate-ids", "a.json", spec(rubric=[{"id": "r1"}, {"id": "r1"}])),
    ("rubric-bad-id", "a.json", spec(rubric=[{"id": "bad id"}])),
    ("rubric-zero-timeout", "a.json", spec(rubric=[{"id": "r1", "timeout_s": 0}])),
    ("rubric-not-list", "a.json", spec(rubric={"id": "r1"})),
    ("rubric-missing-id", "a.json", spec(rubric=[{"check": "true"}])),
    ("rubric-check-nul", "a.json", spec(rubric=[{"id": "r1", "check": "true\u0000"}])),
    ("labels-list", "a.json", spec(labels=["a=b"])),
    ("labels-int-value", "a.json", spec(labels={"a": 1})),
    ("labels-empty-key", "a.json", spec(labels={"": "v"})),
    ("labels-nul-value", "a.json", spec(labels={"k": "v\u0000"})),
    ("agent-empty-list", "a.json", spec(agent=[])),
    ("agent-empty-string", "a.json", spec(agent="")),
    ("agent-nul", "a.json", spec(agent=["run", "a\u0000"])),
    ("workspace-empty", "a.json", spec(workspace="")),
    ("workspace-nul", "a.json", spec(workspace="/w\u0000")),
    ("goal-request", "a.json", j({"goal": "make the tests pass"})),
    ("jobs-not-list", "a.json", j({"jobs": {"prompt": "x"}})),
    ("jobs-empty", "a.json", j({"jobs": []})),
    ("jobs-second-bad", "a.json", j({"jobs": [{"prompt": "ok"}, {"prompt": ""}]})),
    ("jobs-item-string", "a.json", j({"jobs": [{"prompt": "ok"}, "x"]})),
    ("jobs-extra-key", "a.json", j({"jobs": [{"prompt": "ok"}], "priority": 1})),
    ("jobs-duplicate-ids", "a.json", j({"jobs": [{"prompt": "a", "id": "job-00000001"}] * 2})),
    ("toml-invalid", "a.toml", b"prompt = "),
    ("toml-unclosed-table", "a.toml", b'[[jobs]\nprompt = "x"\n'),
    ("toml-wrong-type", "a.toml", b'prompt = "x"\ntimeout_s = "later"\n'),
    ("toml-unknown-field", "a.toml", b'[[jobs]]\nprompt = "x"\npriorty = 1\n'),
    ("toml-date-title", "a.toml", b'prompt = "x"\ntitle = 2024-01-01\n'),
    ("toml-goal", "a.toml", b'goal = "plan"\n'),
    ("json-in-toml-file", "a.toml", j({"prompt": "x"})),
    # nesting: a parser or any recursive check would raise RecursionError
    ("json-nested-1000-lists", "a.json", b'{"prompt": "x", "labels": ' + DEEP_LIST + b"}"),
    ("json-nested-1000-objects", "a.json", b'{"prompt": "x", "labels": ' + DEEP_OBJ + b"}"),
    ("json-nested-100000", "a.json", b"[" * 100_000 + b"]" * 100_000),
    ("json-nested-in-rubric", "a.json", b'{"prompt": "x", "rubric": [' + DEEP_OBJ + b"]}"),
    ("json-nested-in-jobs", "a.json", b'{"jobs": [{"prompt": "x", "agent": ' + DEEP_LIST + b"}]}"),
    ("json-nested-33", "a.json", b'{"prompt": "x", "labels": ' + b"[" * 33 + b"]" * 33 + b"}"),
    ("toml-nested-arrays", "a.toml", b'prompt = "x"\nlabels = ' + DEEP_LIST + b"\n"),
    ("toml-nested-inline-tables", "a.toml", b'prompt = "x"\nx = ' + DEEP_TOML_TABLE + b"\n"),
    ("toml-nested-dotted-keys", "a.toml", b'prompt = "x"\n' + DEEP_DOTTED + b' = "v"\n'),
    ("toml-nested-table-header", "a.toml", b'prompt = "x"\n[' + DEEP_DOTTED + b"]\n"),
    ("toml-nested-array-tables", "a.toml", b"[[" + DEEP_DOTTED + b']]\nprompt = "x"\n'),
    ("toml-nested-in-jobs", "a.toml", b'[[jobs]]\nprompt = "x"\nlabels = ' + DEEP_LIST + b"\n"),
    # lone surrogates: valid JSON escapes, but no text
    ("surrogate-prompt", "a.json", b'{"prompt": "do \\ud800 it"}'),
    ("surrogate-low", "a.json", b'{"prompt": "\\udc00"}'),
    ("surrogate-title", "a.json", b'{"prompt": "x", "title": "\\udbff"}'),
    ("surrogate-label-key", "a.json", b'{"prompt": "x", "labels": {"\\ud800": "v"}}'),
    ("surrogate-label-value", "a.json", b'{"prompt": "x", "labels": {"k": "\\ud800"}}'),
    ("surrogate-agent", "a.json", b'{"prompt": "x", "agent": ["run", "\\ud800"]}'),
    (
        "surrogate-rubric-check",
        "a.json",
        b'{"prompt": "x", "rubric": [{"id": "r", "check": "\\ud800"}]}',
    ),
    ("surrogate-workspace", "a.json", b'{"prompt": "x", "workspace": "/w/\\udfff"}'),
    ("surrogate-allowed", "a.json", b'{"prompt": "x", "allowed_paths": ["src/\\ud800"]}'),
    ("surrogate-unknown-key", "a.json", b'{"prompt": "x", "\\ud800": 1}'),
    ("surrogate-in-jobs", "a.json", b'{"jobs": [{"prompt": "ok"}, {"prompt": "\\ud800"}]}'),
    ("surrogate-toml-escape", "a.toml", b'prompt = "\\ud800"\n'),
    # strict types: nothing is coerced
    ("timeout-true", "a.json", spec(timeout_s=True)),
    ("timeout-false", "a.json", spec(timeout_s=False)),
    ("timeout-numeric-string", "a.json", spec(timeout_s="60")),
    ("max-attempts-string", "a.json", spec(max_attempts="3")),
    ("max-attempts-true", "a.json", spec(max_attempts=True)),
    ("max-attempts-float-whole", "a.json", spec(max_attempts=3.0)),
    ("priority-numeric-string", "a.json", spec(priority="1")),
    ("priority-true", "a.json", spec(priority=True)),
    ("priority-float", "a.json", spec(priority=2.0)),
    ("rubric-required-yes", "a.json", spec(rubric=[{"id": "r1", "required": "yes"}])),
    ("rubric-required-one", "a.json", spec(rubric=[{"id": "r1", "required": 1}])),
    ("rubric-timeout-string", "a.json", spec(rubric=[{"id": "r1", "timeout_s": "5"}])),
    ("rubric-timeout-true", "a.json", spec(rubric=[{"id": "r1", "timeout_s": True}])),
    ("rubric-id-int", "a.json", spec(rubric=[{"id": 7}])),
    ("labels-bool-value", "a.json", spec(labels={"a": True})),
    ("title-int", "a.json", spec(title=5)),
    ("agent-int", "a.json", spec(agent=5)),
    ("agent-list-of-ints", "a.json", spec(agent=[1, 2])),
    ("workspace-int", "a.json", spec(workspace=5)),
    ("allowed-list-of-ints", "a.json", spec(allowed_paths=[1])),
    ("schema-int", "a.json", spec(schema_version=1)),
    ("toml-max-attempts-string", "a.toml", b'prompt = "x"\nmax_attempts = "3"\n'),
    ("toml-required-string", "a.toml", b'prompt = "x"\n[[rubric]]\nid = "r"\nrequired = "yes"\n'),
    ("toml-timeout-bool", "a.toml", b'prompt = "x"\ntimeout_s = true\n'),
    ("toml-priority-float", "a.toml", b'prompt = "x"\npriority = 1.0\n'),
    ("toml-datetime-prompt", "a.toml", b"prompt = 2024-01-01T00:00:00Z\n"),
    # numbers must be finite
    ("json-1e309", "a.json", b'{"prompt": "a", "timeout_s": 1e309}'),
    ("json-minus-1e309", "a.json", b'{"prompt": "a", "priority": -1e309}'),
    ("json-minus-infinity", "a.json", b'{"prompt": "a", "timeout_s": -Infinity}'),
    (
        "json-rubric-1e999",
        "a.json",
        b'{"prompt": "a", "rubric": [{"id": "r", "timeout_s": 1e999}]}',
    ),
    ("json-inf-in-label", "a.json", b'{"prompt": "a", "labels": {"k": 1e400}}'),
    ("json-5000-digit-int", "a.json", b'{"prompt": "a", "priority": ' + b"9" * 5000 + b"}"),
    ("toml-inf", "a.toml", b'prompt = "x"\ntimeout_s = inf\n'),
    ("toml-plus-inf", "a.toml", b'prompt = "x"\ntimeout_s = +inf\n'),
    ("toml-nan", "a.toml", b'prompt = "x"\ntimeout_s = nan\n'),
    ("toml-minus-inf-rubric", "a.toml", b'prompt = "x"\n[[rubric]]\nid = "r"\ntimeout_s = -inf\n'),
    ("toml-1e309", "a.toml", b'prompt = "x"\ntimeout_s = 1e309\n'),
    # size and item counts
    ("json-too-many-items", "a.json", b'{"prompt": "x", "labels": [' + b"0," * 1_100_000 + b"0]}"),
    ("toml-over-8mib", "a.toml", b'prompt = "' + b"x" * (9 << 20) + b'"\n'),
]


@pytest.mark.parametrize(
    ("name", "content"), [c[1:] for c in SPEC_FILES], ids=[c[0] for c in SPEC_FILES]
)
def test_bad_spec_file(root: Root, tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    before = state(root)
    r = cli("submit", "--root", str(root.path), str(path))
    assert r.code == 2, r.err
    assert_one_line(r)
    assert name in r.err  # the file is named
    assert r.out == ""
    assert state(root) == before


#: goal requests are for the inbox's planner: only `farro submit` refuses them
NOT_FOR_THE_INBOX = {"goal-request", "toml-goal"}
INBOX_FILES = [c for c in SPEC_FILES if c[0] not in NOT_FOR_THE_INBOX]


@pytest.mark.timeout(60)  # a hang is a failure, never a stuck suite
@pytest.mark.parametrize(
    ("name", "content"), [c[1:] for c in INBOX_FILES], ids=[c[0] for c in INBOX_FILES]
)
def test_bad_spec_file_through_the_inbox(
    root: Root, name: str, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The same file dropped in inbox/: rejected beside its reason, once; the pass goes on
    to a good file behind it, and a second pass finds nothing to do (no retry loop)."""
    path = root.inbox / name
    path.write_bytes(content)
    good = root.inbox / "zz-good.json"
    good.write_bytes(spec())
    old = time.time() - 60  # past the grace for files still being written; bad one first
    os.utime(path, (old, old))
    os.utime(good, (old + 1, old + 1))
    before = state(root)
    results = inbox.ingest(root)
    assert [(r.name, r.outcome) for r in results] == [
        (name, "rejected"),
        ("zz-good.json", "accepted"),
    ]
    error = results[0].error or ""
    assert "could not be processed" not in error  # an unforeseen failure, the inbox's 500
    assert "Traceback" not in error and "\n" not in error and name in error
    assert (root.rejected / name).read_bytes() == content
    note = (root.rejected / f"{name}.error.txt").read_text()
    assert note.startswith(error + "\n")
    assert len(root.ids("incoming")) == len(before[1]) + 1  # only the good file's job
    assert inbox.ingest(root) == []  # nothing left: no file is tried again and again
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_bad_spec_on_stdin_next_to_a_good_file(root: Root, tmp_path: Path) -> None:
    (tmp_path / "good.json").write_bytes(spec())
    before = state(root)
    r = cli("submit", "--root", str(root.path), str(tmp_path / "good.json"), "-", input=b"{")
    assert r.code == 2 and "<stdin>: invalid JSON" in r.err
    assert_one_line(r)
    assert state(root) == before


# ---------------------------------------------------------------- flags

FLAGS: list[tuple[str, list[str]]] = [
    ("prompt-empty", ["-p", ""]),
    ("prompt-blank", ["-p", "   "]),
    ("timeout-zero", ["-p", "x", "--timeout", "0"]),
    ("timeout-negative", ["-p", "x", "--timeout", "-3"]),
    ("timeout-word", ["-p", "x", "--timeout", "soon"]),
    ("max-attempts-zero", ["-p", "x", "--max-attempts", "0"]),
    ("max-attempts-word", ["-p", "x", "--max-attempts", "many"]),
    ("priority-word", ["-p", "x", "--priority", "high"]),
    ("label-no-equals", ["-p", "x", "--label", "team"]),
    ("label-empty-key", ["-p", "x", "--label", "=v"]),
    ("label-twice", ["-p", "x", "--label", "a=1", "--label", "a=2"]),
    ("allow-absolute", ["-p", "x", "--allow", "/etc"]),
    ("allow-dotdot", ["-p", "x", "--allow", "../up"]),
    ("rubric-check-empty", ["-p", "x", "--rubric-check", " "]),
    ("title-too-long", ["-p", "x", "--title", "t" * 201]),
    ("title-without-prompt", ["--title", "t"]),
    ("nothing-to-submit", []),
    ("unknown-option", ["-p", "x", "--bogus"]),
    ("format-yaml", ["--format", "yaml", "-"]),
    ("stdin-twice", ["-", "-"]),
    ("stdin-file-and-prompt", ["-", "-p", "-"]),
    ("missing-file", ["/nonexistent/spec.json"]),
    ("file-is-a-directory", ["/"]),
    ("agent-blank", ["-p", "x", "--agent", " "]),
    ("timeout-inf", ["-p", "x", "--timeout", "inf"]),
    ("timeout-minus-inf", ["-p", "x", "--timeout", "-inf"]),
    ("timeout-nan", ["-p", "x", "--timeout", "nan"]),
    ("timeout-1e309", ["-p", "x", "--timeout", "1e309"]),
    ("max-attempts-fraction", ["-p", "x", "--max-attempts", "1.5"]),
    ("priority-inf", ["-p", "x", "--priority", "inf"]),
    ("prompt-surrogate-escape", ["-p", "x\udcff"]),
]


@pytest.mark.parametrize("args", [f[1] for f in FLAGS], ids=[f[0] for f in FLAGS])
def test_bad_submit_flags(root: Root, args: list[str]) -> None:
    before = state(root)
    r = cli("submit", "--root", str(root.path), *args, input=b'{"prompt": "x"}')
    assert r.code == 2, r.err
    assert_one_line(r)
    assert state(root) == before


# ---------------------------------------------------------------- ids

BAD_IDS = ["../x", "a/b", ".hidden", "short", "a" * 65, "", "_leading-underscore", "abc defgh"]
ID_COMMANDS = [["show"], ["requeue"], ["kill"], ["logs"], ["history"], ["logs", "-f"]]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("command", ID_COMMANDS, ids=lambda c: "-".join(c))
def test_bad_ids_never_touch_a_path(
    root: Root, command: list[str], bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    touched: list[str] = []
    real_lexists = os.path.lexists

    def lexists(p: Any) -> bool:
        touched.append(str(p))
        return real_lexists(p)

    monkeypatch.setattr(os.path, "lexists", lexists)
    before = state(root)
    r = cli(*command, "--root", str(root.path), bad)
    monkeypatch.undo()
    assert r.code == 2, r.err
    assert_one_line(r)
    assert "invalid job id" in r.err
    assert not [p for p in touched if bad and p.endswith(bad)]
    assert state(root) == before


# ---------------------------------------------------------------- roots, settings, options


def _missing(tmp: Path) -> Path:
    return tmp / "nope"


def _uninitialised(tmp: Path) -> Path:
    (tmp / "empty").mkdir(mode=0o700)
    return tmp / "empty"


def _half_initialised(tmp: Path) -> Path:
    path = Root.init(tmp / "half").path
    os.rmdir(path / "audit")
    return path


def _group_writable(tmp: Path) -> Path:
    path = Root.init(tmp / "loose").path
    os.chmod(path, 0o770)
    return path


def _other_writable_queue(tmp: Path) -> Path:
    path = Root.init(tmp / "loosequeue").path
    os.chmod(path / "incoming", 0o707)
    return path


def _root_is_dangling_symlink(tmp: Path) -> Path:
    (tmp / "link").symlink_to(tmp / "gone")  # a symlink to a root is resolved; to nothing, not
    return tmp / "link"


def _root_is_file(tmp: Path) -> Path:
    (tmp / "file").write_text("not a root")
    return tmp / "file"


def _toml(text: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = Root.init(tmp / "r").path
        (path / "farro.toml").write_text(text)
        return path

    return make


def _good(tmp: Path) -> Path:
    return Root.init(tmp / "r").path


ROOTS: list[tuple[str, Callable[[Path], Path], list[str], dict[str, str], str]] = [
    ("missing-root-ls", _missing, ["ls"], {}, "no FARRO root"),
    ("missing-root-submit", _missing, ["submit", "-p", "x"], {}, "no FARRO root"),
    ("missing-root-via-env", _missing, ["stats"], {"ENV_ROOT": "1"}, "no FARRO root"),
    ("uninitialised-root", _uninitialised, ["ls"], {}, "not an initialised FARRO root"),
    ("half-initialised-root", _half_initialised, ["fsck"], {}, "missing audit/"),
    ("group-writable-root", _group_writable, ["submit", "-p", "x"], {}, "writable by group"),
    ("group-writable-root-ls", _group_writable, ["ls"], {}, "chmod 700"),
    ("other-writable-queue", _other_writable_queue, ["ls"], {}, "writable by group or others"),
    ("root-is-dangling-symlink", _root_is_dangling_symlink, ["ls"], {}, "no FARRO root at"),
    ("root-is-a-file", _root_is_file, ["ls"], {}, "is not a directory"),
    ("toml-unknown-key", _toml("wrkers = 2\n"), ["submit", "-p", "x"], {}, "wrkers"),
    ("toml-wrong-type", _toml('max_queued = "lots"\n'), ["submit", "-p", "x"], {}, "max_queued"),
    ("toml-invalid", _toml("workers = \n"), ["submit", "-p", "x"], {}, "invalid TOML"),
    ("toml-negative", _toml("timeout_s = -1\n"), ["submit", "-p", "x"], {}, "timeout_s"),
    ("toml-stats", _toml("[keys\n"), ["stats"], {}, "invalid TOML"),
    ("env-max-queued", _good, ["submit", "-p", "x"], {"FARRO_MAX_QUEUED": "abc"}, "MAX_QUEUED"),
    ("env-timeout", _good, ["submit", "-p", "x"], {"FARRO_TIMEOUT_S": "0"}, "FARRO_TIMEOUT_S"),
    ("env-workers", _good, ["submit", "-p", "x"], {"FARRO_WORKERS": "-1"}, "workers"),
    ("env-bool", _good, ["submit", "-p", "x"], {"FARRO_AUTO_REQUEUE_STALE": "perhaps"}, "auto"),
    ("ls-bad-status", _good, ["ls", "--status", "done"], {}, "--status"),
    ("logs-attempt-zero", _good, ["logs", "--attempt", "0", "01ZZZZZZZZZZZZZZZZZZZZZZZZ"], {}, ""),
    ("kill-negative-wait", _good, ["kill", "--wait", "-1", "01ZZZZZZZZZZZZZZZZZZZZZZZZ"], {}, ""),
    ("unknown-command", _good, ["frobnicate"], {}, "No such command"),
    ("show-needs-an-id", _good, ["show"], {}, "Missing argument"),
    ("ls-unknown-option", _good, ["ls", "--colour"], {}, "--colour"),
    ("toml-timeout-inf", _toml("timeout_s = inf\n"), ["submit", "-p", "x"], {}, "finite"),
    ("toml-heartbeat-nan", _toml("heartbeat_s = nan\n"), ["stats"], {}, "heartbeat_s"),
    ("toml-workers-string", _toml('workers = "2"\n'), ["submit", "-p", "x"], {}, "workers"),
    ("toml-workers-bool", _toml("workers = true\n"), ["submit", "-p", "x"], {}, "workers"),
    ("toml-requeue-int", _toml("auto_requeue_stale = 1\n"), ["stats"], {}, "auto_requeue"),
    ("toml-log-max-float", _toml("log_max_bytes = 2048.0\n"), ["stats"], {}, "log_max_bytes"),
    (
        "toml-keys-nested",
        _toml("keys = " + "[" * 1000 + "]" * 1000 + "\n"),
        ["stats"],
        {},
        "nested",
    ),
    ("toml-dotted-bomb", _toml(".".join(["k"] * 1000) + " = 1\n"), ["stats"], {}, "nested"),
    ("toml-surrogate", _toml('agent = "\\ud800"\n'), ["stats"], {}, "invalid TOML"),
    ("env-timeout-inf", _good, ["submit", "-p", "x"], {"FARRO_TIMEOUT_S": "inf"}, "finite"),
    ("env-workers-float", _good, ["stats"], {"FARRO_WORKERS": "1.5"}, "workers"),
]


@pytest.mark.parametrize(
    ("make", "args", "env", "needle"), [c[1:] for c in ROOTS], ids=[c[0] for c in ROOTS]
)
def test_bad_root_settings_and_options(
    tmp_path: Path,
    make: Callable[[Path], Path],
    args: list[str],
    env: dict[str, str],
    needle: str,
) -> None:
    path = make(tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    if env.pop("ENV_ROOT", None):
        env = {**env, "FARRO_ROOT": str(path)}
        r = cli(*args, env=env)
    else:
        r = cli(*args, "--root", str(path), env=env)
    assert r.code == 2, r.err
    assert_one_line(r)
    assert needle in r.err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before  # nothing made, even a root


def test_logs_attempt_zero_is_bad_input_for_a_real_job(root: Root) -> None:
    job_id = job.create(root, parse_spec({"prompt": "x"})).id
    r = cli("logs", "--root", str(root.path), "--attempt", "0", job_id)
    assert r.code == 2 and "attempts count from 1" in r.err
    assert_one_line(r)


# ---------------------------------------------------------------- on-disk corruption


def _truncate_job_json(d: Path, outside: Path) -> None:
    data = (d / "job.json").read_bytes()
    (d / "job.json").write_bytes(data[: len(data) // 2])


def _job_json_symlink(d: Path, outside: Path) -> None:
    target = outside / "planted.json"
    target.write_bytes((d / "job.json").read_bytes())
    (d / "job.json").unlink()
    (d / "job.json").symlink_to(target)


def _job_dir_symlink(d: Path, outside: Path) -> None:
    real = outside / "elsewhere"
    os.rename(d, real)
    d.symlink_to(real)


def _prompt_missing(d: Path, outside: Path) -> None:
    (d / "prompt.json").unlink()


def _job_json_wrong_id(d: Path, outside: Path) -> None:
    data = json.loads((d / "job.json").read_bytes())
    data["id"] = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
    (d / "job.json").write_text(json.dumps(data))


def _job_json_future_schema(d: Path, outside: Path) -> None:
    data = json.loads((d / "job.json").read_bytes())
    data["schema_version"] = "9.0.0"
    (d / "job.json").write_text(json.dumps(data))


def _job_json_is_a_directory(d: Path, outside: Path) -> None:
    (d / "job.json").unlink()
    (d / "job.json").mkdir()


def _set(name: str, **fields: Any) -> Callable[[Path, Path], None]:
    """Rewrite fields of ``name`` (job.json or prompt.json) as a broken writer might."""

    def corrupt(d: Path, outside: Path) -> None:
        data = json.loads((d / name).read_bytes())
        data.update(fields)
        os.chmod(d / name, 0o600)
        (d / name).write_text(json.dumps(data))

    return corrupt


def _raw(name: str, content: bytes) -> Callable[[Path, Path], None]:
    def corrupt(d: Path, outside: Path) -> None:
        os.chmod(d / name, 0o600)
        (d / name).write_bytes(content)

    return corrupt


def _nest_report(d: Path, outside: Path) -> None:
    data = (d / "job.json").read_bytes().decode()
    deep = '{"a": ' * 1000 + "1" + "}" * 1000
    (d / "job.json").write_text(data.replace('"reason":', f'"deep": {deep}, "reason":', 1))


def _surrogate_reason(d: Path, outside: Path) -> None:
    data = (d / "job.json").read_bytes().decode()
    (d / "job.json").write_text(data.replace('"reason": "', '"reason": "\\ud800', 1))


#: wrongly typed but valid JSON: `ls`, `stats` and the console show a corrupt row
TYPED = [
    ("job-json-claim-string", _set("job.json", claim="x"), "claim"),
    ("job-json-top-list", _raw("job.json", b"[]"), "job.json"),
    ("job-json-top-string", _raw("job.json", b'"job"'), "job.json"),
    ("job-json-attempt-string", _set("job.json", attempt="3"), "attempt"),
    ("job-json-attempt-bool", _set("job.json", attempt=True), "attempt"),
    ("job-json-revision-float", _set("job.json", revision=1.0), "revision"),
    ("job-json-status-int", _set("job.json", status=5), "status"),
    ("job-json-status-unknown", _set("job.json", status="paused"), "status"),
    ("job-json-result-string", _set("job.json", result="ok"), "result"),
    ("job-json-created-int", _set("job.json", created_at=5), "created_at"),
    ("job-json-reason-list", _set("job.json", reason=["a"]), "reason"),
    ("job-json-claim-worker-int", _set("job.json", claim={"worker": 5}), "claim"),
    ("prompt-json-title-int", _set("prompt.json", title=5), "title"),
    ("prompt-json-max-attempts-string", _set("prompt.json", max_attempts="3"), "max_attempts"),
    ("prompt-json-priority-bool", _set("prompt.json", priority=True), "priority"),
    ("prompt-json-labels-list", _set("prompt.json", labels=["a"]), "labels"),
    ("prompt-json-labels-int-value", _set("prompt.json", labels={"a": 1}), "labels"),
    ("prompt-json-top-list", _raw("prompt.json", b"[]"), "prompt.json"),
    ("job-json-nested-1000", _nest_report, "job.json"),
    ("job-json-lone-surrogate", _surrogate_reason, "job.json"),
    ("job-json-infinity", _raw("job.json", b'{"attempt": Infinity}'), "job.json"),
    ("job-json-1e309", _raw("job.json", b'{"attempt": 1e309}'), "job.json"),
]
UNREADABLE = {_truncate_job_json, _job_json_symlink, _job_dir_symlink, _prompt_missing} | {
    c[1] for c in TYPED
}
CORRUPTIONS = [
    ("truncated-job-json", _truncate_job_json, "job.json"),
    ("job-json-symlink", _job_json_symlink, "symlink"),
    ("job-dir-symlink", _job_dir_symlink, "not a real directory"),
    ("prompt-json-missing", _prompt_missing, "prompt.json is missing"),
    ("job-json-wrong-id", _job_json_wrong_id, "names job"),
    ("job-json-future-schema", _job_json_future_schema, "schema_version"),
    ("job-json-directory", _job_json_is_a_directory, "not a regular file"),
    *TYPED,
]


@pytest.mark.parametrize(
    ("corrupt", "needle"), [c[1:] for c in CORRUPTIONS], ids=[c[0] for c in CORRUPTIONS]
)
def test_on_disk_corruption(
    root: Root, tmp_path: Path, corrupt: Callable[[Path, Path], None], needle: str
) -> None:
    good = job.create(root, parse_spec({"prompt": "fine"})).id
    bad = job.create(root, parse_spec({"prompt": "to be broken"})).id
    outside = tmp_path / "outside"
    outside.mkdir()
    corrupt(root.incoming / bad, outside)
    # prompt.json never changes, so this process cached it at create time; a real
    # `farro` run starts cold, and so must these in-process runs
    root.drop_caches()
    outside_before = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}

    r = cli("show", "--root", str(root.path), bad)
    assert r.code == 1
    assert_one_line(r)
    assert needle in r.err and "fsck --repair" in r.err

    ls = cli("ls", "--root", str(root.path), "--json")
    assert ls.code == 0, ls.err
    rows = {row["id"]: row["status"] for row in json.loads(ls.out)}
    assert rows[good] == "queued"  # one bad job never hides the others
    if corrupt in UNREADABLE:
        assert rows[bad] == "corrupt"  # ls reads without validating: unreadable is flagged
        counts = json.loads(cli("stats", "--root", str(root.path), "--json").out)["counts"]
        assert (counts["corrupt"], counts["queued"]) == (1, 1)

    check = cli("fsck", "--root", str(root.path))
    assert check.code == 1 and "corrupt" in check.out
    assert os.path.lexists(root.incoming / bad)  # fsck without --repair changes nothing

    fixed = cli("fsck", "--root", str(root.path), "--repair")
    assert fixed.code == 0, fixed.out + fixed.err
    assert not os.path.lexists(root.incoming / bad)
    assert os.path.lexists(root.quarantine / bad)
    reason = (root.quarantine / f"{bad}.reason.txt").read_text()
    assert "from: incoming/" in reason and needle in reason
    assert root.ids("incoming") == [good]
    assert {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()} == outside_before
    assert cli("fsck", "--root", str(root.path)).code == 0
    gone = cli("show", "--root", str(root.path), bad)
    assert gone.code == 1 and "no job" in gone.err


def test_a_stray_entry_in_a_queue_is_quarantined(root: Root) -> None:
    (root.incoming / "not an id").write_text("junk")
    assert cli("ls", "--root", str(root.path)).code == 0
    assert cli("fsck", "--root", str(root.path)).code == 1
    assert cli("fsck", "--root", str(root.path), "--repair").code == 0
    assert (root.quarantine / "not an id").read_text() == "junk"
    assert "name is not a job id" in (root.quarantine / "not an id.reason.txt").read_text()
