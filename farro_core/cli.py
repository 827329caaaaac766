"""``farro``: the operator's scripting CLI (SPEC section 7).

Start-up time is part of the interface (``farro submit`` cold should take well
under 150 ms), so this module imports only typer at the top; each command
imports the parts of farro_core it needs. Errors are one line on stderr
starting ``farro: `` and never a traceback: :func:`main` runs typer with
``standalone_mode=False`` and maps every exception to an exit code
(0 success, 1 refused, 2 bad input, 130 interrupted).

No ``from __future__ import annotations`` here: typer reads every command's
signature at each start, and evaluating string annotations cost ~10 ms of it.
"""

import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from farro_core.envelope import Envelope, JobSpec
    from farro_core.listing import JobRow
    from farro_core.root import Root

app = typer.Typer(
    name="farro",
    help="Run batches of AI coding-agent jobs from a plain directory tree.",
    epilog=(
        "\b\nThe root is --root PATH, else $FARRO_ROOT, else ~/.farro.\n"
        "Exit status: 0 done, 1 refused (unknown job, illegal move, queue full), "
        "2 bad input."
    ),
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RootOpt = Annotated[
    str | None,
    typer.Option(
        "--root",
        metavar="PATH",
        help="The FARRO root (default: $FARRO_ROOT, else ~/.farro).",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
IdsArg = Annotated[list[str], typer.Argument(metavar="ID", help="Job ids.", show_default=False)]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="A job id.", show_default=False)]

STATUSES = ("queued", "in-progress", "stale", "succeeded", "failed", "killed")
_ALIASES = {"running": "in-progress", "inprogress": "in-progress", "in_progress": "in-progress"}


class _Failed(Exception):
    """Some items of a multi-id command were refused; each was reported already."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------- helpers


def _open(root: str | None) -> "Root":
    from farro_core.root import Root

    return Root.open(root)


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _err(msg: str) -> None:
    # one line whatever the message holds: newlines folded, control characters shown
    sys.stderr.write("farro: " + _clean(" ".join(str(msg).split())) + "\n")
    sys.stderr.flush()


def _clean(text: str, keep_newlines: bool = False) -> str:
    """Neutralise control characters: a title must not drive the operator's terminal."""
    out = []
    for ch in text:
        o = ord(ch)
        if ch in "\n\t" and keep_newlines:
            out.append(ch)
        elif o < 32 or o == 127 or 0x80 <= o < 0xA0:
            out.append("\\n" if ch == "\n" else "\\t" if ch == "\t" else f"\\x{o:02x}")
        else:
            out.append(ch)
    return "".join(out)


def _check_ids(ids: Iterable[str]) -> list[str]:
    from farro_core.ids import check_id

    return [check_id(i) for i in ids]


def _operator() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def _parse_ts(value: str | None) -> float | None:
    from datetime import datetime

    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _short_ts(value: str | None) -> str:
    """``2026-11-25T17:04:25.123456Z`` -> ``2026-11-25 17:04:25Z`` (UTC, as stored)."""
    if not value:
        return "-"
    text = value.replace("T", " ").replace("+00:00", "Z")
    head, _, tail = text.partition(".")
    return head + ("Z" if tail.endswith("Z") else "") if tail else text


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths[i], len(cell))

    def fmt(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row[:-1])
        ]
        return "  ".join([*cells, row[-1]]).rstrip()

    return [fmt(headers), *(fmt(r) for r in rows)]


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _dump_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


# ---------------------------------------------------------------- init


@app.command()
def init(root: RootOpt = None) -> None:
    """Create a root (mode 0700); an existing root is checked and kept."""
    from farro_core.root import Root, resolve_path

    path = resolve_path(root)
    existed = os.path.isdir(path / "incoming")
    r = Root.init(path)
    _out(f"FARRO root {'ready' if existed else 'created'} at {r.path}")


# ---------------------------------------------------------------- submit


