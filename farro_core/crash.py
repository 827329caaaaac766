"""Named crash points, so tests can kill a real process between two steps.

Set ``FARRO_CRASH_AT=<point>`` (e.g. ``claim.committed``) and the process calls
``os._exit(CRASH_EXIT)`` when it reaches that point: no cleanup, no flush, like
``kill -9``. Every point the code reaches is listed in :data:`POINTS`, so tests
can cover each one, and in docs/spec.md §5.7 with what a crash there leaves.
"""

from __future__ import annotations

import os

CRASH_EXIT = 77

POINTS: tuple[str, ...] = (
    "create.staged",  # tmp/<id>.<unique> exists, nothing written in it
    "create.prompt_written",  # prompt.json written, job.json not yet
    "create.job_written",  # both files written, still in tmp/
    "create.batch_synced",  # a batch's stages all written and made durable, no intent yet
    "create.intent_written",  # a batch's intent is durable, none of it published
    "create.batch_partial",  # the first job of a batch published, the rest not yet
    "create.published",  # renamed into incoming/, not yet audited
    "claim.locked",  # claim lock taken, job.json untouched
    "claim.committed",  # job.json says in-progress, dir still in incoming/
    "claim.moved",  # dir in active/, not yet audited
    "commit.locked",  # commit lock held, nothing written
    "commit.written",  # new job.json written, dir not yet moved
    "commit.moved",  # dir moved, not yet audited
    "inbox.created",  # a request file's jobs exist, the file is still in inbox/
)


def point(name: str) -> None:
    """Die here if the environment names this point."""
    target = os.environ.get("FARRO_CRASH_AT")
    if target is not None and target == name:
        os._exit(CRASH_EXIT)
