"""The audit log: one JSON object per line with the spec's fields, append-only, readable
per job, tolerant of a torn last line, safe for concurrent appenders."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from farro_core import audit
from farro_core.root import Root

FIELDS = {"ts", "event", "job", "from", "to", "actor", "worker", "attempt", "revision", "reason"}


def rec(job: str, revision: int, **kw: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "job": job,
        "frm": "queued",
        "to": "in-progress",
        "actor": "agent",
        "worker": "w1",
        "attempt": 1,
        "revision": revision,
        "reason": "r",
    }
    fields.update(kw)
    return audit.record(**fields)  # type: ignore[arg-type]


def test_record_fields_and_timestamp() -> None:
    r = rec("jobaaaaaaaa", 2, ts=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert set(r) == FIELDS
    assert r["ts"] == "2026-01-02T03:04:05Z"
    assert r["event"] == "transition" and r["from"] == "queued" and r["revision"] == 2
    assert rec("j", 1, event="created", frm=None)["from"] is None


def test_append_writes_one_line_each_and_read_returns_them(root: Root) -> None:
    assert list(audit.read(root)) == []  # no log yet
    audit.append(root, rec("jobaaaaaaaa", 1, reason="multi\nline"))
    audit.append(root, rec("jobbbbbbbbb", 1))
    audit.append(root, rec("jobaaaaaaaa", 2))
    lines = root.audit_file.read_bytes().splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0])["reason"] == "multi\nline"  # escaped, still one line
    assert [r["revision"] for r in audit.read(root, "jobaaaaaaaa")] == [1, 2]
    assert [r["job"] for r in audit.read(root)] == ["jobaaaaaaaa", "jobbbbbbbbb", "jobaaaaaaaa"]


def test_append_only(root: Root) -> None:
    audit.append(root, rec("jobaaaaaaaa", 1))
    first = root.audit_file.read_bytes()
    audit.append(root, rec("jobaaaaaaaa", 2))
    assert root.audit_file.read_bytes().startswith(first)


def test_torn_last_line_and_garbage_skipped(root: Root) -> None:
    audit.append(root, rec("jobaaaaaaaa", 1))
    with open(root.audit_file, "ab") as fh:
        fh.write(b"[1, 2]\n")  # valid JSON, not an object
        fh.write(b'{"ts": "2026", "job": "jobaaaa')  # torn by a crash
    assert [r["revision"] for r in audit.read(root)] == [1]
    audit.append(root, rec("jobaaaaaaaa", 2))  # may be glued to the torn fragment
    audit.append(root, rec("jobaaaaaaaa", 3))
    revs = [r["revision"] for r in audit.read(root, "jobaaaaaaaa")]
    assert revs[0] == 1 and revs[-1] == 3  # reading goes on past the damage


def test_read_filters_by_exact_job(root: Root) -> None:
    audit.append(root, rec("jobaaaaaaaa", 1))
    audit.append(root, rec("jobaaaaaaaaX", 1))
    assert [r["job"] for r in audit.read(root, "jobaaaaaaaa")] == ["jobaaaaaaaa"]


def test_concurrent_appends_never_interleave(root: Root) -> None:
    def work(n: int) -> None:
        for i in range(200):
            audit.append(root, rec(f"job{n:08d}", i + 1, reason="x" * 500))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = root.audit_file.read_bytes().splitlines()
    assert len(lines) == 800
    for n in range(4):
        revs = [r["revision"] for r in audit.read(root, f"job{n:08d}")]
        assert revs == list(range(1, 201))
