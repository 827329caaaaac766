"""Worker-test fixtures: a root with tiny timings, and no worker or claim outliving its test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from farro_core.locks import CLAIMS
from farro_core.root import Root

from .helpers import FAST, WORKERS


@pytest.fixture
def wroot(tmp_path: Path) -> Root:
    Root.init(tmp_path / "root")
    return Root.open(tmp_path / "root", **FAST)


@pytest.fixture(autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    while WORKERS:
        WORKERS.pop().stop(release=True, grace_s=0)
    for key in list(CLAIMS.keys()):
        CLAIMS.release(key)
