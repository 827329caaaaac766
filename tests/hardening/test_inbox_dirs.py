"""inbox/accepted/ and inbox/rejected/ planted as symlinks are never written through.

The manager moves every request file there and writes NAME.error.txt beside a
rejected one. A symlink in their place would carry the operator's requests (and
FARRO's notes) out of the root: the inbox refuses to work, says why, and leaves
every request file where it is, creating no job.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from farro_core import inbox
from farro_core.errors import FarroError
from farro_core.root import Root


@pytest.mark.parametrize("which", ["accepted", "rejected"])
def test_a_symlinked_inbox_subdir_is_refused(root: Root, tmp_path: Path, which: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = root.inbox / which
    shutil.rmtree(target)
    os.symlink(outside, target)
    good = root.inbox / "good.json"
    good.write_text(json.dumps({"prompt": "a fine request"}))
    bad = root.inbox / "bad.json"
    bad.write_text(json.dumps({"prompt": "x", "no_such_field": 1}))
    os.utime(bad, (1, 1))  # old: rejected at once, not waited for
    with pytest.raises(FarroError, match="symlink"):
        inbox.ingest(root)
    assert list(outside.iterdir()) == [], "written through the symlink"
    assert good.exists() and bad.exists()
    assert root.ids("incoming") == []
