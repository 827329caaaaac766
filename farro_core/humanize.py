"""How FARRO writes a span of time for people: the CLI and the console agree."""

from __future__ import annotations


def duration(seconds: float | None, missing: str = "") -> str:
    """Whole seconds in the two largest units: ``42s``, ``3m12s``, ``2h05m``, ``4d03h``."""
    if seconds is None:
        return missing
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"