def _read_input(path: str) -> tuple[bytes, str]:
    from farro_core.errors import BadInput
    from farro_core.specfile import MAX_REQUEST_BYTES

    if path == "-":
        return sys.stdin.buffer.read(MAX_REQUEST_BYTES + 1), "<stdin>"
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_REQUEST_BYTES + 1), path
    except OSError as exc:
        raise BadInput(f"cannot read spec file {path}: {exc.strerror or exc}") from None


def _flag_spec(
    prompt: str,
    title: str | None,
    rubric_check: list[str],
    allow: list[str],
    agent: str | None,
    workspace: str | None,
    timeout: float | None,
    max_attempts: int | None,
    priority: int | None,
    label: list[str],
) -> dict[str, Any]:
    from farro_core.errors import BadInput

    spec: dict[str, Any] = {"prompt": prompt}
    if title is not None:
        spec["title"] = title
    if any(not check.strip() for check in rubric_check):
        raise BadInput("--rubric-check may not be empty: give the shell command to run")
    if rubric_check:
        spec["rubric"] = [
            {"id": f"r{i}", "description": check, "check": check}
            for i, check in enumerate(rubric_check, 1)
        ]
    if allow:
        spec["allowed_paths"] = list(allow)
    if agent is not None:
        spec["agent"] = agent
    if workspace is not None:
        # the worker runs elsewhere: a path typed at a shell means this shell's cwd
        spec["workspace"] = (
            os.path.abspath(os.path.expanduser(workspace)) if workspace.strip() else workspace
        )
    if timeout is not None:
        spec["timeout_s"] = timeout
    if max_attempts is not None:
        spec["max_attempts"] = max_attempts
    if priority is not None:
        spec["priority"] = priority
    if label:
        labels: dict[str, str] = {}
        for item in label:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise BadInput(f"--label {item!r}: expected KEY=VALUE")
            if key in labels:
                raise BadInput(f"--label {key!r} is given twice")
            labels[key] = value
        spec["labels"] = labels
    return spec


SUBMIT_EPILOG = (
    "\b\nExamples:\n"
    '  farro submit -p "Fix the flaky test in tests/test_io.py" --rubric-check "pytest -q"\n'
    "  farro submit jobs.json more.toml\n"
    "  cat batch.json | farro submit -"
)


