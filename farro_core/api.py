"""Conveniences for a Python prompt or a script; the CLI uses the same calls."""

from __future__ import annotations

import os
from typing import Any

from farro_core.envelope import Envelope, parse_spec
from farro_core.job import create
from farro_core.root import Root


def open_root(path: str | os.PathLike[str] | None = None, **flags: Any) -> Root:
    return Root.open(path, **flags)


def init_root(path: str | os.PathLike[str] | None = None) -> Root:
    return Root.init(path)


def submit(root: Root, prompt: str, **fields: Any) -> Envelope:
    """Create one job from keyword fields (validated like any spec)."""
    return create(root, parse_spec({"prompt": prompt, **fields}))
