"""``farro ls``, ``show``, ``logs`` and ``history``: read jobs, never change them.

Why one file of ~550 lines: the four commands share the rendering of a job (its
rows, its result, its work); the computing is in the core (listing, work, audit).
"""

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from farro_core.cli.base import (
    STATUSES,
    IdArg,
    JsonOpt,
    RootOpt,
    _check_ids,
    _load,
    _open,
    _statuses,
    app,
)
from farro_core.cli.render import (
    _age,
    _clean,
    _clock,
    _dump_json,
    _duration,
    _out,
    _parse_ts,
    _plural,
    _short_ts,
    _table,
    _truncate,
    _when,
)
from farro_core.visible import visible

if TYPE_CHECKING:
    from farro_core.envelope import Envelope, Result
    from farro_core.listing import JobRow
    from farro_core.root import Root


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
                f"{row.status}+kept" if row.kept else row.status,
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
        from farro_core.rubric import ungraded_why

        return f"ungraded ({ungraded_why(res.rubric)})"
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


def _show_lines(
    env: "Envelope", now: float, children: Sequence[str] = (), left: Sequence[str] = ()
) -> list[str]:
    from farro_core.transitions import TERMINAL, Status

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
    if lc.kept is not None:  # farro keep
        lines.append(
            f"kept       {_when(lc.kept.at, now)} by {visible(lc.kept.by)}: "
            "farro gc leaves its branch, refs and logs"
        )
    if p.labels:
        lines.append(
            "labels     " + ", ".join(f"{visible(k)}={visible(v)}" for k, v in p.labels.items())
        )
    if p.lineage is not None:
        how = f", from its work {p.lineage.from_work[:12]}" if p.lineage.from_work else ""
        lines.append(f"parent     {p.lineage.parent} (a follow-up{how})")
    if children:
        lines.append(f"follow-ups {', '.join(children)}")
    judging = _judging(p.judge_ignored, p.ignore_file)
    if judging:
        lines.append(f"judging    {judging}")
    if lc.not_before is not None and lc.status is Status.QUEUED:
        lines.append(f"retry at   {_when(lc.not_before, now)}, backing off after a failed attempt")
    lines += [f"left       {visible(why)}" for why in left]
    if lc.claim is not None:
        c = lc.claim
        where = f"{visible(c.worker)} ({visible(c.host)} pid {c.pid})"
        if lc.status is Status.IN_PROGRESS:
            lines.append(f"worker     {where}, running since {_when(c.claimed_at, now)}")
        elif lc.status in TERMINAL:  # an ended attempt: history, not a live worker
            lines.append(f"last claim {where}, from {_when(c.claimed_at, now)}, ended")
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
    if res.landed is not None:
        lines.append(f"  landed   {_clean(res.landed.text())}")
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
    for label, text in summary(res.work, res.base_commit):
        lines.append(f"    {label:<8} {_clean(text)}")
        if label == "changed":  # its paths under it, never under the ignored writes
            lines += [f"    {'':<8} {_clean(change_line(c))}" for c in res.work.changed[:50]]
            if res.work.changed_count > 50:
                more = res.work.changed_count - 50
                lines.append(f"    {'':<8} … {more} more (farro show --json)")
    return lines


def _work_json(res: "Result | None") -> dict[str, Any] | None:
    if res is None or (res.work is None and res.base_commit is None):
        return None
    work = res.work.model_dump(mode="json") if res.work is not None else {}
    return {"base_commit": res.base_commit, **work}


