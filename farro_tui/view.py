"""Which jobs the queue pane shows, in what order, and how a row reads.

Pure functions over the :class:`~farro_tui.store.Store`, kept apart from the
widget so that tests and benchmarks can call them without a terminal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from farro_core.humanize import duration, parse_ts
from farro_core.listing import JobRow
from farro_tui.store import Store

#: status tabs, keys 1-7: (label, statuses shown; None = all). "running" is all of
#: active/: a stale job is a running one whose worker went quiet, and an operator
#: looking at what runs must see it there too.
TABS: tuple[tuple[str, frozenset[str] | None], ...] = (
    ("all", None),
    ("queued", frozenset({"queued"})),
    ("running", frozenset({"in-progress", "stale"})),
    ("stale", frozenset({"stale"})),
    ("failed", frozenset({"failed"})),
    ("succeeded", frozenset({"succeeded"})),
    ("killed", frozenset({"killed"})),
)

#: sortable columns: (id, heading)
COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "STATUS"),
    ("id", "ID"),
    ("title", "TITLE"),
    ("attempt", "TRY"),
    ("worker", "WORKER"),
    ("age", "AGE"),
    ("run", "RUN"),
    ("verdict", "VERDICT"),
)

# active work first, then the queue, then history: what an operator looks at first
_GROUP = {"in-progress": 0, "stale": 1, "queued": 2, "corrupt": 3}


@dataclass(frozen=True)
class ViewSpec:
    tab: int = 0
    filter: str = ""
    sort: str = "status"
    reverse: bool = False

    def pattern(self) -> re.Pattern[str] | None:
        """The filter as a case-insensitive regex; text that is not one matches literally."""
        if not self.filter:
            return None
        try:
            return re.compile(self.filter, re.IGNORECASE | re.MULTILINE)
        except re.error:
            return re.compile(re.escape(self.filter), re.IGNORECASE)


def run_seconds(row: JobRow, now: datetime) -> float | None:
    """How long the current (or last) attempt ran: once it has a result, its agent's run
    time (as `farro report`, the batch view and the job pane give it)."""
    start = parse_ts(row.claimed_at)
    if row.status == "in-progress":
        return max(0.0, (now - start).total_seconds()) if start else None
    if row.run_s is not None:
        return max(0.0, row.run_s)
    if start is None:
        return None
    end = parse_ts(row.updated_at)
    return max(0.0, (end - start).total_seconds()) if end else None


def haystack(job_id: str, row: JobRow | None) -> str:
    """One line per field, so that ``^`` and ``$`` anchor to a field."""
    if row is None:
        return job_id
    labels = "".join(f"\n{k}={v}" for k, v in row.labels.items())
    return f"{job_id}\n{row.title}{labels}"


def _hays(store: Store, job_id: str, row: JobRow | None) -> tuple[JobRow | None, str, str]:
    """The haystack and its lower-case form, cached until the row changes."""
    cache = store.hays
    cached = cache.get(job_id)
    if cached is not None and cached[0] is row:
        cache.move_to_end(job_id)
        return cached
    text = haystack(job_id, row)
    entry = (row, text, text.lower())
    cache.put(job_id, entry)
    return entry


def _is_plain(text: str) -> bool:
    """Text with no regex syntax: a substring test answers it, much faster than re."""
    bare = text.replace(" ", "")  # re.escape escapes spaces, which are plain here
    return re.escape(bare) == bare


def visible(store: Store, spec: ViewSpec, now: datetime) -> list[str]:
    """The ids to show. done/ jobs whose row is not read yet pass only the "all" tab."""
    statuses = TABS[spec.tab][1]
    rows = store.rows
    pat = spec.pattern()

    def keep(ids: list[str]) -> list[str]:
        if statuses is not None:
            ids = [i for i in ids if (r := rows.get(i)) is not None and r.status in statuses]
        if pat is not None and _is_plain(spec.filter):
            needle = spec.filter.lower()
            ids = [i for i in ids if needle in _hays(store, i, rows.get(i))[2]]
        elif pat is not None:
            search = pat.search
            ids = [i for i in ids if search(_hays(store, i, rows.get(i))[1])]
        return ids

    if spec.sort == "status":
        # running, stale, queued, then history; newest first inside each. done/ is
        # pre-sorted once per change of its names, so this stays cheap at 100k jobs
        groups: list[list[str]] = [[], [], [], []]
        for q in ("active", "incoming"):
            for i in store.by_queue[q]:
                r = rows.get(i)
                groups[_GROUP.get(r.status if r is not None else "queued", 3)].append(i)
        parts = [keep(sorted(g, reverse=True)) for g in groups]
        parts.append(keep(store.done_newest_first()))
        if spec.reverse:
            parts.reverse()
        return [i for part in parts for i in part]
    return sort_ids(store, keep(list(store.queue_of)), spec.sort, spec.reverse, now)


def _title_key(store: Store, job_id: str, row: JobRow | None) -> str:
    cache = store.title_keys
    cached = cache.get(job_id)
    if cached is not None and cached[0] is row:
        cache.move_to_end(job_id)
        return cached[1]
    key = row.title.casefold() if row is not None else ""
    cache.put(job_id, (row, key))
    return key


def sort_ids(store: Store, ids: list[str], col: str, reverse: bool, now: datetime) -> list[str]:
    rows = store.rows
    key: Callable[[str], Any]
    if col == "id":
        return sorted(ids, reverse=reverse)
    if col == "age":
        # created_at, not the id (a caller may choose its id); the youngest first
        reverse = not reverse

        def key(i: str) -> Any:
            r = rows.get(i)
            ts = parse_ts(r.created_at) if r is not None else None
            return (ts.timestamp() if ts is not None else float("-inf"), i)
    elif col == "title":

        def key(i: str) -> Any:
            return (_title_key(store, i, rows.get(i)), i)
    elif col == "attempt":

        def key(i: str) -> Any:
            r = rows.get(i)
            return (r.attempt - r.attempt_base if r else 0, i)
    elif col == "worker":

        def key(i: str) -> Any:
            r = rows.get(i)
            return (r.worker or "" if r else "", i)
    elif col == "run":

        def key(i: str) -> Any:
            r = rows.get(i)
            s = run_seconds(r, now) if r else None
            return (s if s is not None else -1.0, i)
    elif col == "verdict":

        def key(i: str) -> Any:
            r = rows.get(i)
            return (r.verdict or "" if r else "", i)
    else:
        return sorted(ids, reverse=reverse)
    if col == "run":  # moves with the clock: nothing to keep
        return sorted(ids, key=key, reverse=reverse)
    # The order of every job by this column is kept until a row or name changes, so
    # switching tabs, filtering or re-sorting 100k jobs only walks it (keys are unique).
    gen = (col, store.names_generation, store.rows_generation)
    order = store.orders.get(gen)
    if order is None:
        order = sorted(store.queue_of, key=key)
        store.orders.put(gen, order)
    else:
        store.orders.move_to_end(gen)
    wanted = set(ids)
    out = [i for i in order if i in wanted] if len(wanted) != len(order) else list(order)
    if len(out) != len(wanted):  # ids the store does not list (never expected): sort them all
        return sorted(ids, key=key, reverse=reverse)
    if reverse:
        out.reverse()
    return out


def tilde_path(path: str, home: str) -> str:
    """``path`` with the home directory as ``~``: only as its leading directory."""
    home = home.rstrip("/")
    if not home or not os.path.isabs(home):
        return path
    if path == home:
        return "~"
    if path.startswith(home + "/"):
        return "~" + path[len(home) :]
    return path


def fmt_age(created: str, now: datetime) -> str:
    ts = parse_ts(created)
    if ts is None:
        return ""
    return duration((now - ts).total_seconds(), parts=1)
