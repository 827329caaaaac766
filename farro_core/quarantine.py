"""Moving bad things aside: nothing under a root is ever deleted by FARRO.

An unreadable or inconsistent entry goes to ``quarantine/`` beside a
``NAME.reason.txt`` that says why and where it came from.
"""

from __future__ import annotations

import os
from pathlib import Path

from farro_core import fs
from farro_core.clock import utcnow
from farro_core.errors import AlreadyExists
from farro_core.root import Root


def quarantine(root: Root, path: Path, reason: str) -> Path:
    """Move ``path`` (file, directory or symlink, never followed) into quarantine/."""
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    base = path.name if not path.name.startswith(".") else "_" + path.name
    names = (base if n == 0 else f"{base}.{stamp}.{n}" for n in range(100))
    dest = fs.move_to_free(path, (root.quarantine / n for n in names), ".reason.txt")
    if dest is None:
        raise AlreadyExists(f"no free name in quarantine/ for {path.name}")
    where = os.path.relpath(path, root.path)
    note = f"from: {where}\nat: {utcnow().isoformat()}\nreason: {reason}\n"
    fs.write_file(Path(f"{dest}.reason.txt"), note.encode())
    return dest
