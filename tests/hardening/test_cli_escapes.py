"""The CLI as a process: every output escaped (``--json`` as ``\\u`` escapes that read back
the same), ``farro logs`` escaped unless ``--raw``, tables aligned in terminal cells."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from support import wait_until

from farro_core import job
from farro_core.envelope import parse_spec
from farro_core.locks import CLAIMS
from farro_core.root import Root
from farro_core.worker import Worker

from .hostile import escaped, first_dangerous, hostile_job, payload, plant_disk_entries

FARRO = str(Path(sys.executable).parent / "farro")


def farro(root: Root, *args: str, code: int = 0, columns: int = 200) -> bytes:
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.run(
        [FARRO, *args, "--root", str(root.path)], capture_output=True, env=env, timeout=60
    )
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert first_dangerous(proc.stderr.decode()) is None, proc.stderr
    return proc.stdout


@pytest.fixture
def hostile(root: Root) -> str:
    env = hostile_job(root)
    plant_disk_entries(root)
    return env.id


OUTPUTS = [
    (["ls"], 0),
    (["ls", "--json"], 0),
    (["ls", "--status", "failed"], 0),
    (["show", "{id}"], 0),
    (["show", "--json", "{id}"], 0),
    (["logs", "{id}"], 0),
    (["logs", "-f", "{id}"], 0),
    (["history", "{id}"], 0),
    (["history", "--json", "{id}"], 0),
    (["stats"], 0),
    (["stats", "--json"], 0),
    (["fsck"], 1),
    (["fsck", "--json"], 1),
]


@pytest.mark.parametrize(("argv", "code"), OUTPUTS, ids=[" ".join(a) for a, _ in OUTPUTS])
def test_no_output_holds_a_raw_control_character(
    root: Root, hostile: str, argv: list[str], code: int
) -> None:
    out = farro(root, *(a.replace("{id}", hostile) for a in argv), code=code).decode()
    assert first_dangerous(out) is None
    if "--json" in argv:
        json.loads(out)  # still JSON


def test_json_reads_back_exactly_what_the_job_holds(root: Root, hostile: str) -> None:
    rows = json.loads(farro(root, "ls", "--json"))
    assert [r["title"] for r in rows] == [payload("TITLE")]
    shown = json.loads(farro(root, "show", "--json", hostile))
    assert shown["prompt"]["labels"] == {"team": payload("LABEL")}
    assert shown["lifecycle"]["result"]["rubric"][0]["output_tail"].startswith(payload("CHECK"))
    stats = json.loads(farro(root, "stats", "--json"))
    assert payload("WNAME").replace("/", "-") in stats["workers"]


def test_logs_escape_by_default_and_raw_writes_the_bytes(root: Root, hostile: str) -> None:
    log = job.load(root, hostile).path / "logs" / "attempt-1.log"
    shown = farro(root, "logs", hostile).decode()
    assert escaped("LOG") in shown and "gpj.\\u202eexe\\x9b2J\\x7f</LOG>\n" in shown
    assert farro(root, "logs", "--raw", hostile) == log.read_bytes()
    assert farro(root, "logs", "--raw", "-f", hostile) == log.read_bytes()


def test_logs_show_bytes_that_are_not_utf8(root: Root) -> None:
    data = "b'ok \\xff\\xfe \\xe4\\xb8\\xad\\r\\nnext\\tx\\rover\\n'"  # not UTF-8, CRLF, CR
    writer = f"import sys; sys.stdout.buffer.write({data})"
    env = job.create(root, parse_spec({"prompt": "bytes", "agent": [sys.executable, "-c", writer]}))
    try:
        assert Worker(root, "bytes").run_once() is not None
    finally:
        for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
            CLAIMS.release(key)
    out = farro(root, "logs", env.id).decode()
    assert "ok \\xff\\xfe 中\nnext\tx\\rover\n" in out


WIDE = ["中文标题" * 12, "e\u0301" * 40 + " combining", "plain ascii title " * 5, "🙂" * 30]


def test_ls_fits_the_terminal_in_cells(root: Root) -> None:
    for title in WIDE:
        job.create(root, parse_spec({"prompt": "x", "title": title}))
    lines = farro(root, "ls", columns=70).decode().splitlines()
    assert len(lines) == 1 + len(WIDE)
    assert all(cell_len(ln) <= 70 for ln in lines), [(cell_len(ln), ln) for ln in lines]
    assert sum(ln.endswith("…") for ln in lines) == len(WIDE)  # cut, not wrapped


def test_stats_workers_table_is_aligned_in_cells(root: Root) -> None:
    workers = root.path / "run" / "workers"
    workers.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in ("中文工人", "e\u0301e\u0301e\u0301", "ascii-worker", "🙂🙂"):
        status = {"state": "idle", "host": "elsewhere", "pid": 1, "since": "2026-01-01T00:00:00Z"}
        (workers / f"{name}.json").write_text(json.dumps(status))
    lines = farro(root, "stats").decode().splitlines()
    start = lines.index(next(ln for ln in lines if "WORKER" in ln))
    table = list(itertools.takewhile(lambda ln: ln.startswith("  "), lines[start:]))
    assert len(table) == 5, lines
    # the STATE column starts at the same cell in every row
    starts = {cell_len(ln[: ln.index("idle" if ln is not table[0] else "STATE")]) for ln in table}
    assert len(starts) == 1, table


def test_headless_logs_show_a_hostile_inbox_file_name_as_text(root: Root, tmp_path: Path) -> None:
    """``farro-tui --workers-only`` logs what it ingests: the request file's name is
    whatever the file system holds, and the log (a terminal, or a journal read with
    cat later) gets it escaped."""
    import signal

    name = payload("INBOX").replace("/", "-") + ".json"
    request = {"prompt": "from the inbox", "title": payload("INBOXTITLE"), "agent": ["true"]}
    fd = os.open(root.inbox / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(request, fh)
    log = tmp_path / "headless.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "farro_tui.main", "--workers-only", "--root", str(root.path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:

            def succeeded() -> bool:
                if "succeeded" in log.read_text(errors="replace"):
                    return True
                assert proc.poll() is None, log.read_text(errors="replace")  # died instead
                return False

            wait_until(
                succeeded,
                '"succeeded" in the log',
                60,
                diagnose=lambda: log.read_text(errors="replace"),
            )
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_bytes().decode()
    assert escaped("INBOX")[:30] in text, text
    assert first_dangerous(text) is None, first_dangerous(text)


def test_a_hostile_file_name_in_the_workspace_shows_as_text(root: Root) -> None:
    """The agent creates a file outside allowed_paths whose name is a payload: the
    violation path, a file system name, is shown escaped by show, --json and the job pane."""
    from rich.console import Console

    from farro_tui.screens.job import render_job

    name = payload("VIOL").replace("/", "-")
    make = "import sys; open(sys.argv[1], 'w').close()"
    spec = {"prompt": "v", "allowed_paths": ["src/**"], "agent": [sys.executable, "-c", make, name]}
    env = job.create(root, parse_spec(spec))
    try:
        done = Worker(root, "viol").run_once()
    finally:
        for key in CLAIMS.keys():  # noqa: SIM118 (a registry, not a dict)
            CLAIMS.release(key)
    assert done is not None and done.lifecycle.result is not None
    assert done.lifecycle.result.violations == [name]
    shown = farro(root, "show", env.id).decode()
    assert first_dangerous(shown) is None and escaped("VIOL") in shown
    data = json.loads(farro(root, "show", "--json", env.id))
    assert data["lifecycle"]["result"]["violations"] == [name]
    with open(os.devnull, "w") as sink:
        console = Console(width=300, record=True, file=sink)
        console.print(render_job(done, [], killing=False))
    pane = console.export_text()
    assert first_dangerous(pane) is None and escaped("VIOL") in pane
