"""What an attempt did to its workspace, as kept in the job's result.

Kept in job.json so ``farro show`` and the console can say it without running git:
the branch, the work commit of each attempt, a diffstat of the paths changed, and
the writes the workspace's ignore rules left unjudged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from farro_core.visible import visible

#: at most this many changed paths (and ignored top directories) are kept per attempt
MAX_LISTED = 500


class _Strict(BaseModel):
    """Built on first use, not at import, as a result is (envelope._Strict): a
    submit never builds these."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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
    #: the repo's branch when the job took its base (its HEAD then): where ``farro land``
    #: brings the work by default; None for a detached HEAD or a plain directory
    base_branch: str | None = None
    commits: list[AttemptCommit] = Field(default_factory=list)
    changed: list[Change] = Field(default_factory=list)  # at most MAX_LISTED
    changed_count: int = 0
    insertions: int = 0
    deletions: int = 0
    ignored: Ignored = Field(default_factory=Ignored)


def _counts(ins: int | None, dels: int | None) -> str:
    if ins is None and dels is None:
        return ""
    return " ".join(s for s in (f"+{ins}" if ins else "", f"-{dels}" if dels else "") if s)


def change_line(c: Change) -> str:
    """``M  src/a.py  +3 -1`` (binary files and plain directories have no counts)."""
    counts = _counts(c.insertions, c.deletions)
    return f"{c.change}  {visible(c.path)}" + (f"  {counts}" if counts else "")


def summary(work: Work, base_commit: str | None) -> list[tuple[str, str]]:
    """Label and text rows for ``farro show`` and the console's job pane, control
    characters already made visible."""
    rows: list[tuple[str, str]] = []
    if work.branch:
        rows.append(("branch", work.branch))
    if base_commit:
        on = f" (on {work.base_branch})" if work.base_branch else ""
        rows.append(("base", base_commit + on))
    if work.commits:
        rows.append(
            (
                "commits",
                ", ".join(
                    f"attempt {c.attempt} {c.commit[:12] if c.commit else '(nothing to commit)'}"
                    for c in work.commits
                ),
            )
        )
    n = work.changed_count
    stat = f"{n} path{'' if n == 1 else 's'}"
    if work.insertions or work.deletions:
        stat += f", +{work.insertions} -{work.deletions}"
    rows.append(("changed", stat))
    ign = work.ignored
    if ign.files:
        how = "judged like any other" if ign.judged else "not judged"
        tops = ", ".join(f"{t.path} ({t.files})" for t in ign.top[:8])
        more = f", … {len(ign.top) - 8} more" if len(ign.top) > 8 else ""
        rows.append(
            (
                "ignored",
                f"{ign.files} file{'' if ign.files == 1 else 's'} ({ign.rules}), {how}: "
                f"{tops}{more}",
            )
        )
    else:
        rows.append(("ignored", "none"))
    return [(label, visible(text)) for label, text in rows]