@app.command(epilog=SUBMIT_EPILOG)
def submit(
    files: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="SPEC_FILE",
            help="Job spec files (JSON, or TOML by .toml suffix); - reads stdin.",
            show_default=False,
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option(
            "--prompt",
            "-p",
            metavar="TEXT",
            help="Submit one job with this prompt (- reads stdin).",
        ),
    ] = None,
    title: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Title (default: the prompt's first line).")
    ] = None,
    rubric_check: Annotated[
        list[str] | None,
        typer.Option(
            "--rubric-check",
            metavar="CMD",
            help="A shell check run in the workspace; exit 0 passes. Repeatable (ids r1, r2...).",
        ),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow", metavar="GLOB", help="An allowed path glob (default **). Repeatable."
        ),
    ] = None,
    agent: Annotated[
        str | None, typer.Option(metavar="CMD", help="Agent command for this job.")
    ] = None,
    workspace: Annotated[
        str | None, typer.Option(metavar="PATH", help="Workspace: a git repo or a directory.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(metavar="SECONDS", help="Attempt timeout (default 3600).")
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option(metavar="N", help="Attempts before the job fails.")
    ] = None,
    priority: Annotated[
        int | None, typer.Option(metavar="N", help="Higher is claimed first (default 0).")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(metavar="KEY=VALUE", help="A label. Repeatable.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", metavar="json|toml", help="Format of the spec input (default: by suffix)."
        ),
    ] = None,
    root: RootOpt = None,
) -> None:
    """Submit jobs; prints the new ids, one per line. All or nothing."""
    from farro_core.errors import BadInput
    from farro_core.specfile import Format, check_unique_ids, parse_request, validate

    files = files or []
    flags_given = [
        name
        for name, value in (
            ("--title", title),
            ("--rubric-check", rubric_check),
            ("--allow", allow),
            ("--agent", agent),
            ("--workspace", workspace),
            ("--timeout", timeout),
            ("--max-attempts", max_attempts),
            ("--priority", priority),
            ("--label", label),
        )
        if value not in (None, [])
    ]
    if prompt is None and flags_given:
        raise BadInput(f"{flags_given[0]} needs --prompt (spec files carry their own fields)")
    if prompt is None and not files:
        raise BadInput("nothing to submit: give spec files, - for stdin, or --prompt TEXT")
    if fmt not in (None, "json", "toml"):
        raise BadInput(f"--format {fmt!r}: expected json or toml")
    stdin_uses = files.count("-") + (prompt == "-")
    if stdin_uses > 1:
        raise BadInput("stdin can be read only once (- given twice)")
    chosen: Format | None = "toml" if fmt == "toml" else "json" if fmt == "json" else None

    # 1. read and validate everything; nothing is written until all of it is good
    specs: list[JobSpec] = []
    for path in files:
        raw, name = _read_input(path)
        dicts = parse_request(raw, name, chosen)
        if path != "-":
            _anchor_workspaces(dicts, os.path.dirname(os.path.abspath(path)))
        specs += validate(dicts, name)
    if prompt is not None:
        if prompt == "-":
            raw = sys.stdin.buffer.read()
            try:
                prompt = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput("--prompt -: stdin is not UTF-8 text") from None
        data = _flag_spec(
            prompt,
            title,
            rubric_check or [],
            allow or [],
            agent,
            workspace,
            timeout,
            max_attempts,
            priority,
            label or [],
        )
        specs += validate([data], "--prompt")
    check_unique_ids(specs, "submit")

    # 2. open the root only now: bad input is reported as such even without a root
    r = _open(root)
    r.settings  # noqa: B018 - a bad farro.toml or FARRO_* value is refused before any write
    from farro_core.job import create_many

    for env in create_many(r, specs):
        _out(env.id)


def _anchor_workspaces(specs: list[dict[str, Any]], base: str) -> None:
    """A relative workspace in a spec file means relative to that file, as in a Makefile."""
    for spec in specs:
        ws = spec.get("workspace")
        if isinstance(ws, str) and ws.strip() and not ws.startswith("~") and not os.path.isabs(ws):
            spec["workspace"] = os.path.normpath(os.path.join(base, ws))


# ---------------------------------------------------------------- ls


def _statuses(status: str | None) -> list[str] | None:
    from farro_core.errors import BadInput

    if status is None:
        return None
    out = []
    for part in status.split(","):
        name = _ALIASES.get(part.strip().lower(), part.strip().lower())
        if name not in STATUSES:
            raise BadInput(f"--status {part!r}: expected one of {', '.join(STATUSES)}")
        out.append(name)
    return out


def _row_json(row: "JobRow") -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(row)


@app.command("ls")
def ls_(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            "-s",
            metavar="STATUS",
            help="Only jobs in this status (comma-separated: " + ", ".join(STATUSES) + ").",
        ),
    ] = None,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """List jobs (oldest first). Reads only the queue directories the status needs."""
    import time

    from farro_core.listing import scan
    from farro_core.transitions import QUEUE_DIR, Status

    wanted = _statuses(status)
    r = _open(root)
    if wanted is None:
        queues: list[str] = ["incoming", "active", "done"]
    else:
        queues = []
        for s in wanted:
            q = QUEUE_DIR[Status(s)]
            if q not in queues:
                queues.append(q)
    rows = [row for row in scan(r, queues) if wanted is None or row.status in wanted]
    if as_json:
        _dump_json([_row_json(row) for row in rows])
        return
    if not rows:
        _out(f"no {' or '.join(wanted)} jobs" if wanted else "no jobs")
        return
    now = time.time()
    cells = []
    for row in rows:
        created = _parse_ts(row.created_at)
        attempts = (
            f"{row.attempt - row.attempt_base}/{row.max_attempts}" if row.max_attempts else "-"
        )
        cells.append(
            [
                row.id,
                row.status,
                attempts,
                str(row.priority),
                _age(None if created is None else now - created),
                _clean(row.title),
            ]
        )
    headers = ["ID", "STATUS", "ATTEMPT", "PRI", "AGE", "TITLE"]
    lines = _table(headers, cells, right={2, 3, 4})
    import shutil

    width = shutil.get_terminal_size((120, 24)).columns
    for line in lines:
        _out(_truncate(line, max(width, 60)))


