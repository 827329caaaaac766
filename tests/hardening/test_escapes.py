"""Ids, allowed-path globs and paths that try to escape the root are refused before use;
a planted log symlink is never written through; a symlinked workspace is resolved and
said in the log, never used silently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.errors import BadInput
from farro_core.globs import check_glob
from farro_core.ids import check_id
from farro_core.locks import CLAIMS
from farro_core.root import Root
from farro_core.transitions import Status
from farro_core.worker import Worker

from .helpers import make_job, snapshot

FARRO = str(Path(sys.executable).parent / "farro")

BAD_IDS = [
    "..",
    "../../etc/passwd",
    "../01JABCDEFGHJKMNPQRSTVWXY",
    "/etc/passwd",
    "/01JABCDEFGHJKMNPQRSTVWXYZ",
    "01JABCDEFG/../../x",
    "01JABCDEFGHJ\0KMNPQR",
    "01JABCDEFGHJKMNPQRSTVWXYZ\n",
    "x" * 65,
    "A" * 4096,
    ".hidden-id-000",
    "-rf-0000000",
    "",
]

BAD_GLOBS = [
    "../x",
    "src/../../x",
    "..",
    "/etc/passwd",
    "/",
    "~/x",
    "a\0b",
    "x" * 5000,
    "a/..",
    "..\\x",
]


@pytest.mark.parametrize("value", BAD_IDS, ids=range(len(BAD_IDS)))
def test_escaping_ids_are_refused_everywhere(root: Root, value: str) -> None:
    with pytest.raises(BadInput):
        check_id(value)
    with pytest.raises(BadInput):
        root.locate(value)
    with pytest.raises(BadInput):
        parse_spec({"prompt": "x", "id": value})


@pytest.mark.parametrize("cmd", ["show", "requeue", "kill", "history", "logs"])
@pytest.mark.parametrize("value", ["../../etc", "/etc/passwd", "a" * 300, "..", "x/../y"])
def test_cli_refuses_escaping_ids_with_exit_2(root: Root, cmd: str, value: str) -> None:
    before = snapshot(root.path)
    proc = subprocess.run(
        [FARRO, cmd, "--root", str(root.path), value], capture_output=True, timeout=60
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    err = proc.stderr.decode()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert snapshot(root.path) == before


@pytest.mark.parametrize("glob", BAD_GLOBS, ids=range(len(BAD_GLOBS)))
def test_escaping_allowed_paths_are_refused(root: Root, glob: str) -> None:
    with pytest.raises(ValueError):
        check_glob(glob)
    with pytest.raises(BadInput):
        parse_spec({"prompt": "x", "allowed_paths": [glob]})
    if "\0" in glob:
        return  # no argv can carry a NUL: the spec path above is the only way in
    before = snapshot(root.path)
    proc = subprocess.run(
        [FARRO, "submit", "--root", str(root.path), "--prompt", "x", "--allow", glob],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert snapshot(root.path) == before  # nothing half-made


def _run_one(root: Root) -> job.Envelope | None:  # type: ignore[name-defined]
    w = Worker(root, "escapes")
    try:
        return w.run_once()
    finally:
        for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
            CLAIMS.release(key)


def _never_succeeds_and_fsck_quarantines(root: Root, job_id: str) -> None:
    """The attempt breaks off (nothing written through the link); fsck makes it whole."""
    from farro_core import fsck

    assert job.load(root, job_id).status is not Status.SUCCEEDED
    findings = fsck.fsck(root, repair=True)
    assert any(f.kind == "symlink" for f in findings), findings
    assert job.load(root, job_id).status in (Status.STALE, Status.FAILED, Status.QUEUED)


def test_planted_log_symlink_is_never_written_through(tmp_path: Path, root: Root) -> None:
    secret = tmp_path / "secret"
    secret.write_text("precious\n")
    env = make_job(root, "hello", agent=["echo", "agent output"], max_attempts=1)
    (env.path / "logs").mkdir(mode=0o700)
    os.symlink(secret, env.path / "logs" / "attempt-1.log")
    _run_one(root)
    assert secret.read_text() == "precious\n"
    _never_succeeds_and_fsck_quarantines(root, env.id)
    assert secret.read_text() == "precious\n"


def test_planted_logs_dir_symlink_is_never_written_through(tmp_path: Path, root: Root) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    env = make_job(root, "hello", agent=["echo", "agent output"], max_attempts=1)
    os.symlink(outside, env.path / "logs")
    _run_one(root)
    assert list(outside.iterdir()) == []
    _never_succeeds_and_fsck_quarantines(root, env.id)
    assert list(outside.iterdir()) == []


def test_symlinked_workspace_is_resolved_and_reported(tmp_path: Path, root: Root) -> None:
    real = tmp_path / "real-ws"
    real.mkdir()
    link = tmp_path / "link-ws"
    os.symlink(real, link)
    make_job(root, "hello", agent=["touch", "made-here"], workspace=str(link), max_attempts=1)
    done = _run_one(root)
    assert done is not None and done.status is Status.SUCCEEDED, done
    assert (real / "made-here").exists()
    log = (done.path / "logs" / "attempt-1.log").read_text()
    assert "symlink" in log and str(real) in log


def test_workspace_inside_the_root_is_refused(root: Root) -> None:
    make_job(root, "hello", agent=["true"], workspace=str(root.path / "done"), max_attempts=1)
    done = _run_one(root)
    assert done is not None and done.status is Status.FAILED
    assert "inside the FARRO root" in (done.lifecycle.result.error or "")  # type: ignore[union-attr]
