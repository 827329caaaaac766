"""``farro submit --like ID`` needs only the original's prompt.json, which never changes."""

from __future__ import annotations

import json

from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.root import Root

from .helpers import farro, one_error


def _original(root: Root) -> str:
    spec = {"prompt": "Fix the parser", "allowed_paths": ["src/**"], "labels": {"team": "a"}}
    return job.create(root, parse_spec(spec)).id


def test_like_a_job_whose_job_json_is_corrupt(root: Root) -> None:
    jid = _original(root)
    (root.incoming / jid / "job.json").write_text("{not json")
    r = farro("submit", "--root", str(root.path), "--like", jid, "--priority", "3")
    assert r.code == 0, r.err
    new = job.load(root, r.out.strip())
    assert new.prompt.prompt == "Fix the parser" and new.prompt.allowed_paths == ["src/**"]
    assert new.prompt.priority == 3
    assert new.prompt.labels == {"team": "a", "like": jid}
    assert (root.incoming / jid / "job.json").read_text() == "{not json"  # left for fsck


def test_like_a_job_whose_prompt_json_is_corrupt_says_why_in_one_line(root: Root) -> None:
    jid = _original(root)
    prompt = root.incoming / jid / "prompt.json"
    prompt.chmod(0o600)
    prompt.write_text(json.dumps({"schema_version": 1, "id": jid}))
    r = farro("submit", "--root", str(root.path), "--like", jid)
    assert r.code != 0 and r.out == ""
    line = one_error(r)
    assert f"--like {jid}: its prompt.json is unreadable" in line and "fsck" in line
    assert len(root.ids("incoming")) == 1  # nothing created