# ---------------------------------------------------------------- show


def _load(r: "Root", job_id: str) -> "Envelope":
    from farro_core.errors import Corrupt
    from farro_core.job import load

    try:
        return load(r, job_id)
    except Corrupt as exc:
        raise Corrupt(
            f"job {job_id} is unreadable ({exc}); `farro fsck --repair` moves it to quarantine/"
        ) from None


def _show_lines(env: "Envelope") -> list[str]:
    p, lc = env.prompt, env.lifecycle
    lines = [
        f"job        {env.id}",
        f"title      {_clean(p.title)}",
        f"status     {lc.status}  (attempt {lc.attempt - lc.attempt_base} of {p.max_attempts}"
        + (f", {lc.attempt} in all" if lc.attempt_base else "")
        + f"; revision {lc.revision})",
        f"reason     {_clean(lc.reason) or '-'}",
        f"path       {env.path}",
        f"created    {_short_ts(p.created_at.isoformat())} by {_clean(p.created_by)}",
        f"updated    {_short_ts(lc.updated_at.isoformat())}",
        f"priority   {p.priority}    timeout {p.timeout_s:g}s    max attempts {p.max_attempts}",
        f"workspace  {_clean(p.workspace) if p.workspace else '(the job dir work/)'}",
        f"agent      {_clean(str(p.agent)) if p.agent is not None else '(the configured agent)'}",
        f"allowed    {', '.join(_clean(a) for a in p.allowed_paths)}",
    ]
    if p.labels:
        lines.append(
            "labels     " + ", ".join(f"{_clean(k)}={_clean(v)}" for k, v in p.labels.items())
        )
    if lc.not_before is not None:
        lines.append(f"not before {_short_ts(lc.not_before.isoformat())} (retry backoff)")
    if lc.claim is not None:
        c = lc.claim
        lines.append(
            f"claim      {_clean(c.worker)} on {_clean(c.host)} pid {c.pid} "
            f"since {_short_ts(c.claimed_at.isoformat())}"
        )
    lines += ["", "prompt:"]
    body = _clean(p.prompt, keep_newlines=True).splitlines() or [""]
    limit = 200
    lines += ["  " + ln for ln in body[:limit]]
    if len(body) > limit:
        lines.append(f"  … {len(body) - limit} more lines (farro show --json for all)")
    lines += ["", "rubric:" if p.rubric else "rubric:    (none)"]
    for item in p.rubric:
        req = "required" if item.required else "optional"
        lines.append(f"  {item.id}  [{req}] {_clean(item.description)}")
        if item.check:
            lines.append(f"      check: {_clean(item.check)}  (timeout {item.timeout_s:g}s)")
    res = lc.result
    lines.append("")
    if res is None:
        lines.append("result:    (none yet)")
        return lines
    exit_code = "-" if res.exit_code is None else str(res.exit_code)
    flags = [f for f, on in (("timed out", res.timed_out), ("killed", res.killed)) if on]
    lines += [
        f"result:    attempt {res.attempt}, verdict {res.verdict or '-'}, exit {exit_code}, "
        f"{res.duration_s:.1f}s" + (f" ({', '.join(flags)})" if flags else ""),
        f"  ran      {_short_ts(res.started_at.isoformat())} .. "
        f"{_short_ts(res.finished_at.isoformat())}",
    ]
    if res.error:
        lines.append(f"  error    {_clean(res.error)}")
    if res.rubric:
        lines.append("  rubric:")
        for v in res.rubric:
            mark = "PASS" if v.passed else "n/a " if v.passed is None else "FAIL"
            opt = "" if v.required else " (optional)"
            lines.append(f"    {mark}  {v.id}{opt}")
            tail = _clean(v.output_tail, keep_newlines=True).strip().splitlines()[-5:]
            lines += [f"          {ln}" for ln in tail if not v.passed]
    if res.violations:
        lines.append(f"  violations ({len(res.violations)} paths outside allowed_paths):")
        lines += [f"    {_clean(v)}" for v in res.violations[:50]]
        if len(res.violations) > 50:
            lines.append(f"    … {len(res.violations) - 50} more")
    if res.log:
        lines.append(f"  log      {_clean(res.log)}")
    return lines


