"""Job ids: sortable by creation time, unique across hosts, safe as a path component."""

from __future__ import annotations

import hashlib
import os
import re
import time

from farro_core.errors import BadInput

ID_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{7,63}$")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(now_ms: int | None = None, entropy: bytes | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, 26 Crockford characters.

    Lexical order is creation order to the millisecond; 80 random bits make a
    clash across hosts negligible without any coordination.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rnd = int.from_bytes(entropy[:10] if entropy is not None else os.urandom(10), "big")
    return _b32(ms, 10) + _b32(rnd, 16)


def derived_id(now_ms: int, *parts: str) -> str:
    """A ULID whose random part is a hash of ``parts``: the same input gives the same id.

    The manager uses it so that a request file processed twice creates no duplicates.
    """
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return new_id(now_ms, digest)


def check_id(value: str) -> str:
    """Return ``value`` if it is a valid id, else raise :class:`BadInput`."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise BadInput(f"invalid job id {value!r}: ids match {ID_PATTERN.pattern}")
    return value
