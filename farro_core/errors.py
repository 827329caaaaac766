"""The exceptions FARRO raises, each carrying the CLI exit code it maps to.

Exit codes are part of the contract: 1 when an operation is refused (unknown job,
illegal transition, conflict, full queue), 2 when the input itself is bad.
"""

from __future__ import annotations


class FarroError(Exception):
    """Base of every error FARRO reports to an operator as one line."""

    exit_code = 1


class BadInput(FarroError):
    """The input (a spec, an id, a setting, a root) is malformed; nothing was written."""

    exit_code = 2


class RootError(BadInput):
    """The root is missing, uninitialised, unsafe, or spans file systems."""


class Refused(FarroError):
    """A well-formed request that the current state does not allow."""

    exit_code = 1


class NotFound(Refused):
    """No job with that id exists under the root."""


class AlreadyExists(Refused):
    """A job with that id exists already; create never overwrites."""


class IllegalTransition(Refused):
    """The transition table does not allow this move for this actor."""


class Conflict(Refused):
    """The job moved on since it was read (revision compare-and-swap failed).

    This is the fencing: a worker whose claim went stale can never commit.
    """


class Running(Refused):
    """The job is running, and the request waits for it to end (a mark, say)."""


class QueueFull(Refused):
    """Backpressure: incoming/ already holds max_queued jobs."""


class Corrupt(FarroError):
    """A job directory on disk is unreadable or inconsistent (fsck quarantines it)."""


class DurabilityError(FarroError):
    """An fsync failed: the transaction is abandoned and never retried."""
