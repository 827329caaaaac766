"""``farro stats`` and ``farro doctor``: the root's counts, its processes, its file system."""

import os
from typing import TYPE_CHECKING, Any

from farro_core.cli.base import STATUSES, JsonOpt, RootOpt, _Failed, _open, app
from farro_core.cli.render import _age, _clean, _clock, _dump_json, _out, _parse_ts, _table
from farro_core.visible import visible

if TYPE_CHECKING:
    from farro_core.root import Root


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
    import time

    from farro_core import fs, locks
    from farro_core.humanize import skew
    from farro_core.procs import containment
    from farro_core.status_files import read_status_file, worker_files

    r = _open(root)
    settings = r.settings  # a bad farro.toml is reported, not ignored
    max_queued = settings.max_queued
    counts = dict.fromkeys((*STATUSES, "corrupt"), 0)
    oldest: float | None = None
    from farro_core.listing import scan

    for row in scan(r):  # type-checked rows: a wrongly typed job.json counts as corrupt
        status = row.status if row.status in counts else "corrupt"
        counts[status] += 1
        if status == "queued":
            ts = _parse_ts(row.created_at)
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
    warn_s = settings.clock_skew_warn_s
    clocks = _host_clocks(r, warn_s)
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
                "hosts": clocks,
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
    via = "" if r.via is None else f" (given as the symlink {r.via})"
    _out(_clean(f"root      {r.path}{via}"))
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
    if rows:
        for line in _table(["WORKER", "STATE", "FOR", "DONE", "JOB"], rows, right={2, 3}):
            _out("  " + line)
    _out(f"contain   {_containment_line(here, workers)}")
    _left_lines(workers)
    if clocks:
        _out("hosts     clock skew against the file system (liveness never compares host clocks)")
        host_rows = [
            [
                _clean(c["host"]),
                skew(c["skew_s"], warn_s, sign=True)
                + (f" over clock_skew_warn_s ({skew(warn_s, warn_s)})" if c["warn"] else ""),
                f"{_age(c['age_s'])} ago",
            ]
            for c in clocks
        ]
        for line in _table(["HOST", "SKEW", "MEASURED"], host_rows, right=set()):
            _out("  " + line)


def _left_lines(workers: dict[str, dict[str, Any] | None]) -> None:
    """Why queued jobs may wait: presets whose configuration running workers lack."""
    from farro_core.status_files import LIVE_STATES, presets_left, worker_state

    left = presets_left(workers)
    if not left:
        return
    running = sum(1 for d in workers.values() if d and worker_state(d) in LIVE_STATES)
    _out("passed    queued jobs of these agent presets are left by workers that lack their config")
    for preset, why, names in left:
        every = " (every running worker: none will run them)" if len(names) >= running else ""
        _out(visible(f"  {preset} by {', '.join(names)}{every}: {why}"))


def _host_clocks(r: "Root", warn_s: float) -> list[dict[str, Any]]:
    """Each host's recorded skew (run/clocks/), its age by the file system's clock."""
    from farro_core import fsclock

    try:
        now_fs: float | None = fsclock.fs_now(r)
    except OSError:
        now_fs = None
    return [
        {"host": c.host, "skew_s": c.skew_s, "age_s": c.age_s, "warn": abs(c.skew_s) > warn_s}
        for c in fsclock.hosts(r, now_fs)
    ]


@app.command(short_help="Check that the root's file system gives what FARRO relies on.")
def doctor(as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Check the root's file system: locks, rename, directory fsync, st_dev, clock skew.

    Exit 1 when a check fails: workers refuse to run there (allow_unsafe_fs overrides).
    """
    from dataclasses import asdict

    from farro_core.doctor import diagnose

    r = _open(root)
    report = diagnose(r)
    if as_json:
        _dump_json(
            {
                "root": str(r.path),
                "fstype": report.mount.fstype if report.mount else None,
                "mount": report.mount.point if report.mount else None,
                "checks": [asdict(c) for c in report.checks],
                "ok": not report.failed,
            }
        )
    else:
        for line in report.lines():
            _out(_clean(line))
    if report.failed:
        raise _Failed(1)


@app.command(short_help="List the agent presets: command, CLI installed, version.")
def agents(as_json: JsonOpt = False, root: RootOpt = None) -> None:
    """Each agent preset: the command it runs, its CLI's version, what it still needs.

    What it needs is checked against the environment agents get (the root's
    env_allow / env_deny, when a root is found); running workers that leave a
    preset's jobs for lack of its configuration on their host are named with it.
    """
    import shlex

    from farro_core import agents as presets
    from farro_core.errors import FarroError
    from farro_core.settings import Settings
    from farro_core.status_files import presets_left, worker_files

    settings = Settings()
    left: list[tuple[str, str, list[str]]] = []
    try:
        r = _open(root)
        settings = r.settings
        left = presets_left(worker_files(r))
    except FarroError:
        if root is not None:
            raise
    rows = presets.listing(settings.passed_env(os.environ))
    for row in rows:  # what running workers (on any host) said they lack
        row["left_by"] = [
            {"workers": names, "missing": why} for p, why, names in left if p == row["preset"]
        ]
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
        for by in row["left_by"]:
            who = ", ".join(by["workers"])
            _out(visible(f"        left by  workers {who}, whose host lacks: {by['missing']}"))
