"""``farro diff``, ``land``, ``retry`` and ``report``: the operator's loop after a job ends.

Review the change, bring it into a branch, ask for a follow-up, and see a batch
as a whole (docs/spec.md §7). The work itself is in farro_core's diff, land,
followup and report modules; these commands only present it.
"""

import os
import sys
from typing import Annotated, Any

import typer

from farro_core.cli.base import (
    IdArg,
    IdsArg,
    JsonOpt,
    RootOpt,
    _check_ids,
    _load,
    _open,
    _operator,
    app,
)
from farro_core.cli.render import (
    _clean,
    _dump_json,
    _duration,
    _out,
    _plural,
    _table,
    _truncate,
)

_DIFF_COLOUR = {"+": "32", "-": "31", "@": "36"}


def _diff_line(line: str, colour: bool) -> str:
    """One diff line, control characters escaped, coloured on a terminal by its first byte."""
    text = _clean(line)
    if not colour:
        return text
    if line.startswith(("diff --git ", "index ", "--- ", "+++ ", "new file", "deleted file")):
        code = "1"
    else:
        code = _DIFF_COLOUR.get(line[:1], "")
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def _use_colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


@app.command(short_help="Print a job's change: its work commit against its base.")
def diff(
    job_id: IdArg,
    attempt: Annotated[
        int | None,
        typer.Option("--attempt", metavar="N", help="Which attempt (default: the last).", min=1),
    ] = None,
    stat: Annotated[bool, typer.Option("--stat", help="Each path with its line counts.")] = False,
    name_only: Annotated[bool, typer.Option("--name-only", help="Only the paths.")] = False,
    root: RootOpt = None,
) -> None:
    """Print a job's change: base..work commit for a git workspace (every byte escaped,
    coloured on a terminal), the changed-path list for a plain directory."""
    from farro_core import diff as d
    from farro_core.errors import BadInput
    from farro_core.work import change_line

    if stat and name_only:
        raise BadInput("--stat and --name-only are exclusive: give one")
    (job_id,) = _check_ids([job_id])
    src = d.source(_load(_open(root), job_id), attempt)
    if not src.is_git:
        if name_only:
            for c in src.changes:
                _out(_clean(c.path))
        else:
            for c in src.changes:
                _out(_clean(change_line(c)))
        if src.changed_count > len(src.changes):
            _out(f"… {src.changed_count - len(src.changes)} more paths (farro show --json)")
        return
    if name_only or stat:
        stats = d.stat(src)
        if name_only:
            for s in stats:
                _out(_clean(s.path))
            return
        width = max((len(_clean(s.path)) for s in stats), default=0)
        for s in stats:
            counts = "binary" if s.insertions is None else f"+{s.insertions} -{s.deletions}"
            _out(f"{_clean(s.path).ljust(width)}  {counts}")
        ins = sum(s.insertions or 0 for s in stats)
        dels = sum(s.deletions or 0 for s in stats)
        _out(f"{_plural(len(stats), 'file')} changed, +{ins} -{dels}")
        return
    colour = _use_colour()
    text = d.unified(src)
    write = sys.stdout.write
    for line in text.split("\n")[:-1] if text else []:
        write(_diff_line(line, colour) + "\n")


@app.command(short_help="Bring succeeded jobs' work into a branch of their repository.")
def land(
    job_ids: IdsArg,
    into: Annotated[
        str | None,
        typer.Option(
            "--into",
            metavar="BRANCH",
            help="The branch (default: the one each job was based on).",
            show_default=False,
        ),
    ] = None,
    squash: Annotated[
        bool, typer.Option("--squash", help="One new commit on the branch (the default).")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="A merge commit of the branch and the work.")
    ] = False,
    ff_only: Annotated[
        bool, typer.Option("--ff-only", help="Move the branch to the work commit, or refuse.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Land a job that did not succeed, or land it again.")
    ] = False,
    root: RootOpt = None,
) -> None:
    """Bring succeeded jobs' work into a branch of their repository, in the order given.

    Refuses, touching nothing: a job that did not succeed (unless --force); work that
    does not apply cleanly to the branch; the branch checked out in a dirty work tree.
    Several jobs stop at the first that does not land."""
    from farro_core.errors import BadInput
    from farro_core.land import LandStopped, Mode, land_all

    picked = [m for m, on in (("squash", squash), ("merge", merge), ("ff-only", ff_only)) if on]
    if len(picked) > 1:
        raise BadInput(f"--{' and --'.join(picked)} are exclusive: give one")
    mode: Mode = "squash" if not picked else picked[0]  # type: ignore[assignment]
    ids = _check_ids(job_ids)
    r = _open(root)
    try:
        done = land_all(r, ids, into=into, mode=mode, force=force, by=_operator())
    except LandStopped as exc:
        for ld, job_id in zip(exc.done, ids, strict=False):
            _out(f"{job_id} landed into {_clean(ld.into)} as {ld.commit[:12]} ({ld.mode})")
        raise
    for ld, job_id in zip(done, ids, strict=True):
        _out(f"{job_id} landed into {_clean(ld.into)} as {ld.commit[:12]} ({ld.mode})")


