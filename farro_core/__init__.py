"""FARRO's core: jobs on a directory tree, moved by crash-safe transactions.

At a Python prompt::

    >>> import farro_core as farro
    >>> root = farro.open_root("/tmp/q")          # or farro.init_root(...)
    >>> job = farro.load(root, "01JD3...")        # an Envelope
    >>> job.lifecycle.status
    >>> job = farro.commit(job, "killed", actor="operator", reason="not needed")

Exports are lazy so that ``farro`` (the CLI) imports only what a command needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Root": "farro_core.root",
    "open_root": "farro_core.api",
    "init_root": "farro_core.api",
    "submit": "farro_core.api",
    "load": "farro_core.job",
    "create": "farro_core.job",
    "create_many": "farro_core.job",
    "claim": "farro_core.job",
    "commit": "farro_core.job",
    "release_claim": "farro_core.job",
    "Envelope": "farro_core.envelope",
    "JobSpec": "farro_core.envelope",
    "Prompt": "farro_core.envelope",
    "Lifecycle": "farro_core.envelope",
    "Status": "farro_core.transitions",
    "Actor": "farro_core.transitions",
    "IllegalTransition": "farro_core.errors",
    "Conflict": "farro_core.errors",
    "FarroError": "farro_core.errors",
    "WorkerIdentity": "farro_core.identity",
    "Settings": "farro_core.settings",
}

__all__ = [
    "Actor",
    "Conflict",
    "Envelope",
    "FarroError",
    "IllegalTransition",
    "JobSpec",
    "Lifecycle",
    "Prompt",
    "Root",
    "Settings",
    "Status",
    "WorkerIdentity",
    "claim",
    "commit",
    "create",
    "create_many",
    "init_root",
    "load",
    "open_root",
    "release_claim",
    "submit",
]

if TYPE_CHECKING:
    from farro_core.api import init_root, open_root, submit
    from farro_core.envelope import Envelope, JobSpec, Lifecycle, Prompt
    from farro_core.errors import Conflict, FarroError, IllegalTransition
    from farro_core.identity import WorkerIdentity
    from farro_core.job import claim, commit, create, create_many, load, release_claim
    from farro_core.root import Root
    from farro_core.settings import Settings
    from farro_core.transitions import Actor, Status


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'farro_core' has no attribute {name!r}")
    return getattr(import_module(module), name)
