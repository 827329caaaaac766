"""How FARRO writes times and spans for people: the CLI and the console agree.

One module, so that a job's age, a run time and a stored timestamp read the same
in ``farro ls``, ``farro show`` and every pane of the console.
"""

from __future__ import annotations

from datetime import datetime

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def duration(seconds: float | None, missing: str = "", *, parts: int = 2) -> str:
    """Whole seconds in the largest units: ``42s``, ``3m12s``, ``2h05m``, ``4d03h``.

    ``parts=1`` keeps the largest unit only (``3m``, ``2h``): for narrow columns.
    """
    if seconds is None:
        return missing
    s = max(0, int(seconds))
    for i, (name, size) in enumerate(_UNITS):
        if s >= size or size == 1:
            text = f"{s // size}{name}"
            if parts > 1 and size > 1:
                sub_name, sub_size = _UNITS[i + 1]
                text += f"{s % size // sub_size:02d}{sub_name}"
            return text
    raise AssertionError("unreachable: the last unit is one second")


def run_time(seconds: float) -> str:
    """A run time or a setting: ``0.4s`` and ``12.5s`` below a minute, round units
    (``5m``, ``2h``) as such, else like :func:`duration`."""
    if seconds < 60:
        if seconds == int(seconds):
            return f"{int(seconds)}s"
        return f"{seconds:.2f}s" if seconds < 0.1 else f"{seconds:.1f}s"
    whole = int(seconds)
    if whole % 3600 == 0:
        return f"{whole // 3600}h" if whole < 86400 else duration(whole)
    if whole % 60 == 0 and whole < 3600:
        return f"{whole // 60}m"
    return duration(whole)


def parse_ts(value: str | None) -> datetime | None:
    """A stored ISO time (``...Z`` or ``+00:00``), or None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def timestamp(value: datetime | str | None, missing: str = "-") -> str:
    """A stored UTC time to the second: ``2026-11-25 17:04:25Z``."""
    if value is None or value == "":
        return missing
    text = value if isinstance(value, str) else value.isoformat()
    text = text.replace("T", " ").replace("+00:00", "Z")
    head, _, tail = text.partition(".")
    return head + ("Z" if tail.endswith("Z") else "") if tail else text


def skew(seconds: float, threshold: float, *, sign: bool = False) -> str:
    """A clock skew beside its warning threshold, with the decimals both need.

    One decimal suits the default (5 s); a ``clock_skew_warn_s`` of 0.01 needs two,
    and a skew that is over it must never read as equal (``0.0s over 0.0s``).
    """
    decimals = 1
    while decimals < 6 and abs(round(threshold, decimals) - threshold) > 1e-9:
        decimals += 1
    value, limit = abs(seconds), abs(threshold)
    while decimals < 6 and value != limit and round(value, decimals) == round(limit, decimals):
        decimals += 1
    return f"{seconds:{'+' if sign else ''}.{decimals}f}s"
