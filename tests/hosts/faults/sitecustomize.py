"""Loaded (PYTHONPATH) by a process that must see a file system without locks, like
NFSv3 mounted ``nolock`` or sshfs: every flock and POSIX lock "succeeds" and
excludes nobody. Subprocesses started with ``python -I`` do not load it, so they
see the real locks, as another host would."""

from __future__ import annotations

import fcntl
import os
from typing import Any

if os.environ.get("FARRO_TEST_FAULT") == "nolocks":

    def _granted(fd: Any, operation: int, *args: Any) -> None:
        return None

    fcntl.flock = _granted
    fcntl.lockf = _granted
