"""One bad job, file or setting never stops the others, and no reader blocks or follows.

Everything here is real: a FIFO made with mkfifo, a hard link, files nested 1,000
deep, directories made unwritable with ``chattr +i`` (tests run as root, so
permission bits would not stop us), and `farro` run as a process.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from farro_core import audit, inbox, job, specfile
from farro_core.envelope import Envelope
from farro_core.identity import WorkerIdentity
from farro_core.locks import CLAIMS
from farro_core.root import Root
from farro_core.transitions import Actor, Status
from farro_core.watchdog import Watchdog
from farro_core.worker import Worker

from .helpers import make_job

FARRO = str(Path(sys.executable).parent / "farro")
ME = WorkerIdentity.current("isolation")

pytestmark = pytest.mark.timeout(120)  # a hang fails the test, it never stalls the suite


def farro(
    *args: str, preexec: Callable[[], object] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    return subprocess.run(
        [FARRO, *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        preexec_fn=preexec,  # type: ignore[arg-type]
    )


def one_line(err: str) -> str:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("farro: "), err
    return lines[0]


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``chattr +i``: nobody, root included, may create, rename or remove in ``path``."""
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"chattr +i does not work here: {proc.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def dead_in_progress(root: Root, prompt: str) -> Envelope:
    """A job in progress whose worker is gone: its claim lock is free."""
    made = make_job(root, prompt)
    env = job.claim(root, ME, ids=[made.id])
    assert env is not None
    job.release_claim(env)
    return env


def finished(root: Root, prompt: str = "done once") -> Envelope:
    env = dead_in_progress(root, prompt)
    return job.commit(env, Status.SUCCEEDED, Actor.AGENT, "finished")


@pytest.fixture(autouse=True)
def _release_claims() -> Iterator[None]:
    yield
    for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
        CLAIMS.release(key)


# ---------------------------------------------------------------- wrong types: ls, stats


@pytest.mark.parametrize(
    "content",
    [b'{"claim": "x"}', b"[]", b'"x"', b"null", b'{"status": "queued", "attempt": "3"}'],
    ids=["claim-string", "list", "string", "null", "attempt-string"],
)
def test_a_wrongly_typed_job_json_is_a_corrupt_row_and_ls_recovers_once_fixed(
    root: Root, content: bytes
) -> None:
    good = make_job(root, "fine")
    bad = make_job(root, "to break")
    original = (bad.path / "job.json").read_bytes()
    (bad.path / "job.json").write_bytes(content)

    ls = farro("ls", "--root", str(root.path), "--json")
    assert ls.returncode == 0, ls.stderr
    rows = {r["id"]: r["status"] for r in json.loads(ls.stdout)}
    assert rows == {good.id: "queued", bad.id: "corrupt"}
    table = farro("ls", "--root", str(root.path))
    assert table.returncode == 0 and table.stderr == "", table.stderr
    stats = farro("stats", "--root", str(root.path), "--json")
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)["counts"]
    assert (counts["queued"], counts["corrupt"]) == (1, 1)

    (bad.path / "job.json").write_bytes(original)  # fixed by hand
    rows = {
        r["id"]: r["status"]
        for r in json.loads(farro("ls", "--root", str(root.path), "--json").stdout)
    }
    assert rows == {good.id: "queued", bad.id: "queued"}


# ---------------------------------------------------------------- the inbox


def _drop(root: Root, name: str, data: bytes, age: float) -> None:
    path = root.inbox / name
    path.write_bytes(data)
    old = time.time() - age  # past the grace given to files still being written
    os.utime(path, (old, old))


