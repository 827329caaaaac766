"""Shared fixtures: every test gets its own real root on the real file system."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from farro_core.root import Root

PYTHON = sys.executable


@pytest.fixture
def root(tmp_path: Path) -> Root:
    return Root.init(tmp_path / "root")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FARRO_* setting from the developer's shell may leak into a test."""
    for name in list(os.environ):
        if name.startswith("FARRO_"):
            monkeypatch.delenv(name)
