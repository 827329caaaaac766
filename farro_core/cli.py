"""``farro``: the operator's scripting CLI (docs/spec.md §7).

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

from farro_core.visible import visible, visible_json

if TYPE_CHECKING:
    from datetime import datetime

    from farro_core.envelope import Envelope, JobSpec, Result
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
    # every line printed goes through visible(): a caller that forgot cannot leak an
    # escape sequence (applying it twice changes nothing)
    sys.stdout.write(visible(line, lines=True) + "\n")


def _err(msg: str) -> None:
    # one line whatever the message holds: newlines folded, control characters shown
    sys.stderr.write("farro: " + visible(" ".join(str(msg).split())) + "\n")
    sys.stderr.flush()


def _clean(text: str, keep_newlines: bool = False) -> str:
    """The old name of :func:`farro_core.visible.visible`, kept for callers not yet moved."""
    return visible(text, lines=keep_newlines)


def _check_ids(ids: Iterable[str]) -> list[str]:
    """Valid ids, each once (in the order given); the first bad one is refused as bad input."""
    from farro_core.errors import BadInput
    from farro_core.ids import ID_PATTERN

    out: list[str] = []
    for i in ids:
        if not ID_PATTERN.fullmatch(i):
            raise BadInput(
                f"invalid job id {visible(repr(i))}: expected 8 to 64 letters, digits, - or _ "
                "(the ids `farro submit` and `farro ls` print)"
            )
        if i not in out:
            out.append(i)
    return out


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
    """A whole-second age in the two largest units: ``42s``, ``3m12s``, ``2h05m``, ``4d03h``."""
    from farro_core.humanize import duration

    return duration(seconds, missing="-")


def _duration(seconds: float) -> str:
    """A run time or a setting: ``0.4s`` and ``12.5s`` below a minute, then like :func:`_age`."""
    if seconds < 60:
        if seconds == int(seconds):
            return f"{int(seconds)}s"
        return f"{seconds:.2f}s" if seconds < 0.1 else f"{seconds:.1f}s"
    whole = int(seconds)
    if whole % 3600 == 0:
        return f"{whole // 3600}h" if whole < 86400 else _age(whole)
    if whole % 60 == 0 and whole < 3600:
        return f"{whole // 60}m"
    return _age(whole)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def _short_ts(value: str | None) -> str:
    """``2026-11-25T17:04:25.123456Z`` -> ``2026-11-25 17:04:25Z`` (UTC, as stored)."""
    if not value:
        return "-"
    text = value.replace("T", " ").replace("+00:00", "Z")
    head, _, tail = text.partition(".")
    return head + ("Z" if tail.endswith("Z") else "") if tail else text


def _when(value: "datetime | str | None", now: float) -> str:
    """A stored UTC time with its age: ``2026-11-25 17:04:25Z (3m12s ago)``."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else value.isoformat()
    ts = _parse_ts(text)
    if ts is None:
        return visible(text)
    ago = now - ts
    rel = f"in {_age(-ago + 0.999)}" if ago < 0 else f"{_age(ago)} ago"
    return f"{_short_ts(text)} ({rel})"


