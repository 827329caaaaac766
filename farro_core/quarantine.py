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
    for n in range(100):
        dest = root.quarantine / (base if n == 0 else f"{base}.{stamp}.{n}")
        if os.path.lexists(dest) or os.path.lexists(f"{dest}.reason.txt"):
            continue
        try:
            fs.move(path, dest)
        except AlreadyExists:
            continue
        where = os.path.relpath(path, root.path)
        note = f"from: {where}\nat: {utcnow().isoformat()}\nreason: {reason}\n"
        fs.write_file(Path(f"{dest}.reason.txt"), note.encode())
        return dest
    raise AlreadyExists(f"no free name in quarantine/ for {path.name}")
