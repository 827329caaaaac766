"""``farro init`` and ``farro submit``: make a root, put jobs in its queue."""

import os
import stat
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from farro_core.cli.base import RootOpt, _check_ids, _labels, _open, app
from farro_core.cli.render import _clean, _err, _out

if TYPE_CHECKING:
    from farro_core.envelope import JobSpec, Prompt
    from farro_core.root import Root


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
    if repo is not None:
        from farro_core.errors import BadInput
        from farro_core.root import enclosing_root

        # compared for real: a root given as a symlink is made where the link points
        real, real_repo = Path(os.path.realpath(path)), Path(os.path.realpath(repo))
        if real_repo == real or real in real_repo.parents:
            raise BadInput(f"--example {repo}: inside the root; a workspace must be outside it")
        other = enclosing_root(repo)
        if other is not None:
            raise BadInput(
                f"--example {repo}: inside the FARRO root {other}; a workspace must be outside "
                "every root"
            )
    from farro_core import example as ex

    # built aside before the root is made, placed after: nothing half done either way
    built = ex.build(repo) if repo is not None else None
    existed = os.path.isdir(path / "incoming")
    try:
        r = Root.init(path)
    except BaseException:
        if built is not None:
            ex.discard(built)
        raise
    _out(f"FARRO root {'ready' if existed else 'created'} at {r.path}")
    if repo is not None:
        if built is not None:
            ex.place(built, repo)
        _out(f"example repository {'created' if built else 'kept'} at {_clean(str(repo))}")
    _doctor_warnings(r)
    if not existed:
        flag = "" if root is None else f" --root {r.path}"
        ws = "" if repo is None else f" --workspace {_clean(str(repo))}"
        _out(
            f'next: farro submit{flag} -p "TASK"{ws}, then run `farro-tui{flag}` to work the queue'
        )


def _doctor_warnings(r: "Root") -> None:
    """init runs the doctor too: what is not a pass is said on stderr."""
    from farro_core.doctor import diagnose

    report = diagnose(r)
    for c in report.checks:
        if c.verdict != "pass":
            _err(f"doctor: {c.verdict}: {c.name}: {c.detail}")
    if report.failed:
        _err("workers will refuse to run on this root (`farro doctor` tells why)")


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
    no_agent_check: Annotated[
        bool,
        typer.Option(
            "--no-agent-check",
            help="Submit even where an agent preset lacks its key or config on this host "
            "(the workers run on another host).",
        ),
    ] = False,
    root: RootOpt = None,
) -> None:
    """Submit jobs; prints the new ids, one per line. All or nothing.

    A job whose agent preset lacks its key or configuration here is refused
    (`farro agents` lists what each needs), unless --no-agent-check or the
    agent_check setting is off.
    """
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
        for item in label or []:
            if item.split("=", 1)[0].strip() == "like":
                raise BadInput(f"--label {item}: --like sets the label like={like} itself")
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
        if path != "-" and _regular(path):  # a pipe (`<(jq …)`, /dev/fd/63) is read as stdin
            _anchor_workspaces(dicts, os.path.dirname(os.path.abspath(path)))
            _batch_label(dicts, path)
        sources.append((name, validate(dicts, name)))
        specs += sources[-1][1]
    if prompt == "-":
        raw = sys.stdin.buffer.read()
        try:
            prompt = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput("--prompt -: stdin is not UTF-8 text") from None
    r: Root | None = None
    original: Prompt | None = None
    if like is not None:
        r = _open(root)  # the original is needed to know what the new job is like
        original = _original(r, like)
    if prompt is not None or original is not None:
        data = _flag_spec(
            prompt if prompt is not None else original.prompt if original else "",
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
    settings = r.settings  # a bad farro.toml or FARRO_* value is refused before any write
    from farro_core.envelope import preset_of
    from farro_core.job import create_many

    here = settings.agent_check and not no_agent_check
    environ = settings.passed_env(os.environ) if here else None
    workspaces = any(spec.workspace is not None for spec in specs)
    if workspaces:  # else workspace.py is not needed
        from farro_core.workspace import check_specs
    presets = any(preset_of(spec, settings.agent) is not None for spec in specs)
    if presets:  # else agents.py is not needed (~2% of a cold submit)
        from farro_core import agents
    for name, group in sources:  # a workspace or a preset no attempt could use is refused now
        if workspaces:
            check_specs(r, group, name)
        if presets:
            agents.check_specs(group, settings.agent, environ, name)

    for env in create_many(r, specs):
        _out(env.id)


def _copied() -> set[str]:
    """Every field a spec and prompt.json share but the id: a field added later (as
    judge_ignored and ignore_file were) is copied too, never silently dropped."""
    from farro_core.envelope import JobSpec

    return set(JobSpec.model_fields) - {"id", "schema_version"}


def _original(r: "Root", job_id: str) -> "Prompt":
    """The prompt.json of the job to copy: its job.json (status, attempts) plays no
    part, so a job whose job.json is corrupt can still be copied."""
    from farro_core.errors import Corrupt
    from farro_core.job import prompt_of

    try:
        return prompt_of(r, job_id)
    except Corrupt as exc:
        raise Corrupt(
            f"--like {job_id}: its prompt.json is unreadable ({exc}), so there is nothing "
            "to copy; `farro fsck --repair` moves it to quarantine/"
        ) from None


def _like(original: "Prompt", flags: dict[str, Any], new_prompt: bool) -> dict[str, Any]:
    """The spec of a job like ``original`` with the flags' fields changed; its
    prompt.json is only read. The new job's label ``like`` names the original."""
    base = original.model_dump(mode="json", include=_copied())
    if new_prompt and "title" not in flags:
        del base["title"]  # a title follows its prompt unless given
    labels = {**base["labels"], **flags.get("labels", {}), "like": original.id}
    return {**base, **flags, "labels": labels}


def _regular(path: str) -> bool:
    """Whether a spec file is a file: only one has a directory to anchor a relative
    workspace to and a stem to name its batch (``batch=63`` said nothing)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _anchor_workspaces(specs: list[dict[str, Any]], base: str) -> None:
    """A relative workspace in a spec file means relative to that file, as in a Makefile."""
    for spec in specs:
        ws = spec.get("workspace")
        if isinstance(ws, str) and ws.strip() and not ws.startswith("~") and not os.path.isabs(ws):
            spec["workspace"] = os.path.normpath(os.path.join(base, ws))


def _batch_label(specs: list[dict[str, Any]], path: str) -> None:
    """``farro submit FILE``: each job gets ``batch=<file stem>`` unless it names a batch."""
    stem = os.path.splitext(os.path.basename(path))[0]
    for spec in specs:
        labels = spec.get("labels")
        if labels is None:
            spec["labels"] = {"batch": stem}
        elif isinstance(labels, dict) and "batch" not in labels:
            labels["batch"] = stem


def _agent_flag(value: str) -> Any:
    """``--agent``: a preset name, a shell string, or JSON (an argv list, a preset table)."""
    import json

    from farro_core.errors import BadInput

    if not value.lstrip().startswith(("[", "{")):
        return value
    try:
        return json.loads(value)
    except ValueError as exc:
        raise BadInput(f"--agent {_clean(value[:60])}: not valid JSON ({exc})") from None