def _clock(value: "datetime | str | None", now: float) -> str:
    """A UTC time of day when it is today (``17:04:25Z``), else the full date and time."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else value.isoformat()
    full = _short_ts(text)
    today = _short_ts(_utc_iso(now))[:10]
    return full[11:] if full[:10] == today else full


def _utc_iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    """Columns sized in terminal cells (中 takes two), every cell shown through visible()."""
    from farro_core.visible import cells

    shown: list[Sequence[str]] = []
    used: list[list[int]] = []  # the cells each column of a row takes
    for row in (headers, *rows):
        joined = "".join(row)
        if joined.isascii() and joined.isprintable():  # the common case: as it is, 1 cell each
            shown.append(row)
            used.append(list(map(len, row)))
        else:
            escaped = [visible(cell) for cell in row]
            shown.append(escaped)
            used.append(list(map(cells, escaped)))
    widths = [max(col) for col in zip(*used, strict=True)]

    def fmt(row: Sequence[str], row_used: Sequence[int]) -> str:
        # ljust/rjust count characters: the len(cell) of them take row_used[i] cells
        padded = [
            cell.rjust(widths[i] + len(cell) - n)
            if i in right
            else cell.ljust(widths[i] + len(cell) - n)
            for i, (cell, n) in enumerate(zip(row[:-1], row_used, strict=False))
        ]
        return "  ".join([*padded, row[-1]]).rstrip()

    return [fmt(row, row_used) for row, row_used in zip(shown, used, strict=True)]


def _truncate(text: str, width: int) -> str:
    """At most ``width`` terminal cells."""
    from farro_core.visible import fit

    return fit(text, width)


def _dump_json(data: Any) -> None:
    # DEL, C1, bidi controls and lone surrogates as \u escapes: safe to cat, same data
    sys.stdout.write(visible_json(data) + "\n")


# ---------------------------------------------------------------- init


@app.command()
def init(
    root: RootOpt = None,
    example: Annotated[
        str | None,
        typer.Option(
            "--example",
            metavar="DIR",
            help="Also create DIR, a small git repository to try jobs on (kept if it exists).",
        ),
    ] = None,
) -> None:
    """Create a root (mode 0700); an existing root is checked and kept."""
    from pathlib import Path

    from farro_core.root import Root, resolve_path

    path = resolve_path(root)
    repo = Path(os.path.abspath(os.path.expanduser(example))) if example is not None else None
    if repo is not None and (repo == path or path in repo.parents):
        from farro_core.errors import BadInput

        raise BadInput(f"--example {repo}: inside the root; a workspace must be outside it")
    if repo is not None:
        from farro_core.example import check_target

        check_target(repo)  # refused before the root is made: nothing half done
    existed = os.path.isdir(path / "incoming")
    r = Root.init(path)
    _out(f"FARRO root {'ready' if existed else 'created'} at {r.path}")
    if repo is not None:
        from farro_core.example import create

        made = create(repo)
        _out(f"example repository {'created' if made else 'kept'} at {_clean(str(repo))}")
    if not existed:
        flag = "" if root is None else f" --root {r.path}"
        ws = "" if repo is None else f" --workspace {_clean(str(repo))}"
        _out(
            f'next: farro submit{flag} -p "TASK"{ws}, then run `farro-tui{flag}` to work the queue'
        )


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

    if not prompt.strip():
        raise BadInput("--prompt is empty: give the task for the agent")
    if timeout is not None and not timeout > 0:
        raise BadInput(f"--timeout {timeout:g}: must be more than 0 seconds")
    if max_attempts is not None and max_attempts < 1:
        raise BadInput(f"--max-attempts {max_attempts}: must be 1 or more")
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
        spec["agent"] = _agent_flag(agent)
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
        spec["labels"] = _labels(label)
    return spec


def _labels(items: Sequence[str]) -> dict[str, str]:
    """``--label K=V`` options as a dict; a malformed or repeated key is bad input."""
    from farro_core.errors import BadInput

    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadInput(f"--label {_clean(repr(item))}: expected KEY=VALUE")
        if key in labels:
            raise BadInput(f"--label {_clean(repr(key))} is given twice")
        labels[key] = value
    return labels


SUBMIT_EPILOG = (
    "\b\nExamples:\n"
    '  farro submit -p "Fix the flaky test in tests/test_io.py" --rubric-check "pytest -q"\n'
    "  farro submit jobs.json more.toml\n"
    '  farro submit --like 01JD3Q... --allow "src/**"   (a copy with a wider --allow)\n'
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
        str | None,
        typer.Option(
            metavar="CMD",
            help="Agent for this job: a preset (claude, codex, gemini, aider), a shell "
            "command, or JSON (an argv list or a preset table).",
        ),
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
    like: Annotated[
        str | None,
        typer.Option(
            "--like",
            metavar="ID",
            help="A new job like job ID, with the fields given here changed (label like=ID).",
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
    if like is not None:
        (like,) = _check_ids([like])
        if files:
            raise BadInput("--like copies one job: give no spec files with it")
    elif prompt is None and flags_given:
        raise BadInput(f"{flags_given[0]} needs --prompt (spec files carry their own fields)")
    elif prompt is None and not files:
        raise BadInput(
            "nothing to submit: give spec files, - for stdin, --prompt TEXT or --like ID"
        )
    if fmt not in (None, "json", "toml"):
        raise BadInput(f"--format {fmt!r}: expected json or toml")
    stdin_uses = files.count("-") + (prompt == "-")
    if stdin_uses > 1:
        raise BadInput("stdin can be read only once (- given twice)")
    chosen: Format | None = "toml" if fmt == "toml" else "json" if fmt == "json" else None

    # 1. read and validate everything; nothing is written until all of it is good
    specs: list[JobSpec] = []
    sources: list[tuple[str, list[JobSpec]]] = []  # for the workspace check, by name
    for path in files:
        raw, name = _read_input(path)
        try:
            dicts = parse_request(raw, name, chosen)
        except BadInput as exc:
            if path == "-" and chosen is None and "invalid JSON" in str(exc):
                raise BadInput(f"{exc} (TOML on stdin needs --format toml)") from None
            raise
        if path != "-":
            _anchor_workspaces(dicts, os.path.dirname(os.path.abspath(path)))
        sources.append((name, validate(dicts, name)))
        specs += sources[-1][1]
    if prompt == "-":
        raw = sys.stdin.buffer.read()
        try:
            prompt = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("--prompt -: stdin is not UTF-8 text") from None
    r: Root | None = None
    original: Envelope | None = None
    if like is not None:
        r = _open(root)  # the original is needed to know what the new job is like
        original = _load(r, like)
    if prompt is not None or original is not None:
        data = _flag_spec(
            prompt if prompt is not None else original.prompt.prompt if original else "",
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
        if original is None:
            sources.append(("--prompt", validate([data], "--prompt")))
        else:
            spec_like = _like(original, data, prompt is not None)
            sources.append((f"--like {like}", validate([spec_like], f"--like {like}")))
        specs += sources[-1][1]
    check_unique_ids(specs, "submit")

    # 2. open the root only now: bad input is reported as such even without a root
    r = r or _open(root)
    r.settings  # noqa: B018 - a bad farro.toml or FARRO_* value is refused before any write
    from farro_core.job import create_many
    from farro_core.workspace import check_specs

    for name, group in sources:  # a workspace no attempt could use is refused now
        check_specs(r, group, name)

    for env in create_many(r, specs):
        _out(env.id)


_COPIED = {
    "prompt",
    "title",
    "rubric",
    "allowed_paths",
    "workspace",
    "agent",
    "timeout_s",
    "max_attempts",
    "priority",
    "labels",
}


def _like(original: "Envelope", flags: dict[str, Any], new_prompt: bool) -> dict[str, Any]:
    """The spec of a job like ``original`` with the flags' fields changed; its
    prompt.json is only read. The new job's label ``like`` names the original."""
    base = original.prompt.model_dump(mode="json", include=_COPIED)
    if new_prompt and "title" not in flags:
        del base["title"]  # a title follows its prompt unless given
    labels = {**base["labels"], **flags.get("labels", {}), "like": original.id}
    return {**base, **flags, "labels": labels}


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
            raise BadInput(
                f"--status {part!r}: expected one of {', '.join(STATUSES)} "
                "(running means in-progress; join several with commas)"
            )
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
    from farro_core.listing import oldest_first, scan
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
    scanned = list(scan(r, queues, wanted))
    rows = sorted(
        (row for row in scanned if wanted is None or row.status in wanted), key=oldest_first
    )
    hidden = 0 if wanted is None else sum(1 for row in scanned if row.status == "corrupt")
    if as_json:
        _dump_json([_row_json(row) for row in rows])
        return
    if not rows:
        _out(f"no {' or '.join(wanted)} jobs" if wanted else "no jobs")
    else:
        _ls_table(rows)
    if hidden:
        _out(
            f"({_plural(hidden, 'unreadable job')} not shown: "
            "`farro fsck` tells what is wrong, `farro fsck --repair` quarantines)"
        )


