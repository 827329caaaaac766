"""``farro requeue`` and ``farro kill``: the operator's moves, through farro_core.operations;
``farro keep``: the operator's mark, through farro_core.keep."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from farro_core.cli.base import (
    RootOpt,
    _check_ids,
    _Failed,
    _labels,
    _open,
    _operator,
    _statuses,
    app,
)
from farro_core.cli.render import _clean, _err, _out, _plural

if TYPE_CHECKING:
    from farro_core.root import Root


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
    command: str | None = None,
) -> tuple["Root", list[str]]:
    """The root and the jobs a requeue, kill or keep acts on: ids, or a selection
    (``command``: how the refusal names the command, when not ``farro VERB``).

    Nothing selected is not an error (``farro requeue $(... | jq ...)`` with no
    failed job): the caller says so and exits 0.
    """
    from farro_core.errors import BadInput
    from farro_core.operations import select

    ids = _check_ids(job_ids or [])
    if ids and (status is not None or label):
        raise BadInput(f"give job ids or --status/--label, not both (farro {command or verb})")
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
    if not picked.ids:
        which = _or(wanted)
        having = ", ".join(f"{k}={v}" for k, v in labels.items())
        tail = f" labelled {having}" if having else ""
        _out(_clean(f"nothing to {verb}: no {which} jobs{tail}"))
    if picked.unreadable:  # it may match: say so, as `farro ls` does
        _out(
            f"({_plural(picked.unreadable, 'unreadable job')} not considered: "
            "`farro fsck` tells what is wrong, `farro fsck --repair` quarantines)"
        )
    return r, picked.ids


_PAST = {"requeue": "requeued", "kill": "killed", "keep": "kept", "unmark": "unmarked"}


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
    from farro_core.operations import requeue as do_requeue

    r, ids = _selected(root, "requeue", ("stale", "failed"), job_ids, status, label)
    by = _operator()

    def one(job_id: str) -> None:
        # the refusal names the status the core refused (never one read again later: the
        # job may have moved since, and "is queued; only stale or failed…" would contradict)
        do_requeue(r, job_id, by=by)
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
    from farro_core.errors import BadInput
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
            _err(str(res.error))  # the status the core refused, as it read it then
            worst = max(worst, res.error.exit_code)
    if worst:
        raise _Failed(worst)


@app.command(short_help="Mark jobs kept: farro gc leaves their branch, refs and logs.")
def keep(
    job_ids: SelIdsArg = None,
    status: SelStatusOpt = None,
    label: SelLabelOpt = None,
    undo: Annotated[
        bool, typer.Option("--undo", help="Remove the mark: gc treats the jobs as usual again.")
    ] = False,
    root: RootOpt = None,
) -> None:
    """Mark jobs kept: farro gc never removes their farro/<id> branch, refs/farro/<id>/*
    refs or attempt logs, nor archives them, whatever its selection.

    Give ids, or select: --status succeeded marks every succeeded job, --label K=V
    every job with that label but running ones. Every job is checked first: an
    unknown, running or archived id refuses them all, and none is marked; a
    selected job that started running since it was selected is left out, and said
    so. A running job can be marked once it has finished. --undo removes the mark.
    """
    from farro_core.errors import Running
    from farro_core.keep import check, mark
    from farro_core.operations import select

    legal = ("queued", "stale", "succeeded", "failed", "killed")
    verb = "unmark" if undo else "keep"
    r, ids = _selected(root, verb, legal, job_ids, status, label, command="keep")
    said = "unmarked" if undo else "marked"
    if label and status is None:  # the label's running jobs: left out, and said so
        running = len(select(r, ["in-progress"], _labels(label)).ids)
        if running:
            _out(f"({_plural(running, 'running job')} not {said}: mark them once they finish)")
    envs, refused = check(r, ids)
    if not job_ids:  # a selection: a job it took that started running since is left out
        started = [exc for exc in refused if isinstance(exc, Running)]
        refused = [exc for exc in refused if not isinstance(exc, Running)]
        if started:
            _out(f"({_plural(len(started), 'job')} started running since: not {said})")
    if refused:
        for exc in refused:
            _err(str(exc))
        if len(ids) > 1:
            what = "no mark removed" if undo else "no job marked"
            _err(f"{what}: {len(refused)} of {len(ids)} jobs refused")
        raise _Failed(max(exc.exit_code for exc in refused))
    worst = 0
    for done in mark(envs, by=_operator(), kept=not undo):
        if isinstance(done.error, Running) and not job_ids:
            _out(f"({done.job_id} started running since: not {said})")
        elif done.error is not None:
            _err(str(done.error))
            worst = max(worst, done.error.exit_code)
        elif undo:
            _out(f"{done.job_id} {'no longer kept' if done.changed else 'was not kept'}")
        else:
            _out(f"{done.job_id} {'kept' if done.changed else 'kept already'}")
    if worst:
        raise _Failed(worst)
