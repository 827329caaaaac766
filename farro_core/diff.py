"""A job's change, as ``farro diff`` and the console's diff pane show it.

For a git workspace the change is the base commit against an attempt's work
commit (``refs/farro/<id>/attempt-N``), read from the repository with FARRO's
hardened git; for a plain directory (or the job's own ``work/``) only the list
of changed paths the judging recorded exists. Text comes back as str with every
byte decodable (bad UTF-8 as ``\\xNN``); escaping control characters is the
caller's job, since it depends on where the text goes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from farro_core.envelope import Envelope
from farro_core.errors import NotFound, Refused
from farro_core.transitions import TERMINAL
from farro_core.work import Change
from farro_core.workspace import WorkspaceError, git_bytes

#: a commit id as FARRO records it (sha1 or sha256): nothing else reaches git's argv
OID = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
#: the diff options every call uses: no external diff, no textconv, no colour, no renames
_DIFF_OPTS = ("-r", "--no-ext-diff", "--no-textconv", "--no-color", "--no-renames")


@dataclass(frozen=True)
class Source:
    """Where one attempt's change can be read."""

    job_id: str
    attempt: int
    #: attempts that have something to show, oldest first (the pane switches between them)
    attempts: list[int]
    repo: Path | None = None  # None: a plain directory, only ``changes`` is known
    base: str | None = None
    commit: str | None = None  # None with a repo: the attempt left nothing to commit
    changes: list[Change] = field(default_factory=list)
    changed_count: int = 0

    @property
    def is_git(self) -> bool:
        return self.repo is not None


@dataclass(frozen=True)
class FileStat:
    path: str
    insertions: int | None  # None: binary
    deletions: int | None


@dataclass
class FileDiff:
    """One file of a unified diff: where its lines start in :attr:`Diff.lines`."""

    path: str
    start: int
    end: int = 0
    insertions: int = 0
    deletions: int = 0
    binary: bool = False


#: what each line of a diff is, one byte a line (:attr:`Diff.kinds`)
HEADER, HUNK, ADDED, REMOVED, CONTEXT, OTHER = b"h@+- o"


@dataclass
class Diff:
    lines: list[str]
    files: list[FileDiff]
    #: one of HEADER, HUNK, ADDED, REMOVED, CONTEXT, OTHER per line: a ``+++`` line of a
    #: file's header and an added ``++`` line look alike, and the pane draws them apart
    kinds: bytearray = field(default_factory=bytearray)
    #: the longest line's length in characters (a pane's horizontal extent)
    width: int = 0

    def file_at(self, line: int) -> int:
        """The index of the file ``line`` belongs to (-1: before the first file)."""
        lo, hi = 0, len(self.files) - 1
        found = -1
        while lo <= hi:
            mid = (lo + hi) // 2
            if self.files[mid].start <= line:
                found, lo = mid, mid + 1
            else:
                hi = mid - 1
        return found


def source(env: Envelope, attempt: int | None = None) -> Source:
    """The change of ``attempt`` (default: the last finished one) of a job.

    Raises :class:`Refused` when the job has no finished attempt, and
    :class:`NotFound` for an attempt with no recorded work.
    """
    res = env.lifecycle.result
    if res is None:
        if env.status in TERMINAL:  # killed while queued: "yet" promised an attempt
            raise Refused(
                f"job {env.id} is {env.status} without a finished attempt: "
                "there is no change to show"
            )
        raise Refused(f"job {env.id} has not finished an attempt yet: there is no change to show")
    work = res.work
    if work is not None and work.commits and res.base_commit:
        attempts = [c.attempt for c in work.commits]
        chosen = attempt if attempt is not None else attempts[-1]
        commit = next((c.commit for c in work.commits if c.attempt == chosen), "")
        if commit == "":
            raise NotFound(
                f"job {env.id} has no attempt {chosen} with work "
                f"(attempts: {', '.join(map(str, attempts))})"
            )
        assert env.prompt.workspace is not None
        for oid in (res.base_commit, commit):
            if oid is not None and not OID.fullmatch(oid):
                raise Refused(f"job {env.id}: job.json names {oid[:60]!r}, not a commit id")
        return Source(
            job_id=env.id,
            attempt=chosen,
            attempts=attempts,
            repo=Path(os.path.realpath(env.prompt.workspace)),
            base=res.base_commit,
            commit=commit,
            changes=list(work.changed) if chosen == res.attempt else [],
            changed_count=work.changed_count if chosen == res.attempt else 0,
        )
    if attempt is not None and attempt != res.attempt:
        raise NotFound(
            f"job {env.id} keeps the changed paths of its last attempt only ({res.attempt}): "
            "its workspace is not a git repository"
        )
    return Source(
        job_id=env.id,
        attempt=res.attempt,
        attempts=[res.attempt],
        changes=list(work.changed) if work else [],
        changed_count=work.changed_count if work else 0,
    )