def _ls_table(rows: "list[JobRow]") -> None:
    import shutil
    import time

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
                visible(row.title),
            ]
        )
    headers = ["ID", "STATUS", "ATTEMPT", "PRI", "AGE", "TITLE"]
    lines = _table(headers, cells, right={2, 3, 4})
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


def _signal_name(code: int) -> str:
    import signal

    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _agent_outcome(res: "Result") -> str:
    """How the agent's run ended, in words: ``agent exited 1 after 3.0s``."""
    took = _duration(res.duration_s)
    if res.killed:
        return f"agent killed on request after {took}"
    if res.timed_out:
        return f"agent timed out after {took}"
    if res.exit_code is None:
        return f"agent did not run ({took})"
    if res.exit_code < 0:
        return f"agent ended by {_signal_name(res.exit_code)} after {took}"
    return f"agent exited {res.exit_code} after {took}"


def _verdict_text(res: "Result") -> str:
    if res.verdict == "ungraded":
        return "ungraded (no runnable check)"
    if res.verdict is not None:
        return res.verdict
    if res.violations:
        return "not judged (paths outside allowed_paths)"
    return "not judged"


def _agent_shown(agent: Any) -> str:
    from farro_core.envelope import agent_text

    return visible(agent_text(agent)) if agent is not None else "(the configured agent)"


def _report_line(report: dict[str, Any]) -> str | None:
    parts = []
    cost = report.get("cost_usd")
    if isinstance(cost, (int, float)) and not isinstance(cost, bool):
        parts.append(f"cost ${cost:.4f}")
    tin, tout = report.get("tokens_in"), report.get("tokens_out")
    if isinstance(tin, int) and isinstance(tout, int):
        parts.append(f"tokens {tin:,} in / {tout:,} out")
    # --- agent presets (farro_core.agents): cache, turns, failure kind
    read, wrote = report.get("tokens_cache_read"), report.get("tokens_cache_write")
    if isinstance(read, int) and isinstance(wrote, int):
        parts.append(f"cache {read:,} read / {wrote:,} written")
    turns = report.get("turns")
    if isinstance(turns, int) and not isinstance(turns, bool):
        parts.append(f"turns {turns}")
    for key in ("agent", "failure"):
        if isinstance(report.get(key), str):
            parts.append(f"{key} {report[key]}")
    denied = report.get("permission_denials")
    if isinstance(denied, list) and denied:
        parts.append("denied " + ", ".join(str(d) for d in denied[:5]))
    return visible(", ".join(parts)) if parts else None


