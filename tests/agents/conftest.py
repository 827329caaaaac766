"""The worker tests' fixtures: a root with tiny timings, no worker outliving its test."""

from __future__ import annotations

from worker.conftest import _cleanup, wroot

__all__ = ["_cleanup", "wroot"]