def test_an_inbox_file_that_cannot_even_be_rejected_waits_and_the_next_is_taken(
    root: Root,
) -> None:
    _drop(root, "a-bad.json", b"{", age=60)
    _drop(root, "b-good.json", b'{"prompt": "fine"}', age=59)
    with immutable(root.rejected):  # rejected/ takes nothing: the bad file cannot move
        first = inbox.ingest(root)
        again = inbox.ingest(root)
    assert [(r.name, r.outcome) for r in first] == [
        ("a-bad.json", "waiting"),
        ("b-good.json", "accepted"),
    ]
    assert "nor moved to inbox/rejected/" in (first[0].error or "")
    assert [(r.name, r.outcome) for r in again] == [("a-bad.json", "waiting")]
    assert first[0].describe() == again[0].describe()  # the manager logs it once
    assert [(r.name, r.outcome) for r in inbox.ingest(root)] == [("a-bad.json", "rejected")]


def test_an_unforeseen_error_rejects_that_file_and_the_pass_goes_on(
    root: Root, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = specfile.validate

    def fails_on_one(specs: list[dict[str, object]], name: str) -> object:
        if name == "a-trips.json":
            raise KeyError("a bug nobody foresaw")  # injected: every real one is handled
        return real(specs, name)

    monkeypatch.setattr(specfile, "validate", fails_on_one)
    _drop(root, "a-trips.json", b'{"prompt": "x"}', age=60)
    _drop(root, "b-good.json", b'{"prompt": "fine"}', age=59)
    results = inbox.ingest(root)
    assert [(r.name, r.outcome) for r in results] == [
        ("a-trips.json", "rejected"),
        ("b-good.json", "accepted"),
    ]
    note = (root.rejected / "a-trips.json.error.txt").read_text()
    assert note.startswith("a-trips.json: could not be processed: 'a bug nobody foresaw'")
    assert inbox.ingest(root) == []


# ---------------------------------------------------------------- the watchdog


def test_an_unwritable_job_dir_does_not_stop_the_watchdog_marking_the_others(
    root: Root, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = dead_in_progress(root, "in an immutable directory")
    other = dead_in_progress(root, "an ordinary dead job")
    dog = Watchdog(root)
    with immutable(stuck.path), caplog.at_level(logging.ERROR, "farro.watchdog"):
        first = dog.sweep()
        second = dog.sweep()
    assert [j for j, _ in first.stale] == [other.id]
    assert job.load(root, other.id).status is Status.STALE
    assert [j for j, _ in first.failed] == [stuck.id] == [j for j, _ in second.failed]
    assert "could not mark it stale" in first.failed[0][1]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and stuck.id in errors[0]  # named, and said once, not every sweep
    # once writable again, the next sweep handles it
    assert [j for j, _ in dog.sweep().stale] == [stuck.id]


def test_the_watchdog_racing_a_commit_s_own_move_logs_no_error(
    root: Root, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit writes job.json, then moves the directory, under the commit lock. A
    watchdog that read the job in between sees it misplaced, waits for that lock, and
    must then find the move done, not try it again (and log an ERROR)."""
    from farro_core import fs

    env = dead_in_progress(root, "racing")
    done = job.commit(env, Status.SUCCEEDED, Actor.AGENT, "ok")
    fs.move(done.path, root.active / env.id)  # as between the commit's write and its move
    seen = job.load(root, env.id)
    real_where = job.where

    def commit_moves_first(r: Root, job_id: str, dfd: int) -> Path | None:
        if os.path.lexists(root.active / env.id):
            fs.move(root.active / env.id, done.path)  # the racing commit's own move
        return real_where(r, job_id, dfd)

    monkeypatch.setattr(job, "where", commit_moves_first)
    with caplog.at_level(logging.WARNING, "farro.watchdog"):
        Watchdog(root)._move_misplaced(root.active / env.id, seen)
    monkeypatch.undo()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert job.load(root, env.id).path == done.path


def test_a_copy_of_a_finished_job_put_back_in_incoming_is_quarantined_never_run(
    root: Root, tmp_path: Path
) -> None:
    done = finished(root)
    lines = len(list(audit.read(root, done.id)))
    copy = tmp_path / "copy"
    shutil.copytree(done.path, copy)
    data = json.loads((copy / "job.json").read_text())
    data.update(status="queued", claim=None, result=None)  # "run it again", by hand
    (copy / "job.json").write_text(json.dumps(data))
    os.rename(copy, root.incoming / done.id)

    assert job.claim(root, ME) is None  # never claimed: its id is taken in done/
    report = Watchdog(root).sweep()
    assert [j for j, _ in report.quarantined] == [done.id]
    assert not os.path.lexists(root.incoming / done.id)
    reason = (root.quarantine / f"{done.id}.reason.txt").read_text()
    assert "exists already in done/" in reason and "from: incoming/" in reason
    assert job.load(root, done.id).status is Status.SUCCEEDED  # the original is untouched
    assert len(list(audit.read(root, done.id))) == lines
    assert Watchdog(root).sweep().failed == []


# ---------------------------------------------------------------- fsck --repair


def test_fsck_repair_names_a_job_it_cannot_move_and_repairs_the_others(root: Root) -> None:
    stuck = make_job(root, "corrupt, in an immutable directory")
    other = make_job(root, "corrupt, repairable")
    for env in (stuck, other):
        (env.path / "job.json").write_bytes(b"{")
    with immutable(stuck.path):
        r = farro("fsck", "--root", str(root.path), "--repair")
        assert r.returncode == 1, r.stdout + r.stderr
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr
        one_line(r.stderr)
        assert os.path.lexists(root.quarantine / other.id)  # repaired despite the other
        assert os.path.lexists(stuck.path)
        [line] = [ln for ln in r.stdout.splitlines() if ln.startswith("error")]
        assert stuck.id in line and "could not be handled" in line
    again = farro("fsck", "--root", str(root.path), "--repair")
    assert again.returncode == 0, again.stdout
    assert os.path.lexists(root.quarantine / stuck.id)


# ---------------------------------------------------------------- readers never block


def _failed_attempt(root: Root) -> Envelope:
    env = dead_in_progress(root, "has a log")
    return job.commit(env, Status.FAILED, Actor.AGENT, "failed")


@pytest.mark.parametrize("follow", [[], ["-f"]], ids=["logs", "logs-f"])
def test_a_fifo_at_the_log_path_does_not_hang_farro_logs(root: Root, follow: list[str]) -> None:
    env = _failed_attempt(root)
    (env.path / "logs").mkdir(mode=0o700, exist_ok=True)
    os.mkfifo(env.path / "logs" / "attempt-1.log")
    r = farro("logs", "--root", str(root.path), *follow, env.id)  # timeout=90: a hang fails
    assert r.returncode == 1
    assert "not a regular file" in one_line(r.stderr)


@pytest.mark.parametrize("entry", ["heartbeat", ".claim-1.lock"])
def test_a_fifo_at_the_heartbeat_path_never_hangs_a_claim(root: Root, entry: str) -> None:
    """The claim lock's mtime is the heartbeat; ``heartbeat`` (a file of older versions)
    is only ever stat'ed. A FIFO at either blocks no claim and no watchdog sweep."""
    trapped = make_job(root, "a fifo for a heartbeat", priority=10)  # tried first
    os.mkfifo(trapped.path / entry)
    make_job(root, "an ordinary job")
    env = job.claim(root, ME)  # blocked forever in open() when the claim opened `heartbeat`
    assert env is not None
    assert Watchdog(root).sweep().failed == []
    CLAIMS.release(job.claim_key(root, env.id, 1))


def test_a_hard_link_at_the_log_path_is_never_written_through(root: Root, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    env = make_job(root, "hello", agent=["echo", "agent output"], max_attempts=1)
    (env.path / "logs").mkdir(mode=0o700)
    os.link(outside, env.path / "logs" / "attempt-1.log")
    w = Worker(root, "isolation")
    w.run_once()
    assert outside.read_text() == "precious\n"
    after = job.load(root, env.id)
    assert after.status is not Status.SUCCEEDED
    assert after.lifecycle.result is not None
    assert "hard link" in (after.lifecycle.result.error or "")


def test_an_agent_s_deeply_nested_result_never_makes_job_json_unreadable(root: Root) -> None:
    deep = '{"a": ' * 220 + "1" + "}" * 220
    script = f"import os; open(os.environ['FARRO_RESULT_FILE'], 'w').write({deep!r})"
    env = make_job(root, "report", agent=[sys.executable, "-c", script], max_attempts=1)
    Worker(root, "isolation").run_once()
    after = job.load(root, env.id)  # raised Corrupt when the report was kept 220 deep
    assert after.status is Status.SUCCEEDED
    assert after.lifecycle.result is not None and after.lifecycle.result.report == {}
    log = (after.path / "logs" / "attempt-1.log").read_text()
    assert "result file ignored" in log and "nested deeper than" in log
    r = farro("show", "--root", str(root.path), env.id)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- a 2 GB audit log


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_history_and_fsck_read_a_2_gb_audit_log_in_bounded_memory(root: Root) -> None:
    env = make_job(root, "audited")
    size = 2 << 30
    with open(root.audit_file, "r+b") as fh:  # a torn, 2 GB line of zeros (sparse)
        end = fh.seek(0, os.SEEK_END)
        fh.truncate(end + size)
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n")  # the damage ends; the next append is a whole line
    line = audit.record(
        job=env.id, frm="queued", to="queued", actor="t", worker=None, attempt=0, revision=1,
        reason="after",
    )  # fmt: skip
    audit.append(root, line)
    hist = farro("history", "--root", str(root.path), "--json", env.id, preexec=_limit_memory)
    assert hist.returncode == 0, hist.stderr
    reasons = [rec["reason"] for rec in json.loads(hist.stdout)]
    assert reasons[-1] == "after"  # the line after 2 GB of damage is read
    check = farro("fsck", "--root", str(root.path), preexec=_limit_memory)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Traceback" not in check.stderr and "MemoryError" not in check.stderr


# ---------------------------------------------------------------- bad numbers, real processes


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "x", "--timeout", "inf"],
        ["-p", "x", "--timeout", "1e309"],
        ["-p", "x", "--timeout", "nan"],
        ["-p", "do \udcff it"],
    ],
    ids=["inf", "1e309", "nan", "surrogate-escape"],
)
def test_submit_refuses_non_finite_numbers_and_lone_surrogates(root: Root, args: list[str]) -> None:
    r = subprocess.run(
        [os.fsencode(FARRO), b"submit", b"--root", os.fsencode(root.path),
         *(os.fsencode(a) for a in args)],
        capture_output=True,
        timeout=90,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    one_line(r.stderr.decode(errors="replace"))
    assert root.ids("incoming") == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("inf.toml", b'prompt = "x"\ntimeout_s = inf\n'),
        ("deep.json", b'{"prompt": "x", "labels": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
        ("bomb.toml", b'prompt = "x"\n' + b".".join([b"a"] * 1000) + b" = 1\n"),
        ("surrogate.json", b'{"prompt": "\\ud800"}'),
        ("typed.json", b'{"prompt": "x", "max_attempts": "3"}'),
        ("bool.json", b'{"prompt": "x", "timeout_s": true}'),
        ("required.json", b'{"prompt": "x", "rubric": [{"id": "r", "required": "yes"}]}'),
    ],
    ids=["toml-inf", "nested-1000", "toml-bomb", "surrogate", "string-int", "bool", "required"],
)
def test_submit_refuses_hostile_spec_files_in_a_real_process(
    root: Root, tmp_path: Path, name: str, content: bytes
) -> None:
    (tmp_path / name).write_bytes(content)
    r = farro("submit", "--root", str(root.path), str(tmp_path / name))
    assert r.returncode == 2, r.stderr
    assert name in one_line(r.stderr)
    assert root.ids("incoming") == []