def _show_lines(env: "Envelope", now: float) -> list[str]:
    from farro_core.transitions import Status

    p, lc = env.prompt, env.lifecycle
    used = lc.attempt - lc.attempt_base
    if lc.status is Status.QUEUED and lc.attempt == 0:
        attempts = f"not run yet; up to {_plural(p.max_attempts, 'attempt')}"
    elif lc.status is Status.QUEUED and used == 0:
        attempts = f"up to {_plural(p.max_attempts, 'attempt')}"
    elif lc.status is Status.QUEUED:
        attempts = f"{used} of {p.max_attempts} attempts used; next: attempt {used + 1}"
    else:
        attempts = f"attempt {used} of {p.max_attempts}"
    if lc.attempt_base:
        # runs before an operator's requeue or a worker's release do not count
        attempts += f", after {_plural(lc.attempt_base, 'uncounted run')}"
    lines = [
        f"job        {env.id}",
        f"title      {visible(p.title)}",
        f"status     {lc.status}  ({attempts})",
        f"reason     {visible(lc.reason) or '-'}",
        f"path       {env.path}",
        f"created    {_when(p.created_at, now)} by {visible(p.created_by)}",
        f"updated    {_when(lc.updated_at, now)}, revision {lc.revision}",
        f"priority   {p.priority}    timeout {_duration(p.timeout_s)}    "
        f"max attempts {p.max_attempts}",
        f"workspace  {visible(p.workspace) if p.workspace else '(the job dir work/)'}",
        f"agent      {_agent_shown(p.agent)}",
        f"allowed    {', '.join(visible(a) for a in p.allowed_paths)}",
    ]
    if p.labels:
        lines.append(
            "labels     " + ", ".join(f"{visible(k)}={visible(v)}" for k, v in p.labels.items())
        )
    if lc.not_before is not None and lc.status is Status.QUEUED:
        lines.append(f"retry at   {_when(lc.not_before, now)}, backing off after a failed attempt")
    if lc.claim is not None:
        c = lc.claim
        where = f"{visible(c.worker)} ({visible(c.host)} pid {c.pid})"
        if lc.status is Status.IN_PROGRESS:
            lines.append(f"worker     {where}, running since {_when(c.claimed_at, now)}")
        else:
            lines.append(f"worker     {where}, claimed {_when(c.claimed_at, now)}")
    lines += ["", "prompt:"]
    body = visible(p.prompt, lines=True).splitlines() or [""]
    limit = 200
    lines += ["  " + ln for ln in body[:limit]]
    if len(body) > limit:
        lines.append(f"  … {len(body) - limit} more lines (farro show --json for all)")
    lines += ["", "rubric:" if p.rubric else "rubric:    (none: a run that exits 0 succeeds)"]
    for item in p.rubric:
        req = "required" if item.required else "optional"
        limit_s = f"(timeout {_duration(item.timeout_s)})"
        head = f"  {item.id}  [{req}] {visible(item.description)}"
        if item.check and item.check != item.description:
            lines += [head, f"      check: {visible(item.check)}  {limit_s}"]
        else:
            lines.append(f"{head}  {limit_s}" if item.check else head)
    res = lc.result
    lines.append("")
    if res is None:
        lines.append("result:    (none yet)")
        return lines
    lines += [
        f"result:    attempt {res.attempt}: {_agent_outcome(res)}; verdict {_verdict_text(res)}",
        f"  ran      {_short_ts(res.started_at.isoformat())} to "
        f"{_clock(res.finished_at, res.started_at.timestamp())}",
    ]
    if res.error:
        lines.append(f"  error    {visible(res.error)}")
    if res.rubric:
        lines.append("  rubric:")
        for v in res.rubric:
            mark = "PASS" if v.passed else "n/a " if v.passed is None else "FAIL"
            mark = {"error": "ERR ", "timed_out": "TIME"}.get(v.state or "", mark)
            opt = "" if v.required else " (optional)"
            code = "" if v.passed or v.exit_code is None else f"  exit {v.exit_code}"
            lines.append(f"    {mark}  {v.id}{opt}{code}")
            tail = visible(v.output_tail, lines=True).strip().splitlines()[-5:]
            lines += [f"          {ln}" for ln in tail if not v.passed]
    if res.violations:
        n = len(res.violations)
        lines.append(f"  violations ({_plural(n, 'path')} outside allowed_paths):")
        lines += [f"    {visible(v)}" for v in res.violations[:50]]
        if n > 50:
            lines.append(f"    … {n - 50} more")
    lines += _work_lines(res)
    report = _report_line(res.report)
    if report:
        lines.append(f"  report   {report}")
    summary = res.report.get("summary")
    if isinstance(summary, str) and summary.strip():
        lines.append(f"  summary  {_truncate(visible(' '.join(summary.split())), 200)}")
    if res.log:
        lines.append(
            f"  log      {visible(res.log)}  (farro logs {env.id} --attempt {res.attempt})"
        )
    return lines


