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


# What `make check` (pytest -m "not slow") leaves out: suites that start real processes, workers
# or terminals, and the few files that run the CLI as a process or explore with hypothesis.
SLOW_SUITES = {"system", "proc", "worker", "torture", "load", "tui", "hardening"}
TORTURE_SUITES = {"torture", "load"}
SLOW_FILES = {"test_state_machine.py", "test_cli.py", "test_cli_ux.py", "test_bad_input.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests_dir).parts
        if parts[0] in SLOW_SUITES or item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        if parts[0] in TORTURE_SUITES:
            item.add_marker(pytest.mark.torture)
