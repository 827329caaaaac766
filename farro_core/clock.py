"""The one clock FARRO stamps its records with: aware UTC, so no file ever holds a local time."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