@app.command(short_help="Show a job: prompt, rubric, lifecycle and result.")
def show(job_id: IdArg, as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Show one job: prompt, rubric, allowed paths, lifecycle and result."""
    from farro_core.followup import children

    (job_id,) = _check_ids([job_id])
    r = _open(root)
    env = _load(r, job_id)
    if as_json:
        _dump_json(
            {
                "prompt": env.prompt.model_dump(mode="json"),
                "lifecycle": env.lifecycle.model_dump(mode="json"),
                "path": str(env.path),
                "work": _work_json(env.lifecycle.result),
                "follow_ups": children(r, job_id),
            }
        )
        return
    import time

    for line in _show_lines(env, time.time(), children(r, job_id), _left(r, env)):
        _out(line)


def _left(r: "Root", env: "Envelope") -> list[str]:
    """Why a queued job waits: running workers that pass its agent preset by, and what for."""
    from farro_core.envelope import AgentPreset
    from farro_core.errors import FarroError
    from farro_core.status_files import presets_left, worker_files
    from farro_core.transitions import Status

    if env.status is not Status.QUEUED:
        return []
    agent = env.prompt.agent
    if agent is None:
        try:
            agent = r.settings.agent
        except FarroError:  # a bad farro.toml: `farro stats` reports it; show the job
            return []
    if not isinstance(agent, AgentPreset):
        return []
    return [
        f"by workers {', '.join(names)}: {why}"
        for preset, why, names in presets_left(worker_files(r))
        if preset == agent.preset
    ]


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
    from farro_core.listing import job_state
    from farro_core.visible import VisibleDecoder

    (job_id,) = _check_ids([job_id])
    if attempt is not None and attempt < 1:
        raise BadInput(f"--attempt {attempt}: attempts count from 1")
    r = _open(root)
    status, current = job_state(r, job_id)
    if status == "gone":
        raise NotFound(f"no job {job_id} in {r.path}")
    if attempt is None:
        if follow and current == 0 and status == "queued":
            # `farro submit ... ; farro logs -f ID` is the natural first try: wait for a worker
            sys.stderr.write(f"waiting for a worker to claim job {job_id} (ctrl-c stops)\n")
            sys.stderr.flush()
            while current == 0 and status == "queued":
                time.sleep(0.2)
                status, current = job_state(r, job_id)
            if status == "gone":
                raise NotFound(f"no job {job_id} in {r.path}")
        if current == 0 and status != "queued":  # killed before a claim: no worker will come
            raise Refused(f"job {job_id} is {status} and never ran, so it has no log")
        if current == 0:
            hint = "" if follow else "; `farro logs -f` waits for a worker to claim it"
            raise Refused(f"job {job_id} is {status} and has not run yet, so it has no log{hint}")
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
                        + (
                            " yet (it is starting; `farro logs -f` waits)"
                            if starting
                            else _gc_removed(r, job_id, attempt)
                        )
                    )
                # the status was read before this last drain, so nothing is lost
                return
            time.sleep(0.2)
            status, current = job_state(r, job_id)
    finally:
        if fd is not None:
            os.close(fd)


def _gc_removed(r: "Root", job_id: str, attempt: int) -> str:
    """``: farro gc removed it …`` when the audit log says so, else nothing."""
    from farro_core.gc import removed_logs

    rec = removed_logs(r, job_id, attempt)
    if rec is None:
        return ""
    why = str(rec.get("reason", "")).rpartition(" (")[2].rstrip(")")
    return f": `farro gc` removed it at {_short_ts(str(rec.get('ts') or ''))} ({visible(why)})"


def _open_log(r: "Root", job_id: str, name: str) -> int | None:
    """Open the log as every file under a root is opened (:func:`farro_core.fs.open_read`:
    no symlink, no FIFO, never blocking); the fd stays valid as the job dir moves."""
    from farro_core import fs
    from farro_core.errors import Corrupt, NotFound

    for _ in range(3):
        try:
            path = r.locate(job_id)
        except NotFound:
            return None
        try:
            return fs.open_read(None, path / "logs" / name)
        except FileNotFoundError:
            if os.path.lexists(path):
                return None
        except ValueError:
            raise Corrupt(
                f"{job_id}/logs/{name} is a symlink or not a regular file: not read"
            ) from None
        except OSError as exc:
            raise Corrupt(f"{job_id}/logs/{name}: {exc.strerror}") from None
    return None


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
    records, left_out = audit.tail(r, job_id)
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
    if left_out:
        _out(f"({_plural(left_out, 'earlier audit line')} not shown)")
    rows = [[visible(cell) for cell in _history_row(rec)] for rec in records]
    for line in _table(["TIME", "FROM", "TO", "ATTEMPT", "BY", "REASON"], rows, right={3}):
        _out(line)


def _judging(judge_ignored: bool | None, ignore_file: str | None) -> str:
    """The job's own judging rules, where it overrides the settings (else empty)."""
    said = []
    if judge_ignored is not None:
        said.append("ignored paths are judged" if judge_ignored else "ignored paths not judged")
    if ignore_file is not None:
        said.append(f"ignore file {visible(ignore_file)}")
    return "; ".join(said)