@app.command(short_help="A follow-up job: the prompt, your note, what failed.")
def retry(
    job_id: IdArg,
    note: Annotated[
        str,
        typer.Option(
            "--note",
            metavar="TEXT",
            help="What the agent should do differently.",
            show_default=False,
        ),
    ],
    from_work: Annotated[
        bool,
        typer.Option("--from-work", help="Start from the job's last work commit, not its base."),
    ] = False,
    root: RootOpt = None,
) -> None:
    """Create a follow-up job: the original prompt, then the note, then the failing checks'
    names and output tails. The job itself is left as it is; the new one records it as
    its parent. Prints the new job's id."""
    from farro_core.followup import retry as do_retry

    (job_id,) = _check_ids([job_id])
    child = do_retry(_open(root), job_id, note, from_work=from_work, by=_operator())
    _out(child.id)


@app.command(short_help="A batch as a whole: per job and summed up.")
def report(
    label: Annotated[
        str | None,
        typer.Option("--label", metavar="K=V", help="The jobs with this label (e.g. batch=x)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="T", help="Jobs created since T (2h, 1d, or ISO time)."),
    ] = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="One CSV row per job.")] = False,
    root: RootOpt = None,
) -> None:
    """Every job in the selection (a label, a time, or all): verdict, each check, attempts,
    run time, cost and tokens; then counts by status, pass rate, cost, tokens, wall time,
    the slowest and costliest jobs, and the failures grouped by what failed. `farro submit
    FILE` labels its jobs batch=<file stem>, inbox goals likewise, unless a spec names one."""
    from farro_core import report as rp
    from farro_core.errors import BadInput

    if as_json and as_csv:
        raise BadInput("--json and --csv are exclusive: give one")
    picked = rp.parse_label(label) if label is not None else None
    start = rp.parse_since(since) if since is not None else None
    r = _open(root)
    jobs = rp.lines(r, rp.select(r, label=picked, since=start))
    summary = rp.summarize(jobs)
    if as_json:
        _dump_json(rp.as_json(jobs, summary))
        return
    if as_csv:
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(rp.CSV_COLUMNS)
        for j in jobs:
            w.writerow([_clean(cell) for cell in rp.csv_row(j)])
        return
    for text in _report_lines(jobs, summary, label, since):
        _out(text)


def _report_lines(jobs: list[Any], s: Any, label: str | None, since: str | None) -> list[str]:
    parts = [f"label {_clean(label)}" if label else "", f"since {_clean(since)}" if since else ""]
    what = " and ".join(p for p in parts if p)
    out = [f"{_plural(s.jobs, 'job')}" + (f" ({what})" if what else " (every job)")]
    if not jobs:
        return out
    rows = []
    for j in jobs:
        checks = " ".join(
            f"{'✓' if v else '?' if v is None else '✗'}{_clean(k)}" for k, v in j.checks.items()
        )
        rows.append(
            [
                j.id,
                j.status,
                j.verdict or "-",
                str(j.attempts),
                _duration(j.duration_s) if j.duration_s is not None else "-",
                f"${j.cost_usd:.4f}" if j.cost_usd is not None else "-",
                f"{j.tokens:,}" if j.tokens is not None else "-",
                _truncate(_clean(j.title), 40) + (f"  [{checks}]" if checks else ""),
            ]
        )
    heads = ["JOB", "STATUS", "VERDICT", "TRY", "RUN", "COST", "TOKENS", "TITLE [CHECKS]"]
    out += _table(heads, rows, right={3, 4, 5, 6})
    out.append("")
    counts = ", ".join(f"{n} {st}" for st, n in sorted(s.by_status.items()))
    rate = f"{s.pass_rate:.0%} ({s.passed} of {s.finished} finished)" if s.finished else "-"
    mean = f", mean ${s.mean_cost_usd:.4f}" if s.mean_cost_usd is not None else ""
    wall = _duration(s.wall_s) if s.wall_s is not None else "-"
    out += [
        f"status     {counts}",
        f"pass rate  {rate}",
        f"cost       ${s.cost_usd:.4f}{mean}",
        f"tokens     {s.tokens:,}",
        f"time       {_duration(s.run_s)} of agent runs, {wall} wall",
    ]
    if s.slowest:
        out.append("slowest    " + ", ".join(f"{i} {_duration(d)}" for i, d in s.slowest))
    if s.costliest:
        out.append("costliest  " + ", ".join(f"{i} ${c:.4f}" for i, c in s.costliest))
    if s.failures:
        out.append("failures:")
        for why, ids in s.failures.items():
            more = f" … {len(ids) - 5} more" if len(ids) > 5 else ""
            out.append(f"  {len(ids):>4}  {_clean(why)}: {' '.join(ids[:5])}{more}")
    return out