@app.command(short_help="Show a job: prompt, rubric, lifecycle and result.")
def show(job_id: IdArg, as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Show one job: prompt, rubric, allowed paths, lifecycle and result."""
    (job_id,) = _check_ids([job_id])
    env = _load(_open(root), job_id)
    if as_json:
        _dump_json(
            {
                "prompt": env.prompt.model_dump(mode="json"),
                "lifecycle": env.lifecycle.model_dump(mode="json"),
                "path": str(env.path),
            }
        )
        return
    for line in _show_lines(env):
        _out(line)


# ---------------------------------------------------------------- requeue / kill


def _each(ids: Sequence[str], action: Any) -> None:
    """Run ``action`` per id, reporting each refusal; exit with the worst code."""
    from farro_core.errors import FarroError

    worst = 0
    for job_id in ids:
        try:
            action(job_id)
        except FarroError as exc:
            _err(str(exc))
            worst = max(worst, exc.exit_code)
    if worst:
        raise _Failed(worst)


@app.command(short_help="Put stale or failed jobs back in the queue.")
def requeue(job_ids: IdsArg, root: RootOpt = None) -> None:
    """Put stale or failed jobs back in the queue, with a fresh attempt budget."""
    from farro_core.operations import requeue as do_requeue

    ids = _check_ids(job_ids)
    r = _open(root)
    by = _operator()

    def one(job_id: str) -> None:
        do_requeue(r, job_id, by=by)
        _out(f"{job_id} queued")

    _each(ids, one)


@app.command(short_help="Kill jobs (running ones through their worker).")
def kill(
    job_ids: IdsArg,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            help="How long to wait for the workers of running jobs (0: just ask).",
        ),
    ] = 30.0,
    root: RootOpt = None,
) -> None:
    """Kill jobs: queued or stale ones directly, running ones through their worker."""
    import time

    from farro_core.errors import BadInput, FarroError
    from farro_core.operations import kill as do_kill
    from farro_core.transitions import Status

    if not wait >= 0:
        raise BadInput(f"--wait {wait!r}: must be 0 or more seconds")
    ids = _check_ids(job_ids)
    r = _open(root)
    by = _operator()
    asked: dict[str, int] = {}  # running job -> the attempt asked to die

    def one(job_id: str) -> None:
        env = do_kill(r, job_id, by=by, wait_s=0)  # running: only writes control/kill
        if env.status is Status.KILLED:
            _out(f"{job_id} killed")
        elif wait == 0:
            _out(f"{job_id} kill requested; its worker will stop attempt {env.lifecycle.attempt}")
        else:
            asked[job_id] = env.lifecycle.attempt

    errors: list[int] = []
    try:
        _each(ids, one)
    except _Failed as exc:
        errors.append(exc.code)
    # every running job was asked at once; now wait for all their workers together
    deadline = time.monotonic() + wait
    while asked:
        for job_id, attempt in list(asked.items()):
            try:
                now = _load(r, job_id)
            except FarroError as exc:  # quarantined or unreadable meanwhile: report, go on
                _err(str(exc))
                errors.append(1)
                del asked[job_id]
                continue
            if now.lifecycle.attempt != attempt or now.status is not Status.IN_PROGRESS:
                del asked[job_id]
                if now.status is Status.KILLED:
                    _out(f"{job_id} killed")
                else:
                    _err(f"job {job_id} became {now.status} before its worker killed it")
                    errors.append(1)
        if asked and time.monotonic() >= deadline:
            for job_id in asked:
                _err(
                    f"kill requested, but job {job_id} is still in-progress after {wait:g}s "
                    "(is its worker alive? the watchdog marks it stale if not)"
                )
            errors.append(1)
            break
        if asked:
            time.sleep(0.05)
    if errors:
        raise _Failed(max(errors))


# ---------------------------------------------------------------- logs


def _job_state(r: "Root", job_id: str) -> tuple[str, int]:
    """(status, attempt) from job.json, cheaply; ("gone", 0) when it left the queues."""
    from farro_core.errors import NotFound
    from farro_core.listing import read_row

    for _ in range(3):
        try:
            path = r.locate(job_id)
        except NotFound:
            return "gone", 0
        row = read_row(r, path.parent.name, job_id)
        if row is not None:
            return row.status, row.attempt
    return "gone", 0


@app.command(short_help="Print an attempt's agent output; -f follows it.")
def logs(
    job_id: IdArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Follow until the attempt ends.")
    ] = False,
    attempt: Annotated[
        int | None,
        typer.Option("--attempt", "-a", metavar="N", help="Attempt number (default: current)."),
    ] = None,
    root: RootOpt = None,
) -> None:
    """Print the agent output of an attempt (logs/attempt-N.log); -f follows it."""
    import time

    from farro_core.errors import BadInput, NotFound, Refused

    (job_id,) = _check_ids([job_id])
    if attempt is not None and attempt < 1:
        raise BadInput(f"--attempt {attempt}: attempts count from 1")
    r = _open(root)
    status, current = _job_state(r, job_id)
    if status == "gone":
        raise NotFound(f"no job {job_id} in {r.path}")
    if attempt is None:
        if current == 0:
            raise Refused(f"job {job_id} has not run yet (it is {status}); no log")
        attempt = current
    elif attempt > current:
        raise Refused(f"job {job_id} has run {current} attempt(s); there is no attempt {attempt}")
    name = f"attempt-{attempt}.log"
    out = sys.stdout.buffer
    fd: int | None = None
    try:
        while True:
            if fd is None:
                fd = _open_log(r, job_id, name)
            live = follow and status == "in-progress" and current == attempt
            if fd is not None:
                while chunk := os.read(fd, 1 << 16):
                    out.write(chunk)
                out.flush()
            if not live:
                if fd is None:
                    raise NotFound(f"job {job_id} has no log for attempt {attempt}")
                # the status was read before this last drain, so nothing is lost
                return
            time.sleep(0.2)
            status, current = _job_state(r, job_id)
    finally:
        if fd is not None:
            os.close(fd)


def _open_log(r: "Root", job_id: str, name: str) -> int | None:
    """Open the log without following symlinks; the fd stays valid as the job dir moves."""
    from farro_core.errors import Corrupt, NotFound

    for _ in range(3):
        try:
            path = r.locate(job_id)
        except NotFound:
            return None
        try:
            return os.open(path / "logs" / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            if os.path.lexists(path):
                return None
        except OSError as exc:
            raise Corrupt(f"{job_id}/logs/{name}: {exc.strerror}") from None
    return None


# ---------------------------------------------------------------- history


def _history_line(rec: dict[str, Any]) -> str:
    frm = rec.get("from") or "-"
    actor = str(rec.get("actor") or "-")
    worker = rec.get("worker")
    who = f"{actor} ({worker})" if worker else actor
    event = rec.get("event")
    tag = f" [{event}]" if event not in (None, "transition") else ""
    return _clean(
        f"{_short_ts(str(rec.get('ts') or ''))}  {frm:>11} -> {rec.get('to')!s:<11}  "
        f"rev {rec.get('revision')}  attempt {rec.get('attempt')}  {who}{tag}: "
        f"{rec.get('reason') or ''}"
    ).rstrip(": ")


@app.command()
def history(job_id: IdArg, as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """The job's audit trail, oldest first."""
    from farro_core import audit

    (job_id,) = _check_ids([job_id])
    r = _open(root)
    records = [rec for rec in audit.read(r, job_id) if rec.get("job") == job_id]
    if not records:
        r.locate(job_id)  # NotFound when there is no such job at all
        if as_json:
            _dump_json([])
        else:
            _out(f"no audit lines for job {job_id}")
        return
    if as_json:
        _dump_json(records)
        return
    for rec in records:
        _out(_history_line(rec))


# ---------------------------------------------------------------- stats


def _read_status_file(path: str) -> dict[str, Any] | None:
    import json

    from farro_core import fs

    try:
        data = json.loads(fs.read_at(None, path, limit=1 << 20))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _summary(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            parts.append(f"{key}={value}")
    return _clean(_truncate("  ".join(parts), 160))


def _process_gone(data: dict[str, Any]) -> bool:
    """A status file left by a process that died: only knowable for this host."""
    from farro_core.identity import host

    pid = data.get("pid")
    if data.get("host") != host() or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _since(data: dict[str, Any], now: float) -> str | None:
    ts = _parse_ts(data.get("since")) if isinstance(data.get("since"), str) else None
    return None if ts is None else _age(now - ts)


def _worker_line(data: dict[str, Any], now: float) -> str:
    if "state" not in data:
        return _summary(data)
    parts = [str(data["state"])]
    if data.get("job"):
        parts.append(f"job {data['job']}" + (f"/{data['attempt']}" if data.get("attempt") else ""))
    since = _since(data, now)
    if since:
        parts.append(f"for {since}")
    if isinstance(data.get("jobs_done"), int):
        parts.append(f"{data['jobs_done']} done")
    if data.get("host") is not None:
        parts.append(f"{data['host']} pid {data.get('pid')}")
    if _process_gone(data):
        parts.append("(process gone: stale file)")
    return _clean("  ".join(parts))


def _manager_line(held: bool, data: dict[str, Any] | None, now: float) -> str:
    who = ""
    if data is not None and data.get("host") is not None:
        since = _since(data, now)
        who = f"{data['host']} pid {data.get('pid')}" + (f", for {since}" if since else "")
    if held:
        return _clean(f"running on {who}" if who else "running (lock held)")
    return _clean(f"none (lock free; last held by {who})" if who else "none (lock free)")


@app.command()
def stats(as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Counts per status, the oldest queued job, workers and manager."""
    import json
    import time

    from farro_core import fs, locks

    r = _open(root)
    max_queued = r.settings.max_queued  # a bad farro.toml is reported, not ignored
    counts = dict.fromkeys((*STATUSES, "corrupt"), 0)
    oldest: float | None = None
    for queue in ("incoming", "active", "done"):
        for job_id in r.ids(queue):
            try:
                lc = json.loads(fs.read_file(r.path / queue / job_id / "job.json"))
                status = str(lc["status"])
            except (OSError, ValueError, KeyError, TypeError):
                status = "corrupt"
                lc = {}
            if status not in counts:
                status = "corrupt"
            counts[status] += 1
            if status == "queued":
                ts = _parse_ts(lc.get("created_at"))
                if ts is not None and (oldest is None or ts < oldest):
                    oldest = ts
    now = time.time()
    workers: dict[str, Any] = {}
    try:
        names = sorted(os.listdir(r.workers_dir))
    except OSError:
        names = []
    for name in names:
        if name.endswith(".json") and not name.startswith("."):
            workers[name[: -len(".json")]] = _read_status_file(str(r.workers_dir / name))
    manager = (
        _read_status_file(str(r.run / "manager.json"))
        if os.path.lexists(r.run / "manager.json")
        else None
    )
    try:
        dfd = fs.open_dir(r.run)
        try:
            held = not locks.is_free(dfd, "manager.lock")
        finally:
            os.close(dfd)
    except OSError:
        held = False
    oldest_age = None if oldest is None else max(0.0, now - oldest)
    if as_json:
        _dump_json(
            {
                "root": str(r.path),
                "counts": counts,
                "total": sum(counts.values()),
                "oldest_queued_age_s": oldest_age,
                "max_queued": max_queued or None,
                "manager_lock_held": held,
                "manager": manager,
                "workers": workers,
            }
        )
        return
    _out(f"root       {r.path}")
    width = max(len(s) for s in counts)
    for s, n in counts.items():
        if s != "corrupt" or n:
            _out(f"  {s:<{width}}  {n:>7}")
    _out(f"  {'total':<{width}}  {sum(counts.values()):>7}")
    if max_queued:
        _out(f"queue limit: {counts['queued']} of max_queued {max_queued}")
    _out(f"oldest queued job: {_age(oldest_age)}" if oldest_age is not None else "queue empty")
    _out(f"manager    {_manager_line(held, manager, now)}")
    if not workers:
        _out("workers    none reporting")
    else:
        _out(f"workers    {len(workers)} reporting")
        width = max(len(name) for name in workers)
        for name, data in workers.items():
            line = _worker_line(data, now) if data is not None else "(unreadable)"
            _out(f"  {_clean(name):<{width}}  {line}")


# ---------------------------------------------------------------- fsck


@app.command(short_help="Check the root; --repair fixes (never deletes).")
def fsck(
    repair: Annotated[
        bool, typer.Option("--repair", help="Fix what is found (quarantine, never delete).")
    ] = False,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Check the root: misplaced, stale, corrupt, unaudited jobs and tmp/ leftovers."""
    from dataclasses import asdict

    from farro_core.fsck import fsck as run_fsck

    r = _open(root)
    findings = run_fsck(r, repair=repair)
    left = [f for f in findings if not f.repaired]
    if as_json:
        _dump_json([asdict(f) for f in findings])
    elif not findings:
        _out(f"{r.path}: clean")
    else:
        width = max(len(f.kind) for f in findings)
        for f in findings:
            _out(_clean(f"{f.kind:<{width}}  {f.path}: {f.detail} -> {f.action}"))
        fixed = len(findings) - len(left)
        _out(f"{len(findings)} finding(s), {fixed} repaired")
    if left:
        hint = "" if repair else "; `farro fsck --repair` fixes them"
        raise _Failed(_report(1, f"{len(left)} problem(s) left{hint}"))


def _report(code: int, msg: str) -> int:
    _err(msg)
    return code


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = typer.main.get_command(app)
        rv = command.main(args=args, prog_name="farro", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except KeyboardInterrupt:
        code = 130
    except _Failed as exc:
        code = exc.code
    except BrokenPipeError:
        # the reader went away (farro ls | head): stop quietly
        _silence_stdout()
        code = 1
    except BaseException as exc:
        code = _map_exception(exc)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code


def _map_exception(exc: BaseException) -> int:
    from farro_core.errors import FarroError

    if isinstance(exc, FarroError):
        _err(str(exc) or type(exc).__name__)
        return exc.exit_code
    if isinstance(exc, typer.Exit):
        return exc.exit_code
    if isinstance(exc, typer.Abort):
        return 130
    if isinstance(exc, typer.TyperException):  # click usage errors and friends
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.stdout.write(exc.format_message() + "\n")
            return 0
        ctx = getattr(exc, "ctx", None)
        cmd = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
        _err(f"{exc.format_message()} (see `farro{cmd} --help`)")
        return 2 if exc.exit_code == 2 else exc.exit_code or 1
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1
    if os.environ.get("FARRO_DEBUG"):
        raise exc
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        _err(f"{exc.strerror or exc}{where}")
        return 1
    _err(f"internal error: {type(exc).__name__}: {exc} (FARRO_DEBUG=1 shows the traceback)")
    return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