def _work_lines(res: "Result") -> list[str]:
    """The attempt's work: branch, base, commits, diffstat, paths changed, ignored writes."""
    from farro_core.work import change_line, summary

    if res.work is None:
        return [f"  base     {res.base_commit}"] if res.base_commit else []
    lines = ["  work:"]
    lines += [
        f"    {label:<8} {_clean(text)}" for label, text in summary(res.work, res.base_commit)
    ]
    lines += [f"      {_clean(change_line(c))}" for c in res.work.changed[:50]]
    if res.work.changed_count > 50:
        lines.append(f"      … {res.work.changed_count - 50} more (farro show --json)")
    return lines


def _work_json(res: "Result | None") -> dict[str, Any] | None:
    if res is None or (res.work is None and res.base_commit is None):
        return None
    work = res.work.model_dump(mode="json") if res.work is not None else {}
    return {"base_commit": res.base_commit, **work}


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
                "work": _work_json(env.lifecycle.result),
            }
        )
        return
    import time

    for line in _show_lines(env, time.time()):
        _out(line)


# ---------------------------------------------------------------- requeue / kill


def _is(r: "Root", job_id: str) -> str:
    """``has already succeeded``, ``is queued``: a job's status in words, for refusals."""
    status, _ = _job_state(r, job_id)
    return {
        "succeeded": "has already succeeded",
        "failed": "has already failed",
        "killed": "was already killed",
        "in-progress": "is running (in-progress)",
        "gone": "has left the queues (quarantined?)",
    }.get(status, f"is {status}")


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


SelIdsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="ID", help="Job ids (or select with --status, --label).", show_default=False
    ),
]
SelStatusOpt = Annotated[
    str | None,
    typer.Option(
        "--status",
        "-s",
        metavar="STATUS",
        help="Every job in this status (comma-separated).",
        show_default=False,
    ),
]
SelLabelOpt = Annotated[
    list[str] | None,
    typer.Option(
        metavar="KEY=VALUE", help="Only jobs with this label. Repeatable.", show_default=False
    ),
]


def _selected(
    r_path: str | None,
    verb: str,
    legal: Sequence[str],
    job_ids: Sequence[str] | None,
    status: str | None,
    label: Sequence[str] | None,
) -> tuple["Root", list[str]]:
    """The root and the jobs a requeue or kill acts on: ids, or a selection.

    Nothing selected is not an error (``farro requeue $(... | jq ...)`` with no
    failed job): the caller says so and exits 0.
    """
    from farro_core.errors import BadInput
    from farro_core.operations import select

    ids = _check_ids(job_ids or [])
    if ids and (status is not None or label):
        raise BadInput(f"give job ids or --status/--label, not both (farro {verb})")
    wanted = _statuses(status) or [] if status is not None else list(legal)
    for s in wanted:
        if s not in legal:
            raise BadInput(f"--status {s}: only {_or(legal)} jobs can be {_PAST[verb]}")
    labels = _labels(label or [])
    r = _open(root=r_path)
    if status is None and not label:
        if not ids:
            _out(f"nothing to {verb}: no job given (give ids, --status or --label)")
        return r, ids
    picked = select(r, wanted, labels)
    if not picked:
        which = _or(wanted)
        having = ", ".join(f"{k}={v}" for k, v in labels.items())
        tail = f" labelled {having}" if having else ""
        _out(_clean(f"nothing to {verb}: no {which} jobs{tail}"))
    return r, picked


_PAST = {"requeue": "requeued", "kill": "killed"}


def _or(words: Sequence[str]) -> str:
    """``queued, in-progress or stale``."""
    return " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 2 else words)


@app.command(short_help="Put stale or failed jobs back in the queue.")
def requeue(
    job_ids: SelIdsArg = None,
    status: SelStatusOpt = None,
    label: SelLabelOpt = None,
    root: RootOpt = None,
) -> None:
    """Put stale or failed jobs back in the queue, with a fresh attempt budget.

    Give ids, or select: --status failed requeues every failed job, --label K=V
    every stale or failed job with that label. Nothing selected is not an error.
    """
    from farro_core.errors import IllegalTransition
    from farro_core.operations import requeue as do_requeue

    r, ids = _selected(root, "requeue", ("stale", "failed"), job_ids, status, label)
    by = _operator()

    def one(job_id: str) -> None:
        try:
            do_requeue(r, job_id, by=by)
        except IllegalTransition:
            raise IllegalTransition(
                f"job {job_id} {_is(r, job_id)}; only stale or failed jobs can be requeued"
            ) from None
        _out(f"{job_id} queued")

    _each(ids, one)


