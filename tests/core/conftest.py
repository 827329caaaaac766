"""Core-test fixtures: no claim lock held by one test may leak into the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from farro_core.locks import CLAIMS


@pytest.fixture(autouse=True)
def _release_claims() -> Iterator[None]:
    yield
    for key in list(CLAIMS.keys()):
        CLAIMS.release(key)
