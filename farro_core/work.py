"""What an attempt did to its workspace, as kept in the job's result.

Kept in job.json so ``farro show`` and the console can say it without running git:
the branch, the work commit of each attempt, a diffstat of the paths changed, and
the writes the workspace's ignore rules left unjudged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: at most this many changed paths (and ignored top directories) are kept per attempt
MAX_LISTED = 500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Change(_Strict):
    """One changed path: A added, M modified, D deleted, T type or mode changed."""

    path: str
    change: Literal["A", "M", "D", "T"]
    #: line counts against the base commit; None for binary files and plain directories
    insertions: int | None = None
    deletions: int | None = None


class IgnoredTop(_Strict):
    """The highest ignored directory (or a single ignored file) and its files."""

    path: str
    files: int


class Ignored(_Strict):
    """Writes the ignore rules cover: recorded, and judged only when ``judged``."""

    files: int = 0
    top: list[IgnoredTop] = Field(default_factory=list)
    judged: bool = False
    #: where the rules came from: "the base commit's .gitignore files", or the ignore file
    rules: str = ""


class AttemptCommit(_Strict):
    attempt: int
    commit: str | None  # None: the attempt left nothing to commit


class Work(_Strict):
    branch: str | None = None
    commits: list[AttemptCommit] = Field(default_factory=list)
    changed: list[Change] = Field(default_factory=list)  # at most MAX_LISTED
    changed_count: int = 0
    insertions: int = 0
    deletions: int = 0
    ignored: Ignored = Field(default_factory=Ignored)
