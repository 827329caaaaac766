"""Staging a batch: every job's files written first, then made durable all at once.

One job's create fsyncs each file and directory as it goes (docs/spec.md §5.2).
A batch of 10,000 would be 30,000 fsyncs that way, each a write of its own, so a
batch writes every staging directory without any, then makes them durable
together: a big one with one ``syncfs`` of the root's file system, a small one
(fewer than :data:`SYNCFS_MIN_JOBS`) with its fsyncs issued at once. The intent
(:mod:`farro_core.publish`) is written only after that, so a committed batch
never lists a stage that a power cut could tear. Stage files are created under
their own names, without a temp file and rename: nobody reads a stage before it
is published, and a stage torn by a crash before the intent is never published.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from farro_core import crash, fs
from farro_core.envelope import Lifecycle, Prompt, dump, dump_queued
from farro_core.root import Root

PROMPT, JOB = "prompt.json", "job.json"

#: fsyncs issued at once where there is no syncfs: the journal commits concurrent ones together
SYNC_THREADS = 32
#: the smallest batch made durable by syncfs. It also waits for every other writer's
#: dirty data on that file system (0.3 s on a busy shared disk here), while a small
#: batch's own fsyncs, issued together, take about 0.4 ms a job
SYNCFS_MIN_JOBS = 256


def write_stages(
    root: Root, jobs: Sequence[tuple[Prompt, Lifecycle]], made: list[tuple[str, str]]
) -> None:
    """Stage every job in ``tmp/`` and make all of it durable; ``made`` gets each
    (stage name, job id) as soon as its directory exists, for the caller to clean up."""
    tmp_fd = fs.open_dir(root.tmp)  # opened first: syncfs reports errors since this open
    try:
        for prompt, lc in jobs:
            name = f"{lc.id}.{fs.unique_suffix()}"
            os.mkdir(name, 0o700, dir_fd=tmp_fd)
            made.append((name, lc.id))
            crash.point("create.staged")  # an empty staging dir: fsck quarantines it after an hour
            dfd = fs.open_dir(name, dir_fd=tmp_fd)
            try:
                fs.create_at(dfd, PROMPT, dump(prompt), 0o444)
                crash.point("create.prompt_written")
                fs.create_at(dfd, JOB, dump_queued(lc))
                crash.point("create.job_written")  # complete but unpublished: only in tmp/
            finally:
                os.close(dfd)
        if len(made) < SYNCFS_MIN_JOBS or not fs.syncfs(tmp_fd):
            _fsync_each(tmp_fd, [name for name, _ in made])
        crash.point("create.batch_synced")  # every stage durable, no intent: none published
    finally:
        os.close(tmp_fd)


def _fsync_each(tmp_fd: int, stages: list[str]) -> None:
    """Without syncfs: fsync every staged file and staging directory, many at a time.

    Concurrent fsyncs let the journal commit the waiting ones together, so
    10,000 stages cost a few commits, not 30,000 in a row.
    """

    def one(stage: str) -> None:
        dfd = fs.open_dir(stage, dir_fd=tmp_fd)
        try:
            for name in (PROMPT, JOB):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
                try:
                    fs.fsync(fd)
                finally:
                    os.close(fd)
            fs.fsync(dfd)
        finally:
            os.close(dfd)

    # imported here: with logging and queue it is ~2% of a cold one-job `farro submit`
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(SYNC_THREADS, len(stages))) as pool:
        for _ in pool.map(one, stages):
            pass
    fs.fsync(tmp_fd)