@app.command(short_help="Kill jobs (running ones through their worker).")
def kill(
    job_ids: SelIdsArg = None,
    status: SelStatusOpt = None,
    label: SelLabelOpt = None,
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
    """Kill jobs: queued or stale ones directly, running ones through their worker.

    Give ids, or select: --status queued kills every queued job, --label K=V every
    queued, running or stale job with that label. Nothing selected is not an error.
    """
    from farro_core.errors import BadInput, IllegalTransition
    from farro_core.operations import kill_many

    if not wait >= 0:
        raise BadInput(f"--wait {wait!r}: must be 0 or more seconds")
    r, ids = _selected(root, "kill", ("queued", "in-progress", "stale"), job_ids, status, label)
    worst = 0
    for res in kill_many(r, ids, by=_operator(), wait_s=wait):
        if res.outcome == "killed":
            _out(f"{res.job_id} killed")
        elif res.outcome == "requested" and res.env is not None:
            attempt = res.env.lifecycle.attempt
            _out(f"{res.job_id} kill requested; its worker will stop attempt {attempt}")
        elif res.error is not None:
            msg = str(res.error)
            if isinstance(res.error, IllegalTransition):
                msg = (
                    f"job {res.job_id} {_is(r, res.job_id)}; "
                    "only queued, running or stale jobs can be killed"
                )
            _err(msg)
            worst = max(worst, res.error.exit_code)
    if worst:
        raise _Failed(worst)


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
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Write the log's bytes unchanged, escape sequences and all "
            "(by default control characters are shown as text, like \\x1b).",
        ),
    ] = False,
    root: RootOpt = None,
) -> None:
    """Print the agent output of an attempt (logs/attempt-N.log); -f follows it.

    Control characters and escape sequences are shown as text (\\x1b[31m), so
    an agent's output cannot drive the terminal; --raw writes the bytes as stored.
    """
    import time

    from farro_core.errors import BadInput, NotFound, Refused
    from farro_core.visible import VisibleDecoder

    (job_id,) = _check_ids([job_id])
    if attempt is not None and attempt < 1:
        raise BadInput(f"--attempt {attempt}: attempts count from 1")
    r = _open(root)
    status, current = _job_state(r, job_id)
    if status == "gone":
        raise NotFound(f"no job {job_id} in {r.path}")
    if attempt is None:
        if current == 0:
            raise Refused(
                f"job {job_id} is {status} and has not run yet, so it has no log; "
                "`farro logs -f` works once a worker has claimed it"
            )
        attempt = current
    elif attempt > current:
        raise Refused(
            f"job {job_id} has run {_plural(current, 'attempt')} so far; "
            f"there is no attempt {attempt}"
        )
    name = f"attempt-{attempt}.log"
    decoder = None if raw else VisibleDecoder()

    def write(chunk: bytes, final: bool = False) -> None:
        if decoder is None:
            sys.stdout.buffer.write(chunk)
        else:
            sys.stdout.write(decoder.feed(chunk, final=final))

    fd: int | None = None
    try:
        while True:
            if fd is None:
                fd = _open_log(r, job_id, name)
            live = follow and status == "in-progress" and current == attempt
            if fd is not None:
                while chunk := os.read(fd, 1 << 16):
                    write(chunk)
                if not live:
                    write(b"", final=True)
                sys.stdout.flush()
            if not live:
                if fd is None:
                    starting = status == "in-progress" and current == attempt
                    raise NotFound(
                        f"job {job_id} has no log for attempt {attempt}"
                        + (" yet (it is starting; `farro logs -f` waits)" if starting else "")
                    )
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


def _history_row(rec: dict[str, Any]) -> list[str]:
    actor = str(rec.get("actor") or "-")
    worker = rec.get("worker")
    who = f"{worker}" if worker and actor == "agent" else f"{actor} {worker}" if worker else actor
    event = rec.get("event")
    reason = str(rec.get("reason") or "")
    if event not in (None, "transition", "created"):
        reason = f"[{event}] {reason}".rstrip()
    attempt = rec.get("attempt")
    return [
        _short_ts(str(rec.get("ts") or "")),
        str(rec.get("from") or "-"),
        str(rec.get("to") or "-"),
        str(attempt) if isinstance(attempt, int) and attempt > 0 else "-",
        who,
        reason,
    ]


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
    rows = [[visible(cell) for cell in _history_row(rec)] for rec in records]
    for line in _table(["TIME", "FROM", "TO", "ATTEMPT", "BY", "REASON"], rows, right={3}):
        _out(line)


# ---------------------------------------------------------------- stats


def _who(data: dict[str, Any]) -> str:
    return visible(f"{data.get('host', '?')} pid {data.get('pid', '?')}")


