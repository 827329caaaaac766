"""The root's upkeep: ``farro fsck`` checks it and, with ``--repair``, fixes it (never
deletes); ``farro gc`` removes what FARRO made and no longer needs, and says what."""

from typing import Annotated

import typer

from farro_core.cli.base import JsonOpt, RootOpt, _Failed, _labels, _open, _report, _statuses, app
from farro_core.cli.render import _clean, _dump_json, _out, _plural
from farro_core.cli.steer import SelLabelOpt, SelStatusOpt, _or
from farro_core.visible import visible


@app.command(short_help="Check the root; --repair fixes (never deletes).")
def fsck(
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Fix what is found (quarantine, never delete); end the orphaned agents.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Check the root: misplaced, stale, corrupt, unaudited jobs, tmp/ leftovers, and
    agents a dead worker left running on this host (kind orphan; --repair ends them)."""
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


@app.command(short_help="Remove the worktrees, branches and logs FARRO no longer needs.")
def gc(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; remove nothing.")
    ] = False,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Only jobs finished this long ago (30d, 12h, 90m, 45s).",
            show_default=False,
        ),
    ] = None,
    status: SelStatusOpt = None,
    label: SelLabelOpt = None,
    archive: Annotated[
        bool,
        typer.Option(
            "--archive",
            help="Also move the selected finished jobs (needs --older-than) to ROOT/archive/.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    root: RootOpt = None,
) -> None:
    """Remove what FARRO made and no longer needs, and print what it freed.

    Worktrees no live worker holds; the farro/<id> branches and refs/farro/<id>/*
    refs of finished jobs (succeeded ones only when --status names succeeded, or
    once landed); attempt logs beyond gc_keep_logs. Queued, running and stale
    jobs are never touched, nor jobs marked kept (farro keep); every removal is
    written to the audit log. --archive moves old finished jobs to ROOT/archive/
    (show, history and logs still read them).
    """
    from dataclasses import asdict

    from farro_core import gc as collect
    from farro_core.errors import BadInput

    age = collect.parse_duration(older_than) if older_than is not None else None
    wanted = _statuses(status) if status is not None else None
    for s in wanted or []:
        if s not in collect.FINISHED:
            raise BadInput(
                f"--status {s}: gc only touches finished jobs ({_or(list(collect.FINISHED))})"
            )
    labels = _labels(label or [])
    if archive and age is None:
        raise BadInput("--archive needs --older-than: which finished jobs are old enough")
    r = _open(root)
    report = collect.run(
        r,
        dry_run=dry_run,
        older_than_s=age,
        statuses=wanted,
        labels=labels,
        archive=archive,
    )
    if as_json:
        body = asdict(report)
        _dump_json(body)
        return
    for line in report.lines:
        _out(_clean(line))
    _out(report.summary())
