"""System-test fixtures: no System, process or claim outlives its test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farro_core.locks import CLAIMS
from farro_core.system import System

from .helpers import Headless, processes


@pytest.fixture
def systems() -> Iterator[list[System]]:
    started: list[System] = []
    yield started
    for s in started:
        s.stop(release=True, grace_s=0)
    for key in list(CLAIMS.keys()):
        CLAIMS.release(key)


@pytest.fixture
def procs() -> Iterator[list[Headless]]:
    with processes() as started:
        yield started