def _manager_line(
    held: bool, data: dict[str, Any] | None, now: float, silent: float | None, sweep_s: float
) -> str:
    if held:
        if data is None or "host" not in data:
            return "running (run/manager.json unreadable)"
        line = _who(data)
        if isinstance(data.get("since"), str) and _parse_ts(data["since"]) is not None:
            since = _parse_ts(data["since"]) or now
            line += f", since {_clock(data['since'], now)} (up {_age(now - since)})"
        if silent is not None and silent > max(10.0, 5 * sweep_s):
            line += f"; no sweep for {_age(silent)}: hung?"
        return line
    if data is None or "host" not in data:
        return "none"
    from farro_core.status_files import alive as is_alive

    alive = is_alive(data, "pid_started_at")
    how = ", exited" if alive is False else ", gave up the role" if alive else ""
    return f"none (last: {_who(data)}{how})"


_LIVE_ORDER = {"busy": 0, "stopping": 1, "paused": 2, "idle": 3}


def _worker_rows(
    workers: dict[str, dict[str, Any] | None], now: float
) -> tuple[str, list[list[str]]]:
    """The summary after ``workers`` and the table rows, live workers first."""
    from farro_core.status_files import worker_state

    live: list[tuple[int, list[str]]] = []
    ended: list[tuple[float, list[str]]] = []
    odd: list[list[str]] = []
    states: dict[str, int] = {}
    for name, data in workers.items():
        if data is None or not isinstance(data.get("state"), str):
            why = "(unreadable status file)" if data is None else "(unrecognised status file)"
            odd.append([visible(name), "?", "-", "-", why])
            continue
        state = visible(worker_state(data))  # "gone": died without stopping
        since = _parse_ts(data.get("since")) if isinstance(data.get("since"), str) else None
        job = "-"
        if data.get("job"):
            job = visible(str(data["job"]))
            if data.get("attempt"):
                job += visible(f" (attempt {data['attempt']})")
        done = data.get("jobs_done")
        row = [
            visible(name),
            state,
            "-" if since is None or state == "gone" else _age(now - since),
            str(done) if isinstance(done, int) else "-",
            job,
        ]
        if state in ("stopped", "gone"):
            ended.append((since or 0.0, row))
        else:
            live.append((_LIVE_ORDER.get(state, 9), row))
            states[state] = states.get(state, 0) + 1
    live.sort(key=lambda item: (item[0], item[1][0]))
    ended.sort(key=lambda item: -item[0])
    if live:
        detail = ", ".join(f"{n} {st}" for st, n in sorted(states.items(), key=_state_key))
        summary = f"{len(live)} running ({detail})"
    else:
        summary = "none running"
    if ended:
        summary += f"; {len(ended)} stopped or gone"
    if odd:
        summary += f"; {len(odd)} unreadable"
    rows = [row for *_, row in live]
    shown = ended[:5]
    rows += [row for _, row in shown]
    if len(ended) > len(shown):
        more = f"{len(ended) - len(shown)} more stopped or gone (farro stats --json)"
        rows.append(["…", "", "", "", more])
    return summary, rows + odd


def _containment_line(here: Any, workers: dict[str, dict[str, Any] | None]) -> str:
    """How processes are contained on this host, and what running workers report."""
    from farro_core.status_files import alive

    line = f"{here.mechanism} on this host ({_clean(here.detail)})"
    seen: dict[str, int] = {}
    for data in workers.values():
        if data is None or data.get("state") in ("stopped", None) or alive(data) is False:
            continue
        got = data.get("containment")
        mech = got.get("mechanism") if isinstance(got, dict) else None
        key = _clean(str(mech)) if mech else "unknown"
        seen[key] = seen.get(key, 0) + 1
    if seen:
        line += "; running workers: " + ", ".join(f"{n} {m}" for m, n in sorted(seen.items()))
    return line


def _state_key(item: tuple[str, int]) -> int:
    return _LIVE_ORDER.get(item[0], 9)