def _git(src: Source, *args: str) -> bytes:
    assert src.repo is not None
    try:
        return git_bytes(src.repo, *args).stdout
    except WorkspaceError as exc:
        raise Refused(f"job {src.job_id}: {exc}") from None


def _verify(src: Source) -> None:
    assert src.repo is not None
    if not src.repo.is_dir():
        raise Refused(f"job {src.job_id}: its workspace {src.repo} is gone")
    for what, oid in (("base", src.base), ("work", src.commit)):
        if oid is None:
            continue
        proc = git_bytes(src.repo, "cat-file", "-e", f"{oid}^{{commit}}", check=False)
        if proc.returncode != 0:
            raise Refused(
                f"job {src.job_id}: its {what} commit {oid[:12]} is not in {src.repo} any more"
            )


def decode(raw: bytes) -> str:
    """Bytes as text: UTF-8, a byte that is not as ``\\xNN``."""
    return raw.decode("utf-8", errors="backslashreplace")


def unified(src: Source, *, context: int = 3) -> str:
    """The attempt's unified diff (binary files as git's one-line note), "" for none."""
    if not src.is_git or src.commit is None:
        return ""
    _verify(src)
    assert src.base is not None
    out = _git(src, "diff-tree", "-p", f"-U{context}", *_DIFF_OPTS, src.base, src.commit)
    return decode(out)


def stat(src: Source) -> list[FileStat]:
    """Each changed path with its line counts (None for binary files and plain directories)."""
    if not src.is_git:
        return [FileStat(c.path, c.insertions, c.deletions) for c in src.changes]
    if src.commit is None:
        return []
    _verify(src)
    assert src.base is not None
    out = _git(src, "diff-tree", "-z", "--numstat", *_DIFF_OPTS, src.base, src.commit)
    stats = []
    for rec in out.split(b"\0"):
        if not rec:
            continue
        added, deleted, name = rec.split(b"\t", 2)
        stats.append(
            FileStat(
                decode(name),
                int(added) if added != b"-" else None,
                int(deleted) if deleted != b"-" else None,
            )
        )
    return stats


def parse(text: str) -> Diff:
    """Split a unified diff into lines and files, counting each file's lines.

    One pass, no regex per line: a 50,000-line diff parses in a few milliseconds.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    files: list[FileDiff] = []
    kinds = bytearray(len(lines))
    current: FileDiff | None = None
    in_hunk = False
    for i, line in enumerate(lines):
        first = line[:1]
        if line.startswith("diff --git "):
            if current is not None:
                current.end = i
            current = FileDiff(path=_header_path(line), start=i)
            files.append(current)
            in_hunk = False
            kinds[i] = HEADER
            continue
        if current is None:
            kinds[i] = OTHER
            continue
        if in_hunk and first == "+":
            current.insertions += 1
            kinds[i] = ADDED
            continue
        if in_hunk and first == "-":
            current.deletions += 1
            kinds[i] = REMOVED
            continue
        if in_hunk and first in (" ", "\\"):
            kinds[i] = CONTEXT
            continue
        if first == "@":
            in_hunk = True
            kinds[i] = HUNK
            continue
        kinds[i] = HEADER  # index, mode, ---/+++, Binary files …: the file's header
        in_hunk = False
        if line.startswith("+++ ") or (line.startswith("--- ") and current.path == ""):
            # the b/ name, else (a deleted file with a quoted name) the a/ name
            name = line[4:]
            if name != "/dev/null":
                current.path = _unquote(name)[2:]
        elif line.startswith("Binary files "):
            current.binary = True
    if current is not None:
        current.end = len(lines)
    return Diff(lines=lines, files=files, kinds=kinds, width=max(map(len, lines), default=0))


def _header_path(line: str) -> str:
    """The b/ path of ``diff --git a/x b/x`` when unambiguous ("" when quoted or spaced)."""
    rest = line[len("diff --git ") :]
    if rest.startswith('"'):
        return ""
    half = (len(rest) - 1) // 2
    a, b = rest[:half], rest[half + 1 :]
    if a.startswith("a/") and b.startswith("b/") and a[2:] == b[2:]:
        return b[2:]
    return ""


def _unquote(name: str) -> str:
    """Git's C-style quoting undone (``"b/\\303\\251"`` -> ``b/é``), bad UTF-8 kept visible."""
    name = name.split("\t", 1)[0]
    if not (len(name) >= 2 and name[0] == '"' and name[-1] == '"'):
        return name
    body = name[1:-1]
    out = bytearray()
    i = 0
    simple = {"n": 10, "t": 9, '"': 34, "\\": 92, "a": 7, "b": 8, "f": 12, "r": 13, "v": 11}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            if body[i + 1 : i + 4].isdigit() and len(body[i + 1 : i + 4]) == 3:
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
        out += ch.encode("utf-8", errors="backslashreplace")
        i += 1
    return decode(bytes(out))


def load(env: Envelope, attempt: int | None = None) -> tuple[Source, Diff]:
    """The source and the parsed diff of an attempt, for the console."""
    src = source(env, attempt)
    return src, parse(unified(src))
