"""What the CLI prints: every line through :mod:`farro_core.visible`, times and spans
for people (:mod:`farro_core.humanize`), tables sized in terminal cells."""

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from farro_core.visible import visible, visible_json

if TYPE_CHECKING:
    from datetime import datetime


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


def _parse_ts(value: str | None) -> float | None:
    from farro_core.humanize import parse_ts

    ts = parse_ts(value)
    return None if ts is None else ts.timestamp()


def _age(seconds: float | None) -> str:
    """A whole-second age in the two largest units: ``42s``, ``3m12s``, ``2h05m``, ``4d03h``."""
    from farro_core.humanize import duration

    return duration(seconds, missing="-")


def _duration(seconds: float) -> str:
    """A run time or a setting: ``0.4s`` and ``12.5s`` below a minute, then like :func:`_age`."""
    from farro_core.humanize import run_time

    return run_time(seconds)


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else many or word + 's'}"


def _short_ts(value: str | None) -> str:
    """``2026-11-25T17:04:25.123456Z`` -> ``2026-11-25 17:04:25Z`` (UTC, as stored)."""
    from farro_core.humanize import timestamp

    return timestamp(value)


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