@app.command()
def stats(as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Counts per status, the oldest queued job, workers and manager."""
    import json
    import time

    from farro_core import fs, locks
    from farro_core.procs import containment
    from farro_core.status_files import read_status_file, worker_files

    r = _open(root)
    settings = r.settings  # a bad farro.toml is reported, not ignored
    max_queued = settings.max_queued
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
    workers = worker_files(r)
    manager_json = r.run / "manager.json"
    manager = read_status_file(manager_json) if os.path.lexists(manager_json) else None
    try:
        silent: float | None = now - os.stat(manager_json, follow_symlinks=False).st_mtime
    except OSError:
        silent = None
    try:
        dfd = fs.open_dir(r.run)
        try:
            held = not locks.is_free(dfd, "manager.lock")
        finally:
            os.close(dfd)
    except OSError:
        held = False
    oldest_age = None if oldest is None else max(0.0, now - oldest)
    here = containment(settings.containment)  # what a worker started here would use
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
                "containment": here.as_dict(),
            }
        )
        return
    notes = {
        "queued": ", ".join(
            ([f"oldest {_age(oldest_age)}"] if oldest_age is not None else [])
            + ([f"limit {max_queued} (max_queued)"] if max_queued else [])
        ),
        "stale": "`farro requeue` or `farro kill` them" if counts["stale"] else "",
        "corrupt": "unreadable: `farro fsck` tells, `farro fsck --repair` quarantines",
    }
    _out(f"root      {r.path}")
    _out(f"jobs      {sum(counts.values())} in all")
    width = max(len(s) for s in counts)
    digits = max(len(str(n)) for n in counts.values())
    for s, n in counts.items():
        if s != "corrupt" or n:
            _out(f"  {s:<{width}}  {n:>{digits}}   {notes.get(s, '')}".rstrip())
    sweep_s = settings.watchdog_interval_s
    _out(f"manager   {_manager_line(held, manager, now, silent, sweep_s)}")
    summary, rows = _worker_rows(workers, now)
    if not rows:
        summary = "none have run on this root"
    if summary.startswith("none") and (counts["queued"] or not held):
        summary += "; start `farro-tui --workers-only` (or the console) to run jobs"
    _out(f"workers   {summary}")
    for line in (
        _table(["WORKER", "STATE", "FOR", "DONE", "JOB"], rows, right={2, 3}) if rows else []
    ):
        _out("  " + line)
    _out(f"contain   {_containment_line(here, workers)}")


# ---------------------------------------------------------------- agents (presets)


def _agent_flag(value: str) -> Any:
    """``--agent``: a preset name, a shell string, or JSON (an argv list, a preset table)."""
    import json

    from farro_core.errors import BadInput

    if not value.lstrip().startswith(("[", "{")):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise BadInput(f"--agent {visible(value[:60])}: not valid JSON ({exc})") from None


@app.command(short_help="List the agent presets: command, CLI installed, version.")
def agents(as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Each agent preset: the command it runs, its CLI's version, what it still needs.

    What it needs is checked against the environment agents get (the root's
    env_allow / env_deny, when a root is found).
    """
    import shlex

    from farro_core import agents as presets
    from farro_core.errors import FarroError
    from farro_core.settings import Settings

    settings = Settings()
    try:
        settings = _open(root).settings
    except FarroError:
        if root is not None:
            raise
    rows = presets.listing(settings.passed_env(os.environ))
    if as_json:
        _dump_json(rows)
        return
    for row in rows:
        where = f"{row['version'] or 'installed'} ({row['installed']})"
        state = where if row["installed"] else f"not installed (from {row['package']})"
        _out(visible(f"{row['preset']:<8}{state}"))
        _out(visible(f"        command  {shlex.join(row['command'])}"))
        if row["env"]:
            env = " ".join(f"{k}={v}" for k, v in row["env"].items())
            _out(visible(f"        sets     {env}"))
        _out(visible(f"        needs    {row['missing'] or 'nothing more: ready'}"))


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
            detail = f.detail
            name = f.path.rsplit("/", 1)[-1]
            if detail.startswith(name + "/"):  # "done/ID: ID/job.json: ..." says ID twice
                detail = detail[len(name) + 1 :]
            _out(visible(f"{f.kind:<{width}}  {f.path}: {detail} -> {f.action}"))
        fixed = len(findings) - len(left)
        found = _plural(len(findings), "problem")
        _out(f"{found} found, {fixed} repaired" if repair else f"{found} found")
    if left:
        if repair:
            msg = f"{_plural(len(left), 'problem')} could not be repaired (see above)"
        else:
            it = "it" if len(left) == 1 else "them"
            msg = f"{_plural(len(left), 'problem')} found; `farro fsck --repair` fixes {it}"
        raise _Failed(_report(1, msg))


def _report(code: int, msg: str) -> int:
    _err(msg)
    return code


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (the console script passes it to sys.exit)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = typer.main.get_command(app)
        _plain_argument_help(command)
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


def _plain_argument_help(command: Any) -> None:
    """Help shows ``ID...`` as click does, not typer's ``{ID}...`` and ``ID <list[str]>``."""
    for sub in getattr(command, "commands", {}).values():
        for param in sub.params:
            if param.param_type_name != "argument" or not hasattr(param, "display_type_rich"):
                continue
            name = param.metavar or param.name.upper()
            usage = (name if param.required else f"[{name}]") + ("..." if param.nargs != 1 else "")
            param.display_type_rich = lambda ctx: None
            param.get_usage_pieces = lambda ctx, usage=usage: [usage]


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
        _err(f"{exc.format_message().rstrip('.')} (see `farro{cmd} --help`)")
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
