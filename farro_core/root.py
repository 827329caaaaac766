"""A FARRO root: one queue, laid out as plain directories (docs/spec.md §1)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from farro_core import fs
from farro_core.errors import NotFound, RootError
from farro_core.ids import ID_PATTERN, check_id
from farro_core.lru import LRU
from farro_core.settings import Settings, load_settings
from farro_core.transitions import QUEUE_DIR, Status
from farro_core.visible import visible

QUEUES = ("incoming", "active", "done")
DIRS = (
    "tmp",
    *QUEUES,
    "quarantine",
    "inbox",
    "inbox/accepted",
    "inbox/rejected",
    "audit",
    "run",
    "run/workers",
)


def resolve_path(root: str | os.PathLike[str] | None = None) -> Path:
    """``--root``, else ``$FARRO_ROOT``, else ``~/.farro``."""
    chosen = root if root is not None else os.environ.get("FARRO_ROOT") or "~/.farro"
    return Path(os.path.abspath(os.path.expanduser(os.fspath(chosen))))


class Root:
    """Paths and checks of one root; cheap to build, so pass it around freely."""

    def __init__(self, path: Path, flags: dict[str, Any] | None = None) -> None:
        self.path = path
        self.key = str(path)
        self._flags = dict(flags or {})
        self.tmp = path / "tmp"
        self.incoming = path / "incoming"
        self.active = path / "active"
        self.done = path / "done"
        self.quarantine = path / "quarantine"
        self.inbox = path / "inbox"
        self.accepted = self.inbox / "accepted"
        self.rejected = self.inbox / "rejected"
        self.audit_file = path / "audit" / "audit.jsonl"
        self.archive = path / ARCHIVE  # finished jobs `farro gc --archive` moved aside
        self.run = path / "run"
        self.workers_dir = self.run / "workers"
        self.manager_lock = self.run / "manager.lock"
        self.create_lock = self.run / "create.lock"
        # what this process derived from files that never change (prompt.json): one
        # bounded LRU per name, owned by the root so that no two roots share one
        self._caches: dict[str, LRU[Any, Any]] = {}
        #: the symlink the root was given as (resolved once, at open); None: given as is
        self.via: Path | None = None

    def drop_caches(self) -> None:
        """Forget what this process derived from the files: the next read goes to disk."""
        self._caches.clear()

    def cache(self, name: str, maxsize: int) -> LRU[Any, Any]:
        """This root's cache called ``name`` (made on first use, at most ``maxsize`` entries)."""
        found = self._caches.get(name)
        if found is None:
            found = self._caches.setdefault(name, LRU(maxsize))
        return found

    def __repr__(self) -> str:
        return f"Root({self.key!r})"

    @classmethod
    def init(cls, path: str | os.PathLike[str] | None = None) -> Root:
        """Create the layout (mode 0700); an existing root is checked and kept."""
        p, via = _through_link(resolve_path(path))
        real = Path(os.path.realpath(p))
        outer = enclosing_root(real.parent) if real.parent != real else None
        if outer is not None:  # ~/q/incoming: its queue would read the new root's dirs as jobs
            raise RootError(
                f"{p} is inside the FARRO root {outer}: a root cannot hold another; "
                "give a directory outside it"
            )
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        elif p.is_dir() and not all((p / d).is_dir() for d in DIRS):
            foreign = sorted(set(os.listdir(p)) - _ROOT_NAMES)
            if foreign:  # `--root ~/src/myrepo` for `--example`: never spread a root over it
                raise RootError(
                    f"{p} holds {visible(foreign[0])}"
                    f"{f' and {len(foreign) - 1} more' if len(foreign) > 1 else ''}, so it is "
                    "no FARRO root to make: give a new or empty directory"
                )
        fs.make_private_dir(p)
        for d in DIRS:
            fs.make_private_dir(p / d)
        root = cls.open(p)
        root.via = via
        return root

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, **flags: Any) -> Root:
        """Open an initialised root, refusing one that is missing, incomplete or unsafe."""
        p, via = _through_link(resolve_path(path))
        if not os.path.lexists(p):
            raise RootError(f"no FARRO root at {p}: create one with `farro init --root {p}`")
        if not p.is_dir():
            raise RootError(f"{p} is not a directory")
        missing = [d for d in DIRS if not (p / d).is_dir()]
        if missing:
            raise RootError(
                f"{p} is not an initialised FARRO root (missing {missing[0]}/): "
                f"run `farro init --root {p}`"
            )
        fs.check_private(p)
        for d in (*QUEUES, "inbox", "tmp", "run"):
            fs.check_private(p / d)
        fs.check_same_fs([p / d for d in ("tmp", *QUEUES, "quarantine")])
        root = cls(p, flags)
        root.via = via
        return root

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.path, self._flags)

    def queue_dir(self, status: Status) -> Path:
        return self.path / QUEUE_DIR[status]

    def locate(self, job_id: str) -> Path:
        """Where the job sits now. Moves race with lookups, so look twice round."""
        check_id(job_id)
        for _ in range(3):
            for q in ("incoming", "active", "done", "incoming"):
                candidate = self.path / q / job_id
                if os.path.lexists(candidate):
                    return candidate
            if os.path.lexists(self.archive / job_id):  # read-only there: no commit moves it
                return self.archive / job_id
        raise NotFound(f"no job {job_id} in {self.path}")

    def ids(self, queue: str) -> list[str]:
        """Job ids in one queue directory (entries that are not ids are fsck's business)."""
        # listdir, not scandir: no entry objects (the watchdog lists active/ at every
        # sweep); an id never starts with a dot, so hidden entries fail the pattern too
        return [name for name in os.listdir(self.path / queue) if ID_PATTERN.fullmatch(name)]

    def count(self, queue: str) -> int:
        return sum(1 for _ in _names(self.path / queue))


def _through_link(path: Path) -> tuple[Path, Path | None]:
    """A root given as a symlink (``~/.farro`` -> ``/data/farro``) is resolved once,
    here: every later path is the real one, so repointing the link cannot move a
    running process's queue. The link must be the operator's (or the system's):
    whoever owns it chooses the root. Below the root nothing is followed."""
    try:
        st = os.lstat(path)
    except OSError:
        return path, None
    if not stat.S_ISLNK(st.st_mode):
        return path, None
    if st.st_uid not in (os.geteuid(), 0):
        raise RootError(
            f"{path} is a symlink owned by uid {st.st_uid}, not by you (uid {os.geteuid()}): "
            "whoever owns it chooses your root; give the real directory"
        )
    return Path(os.path.realpath(path)), path


# what a root holds: a directory holding anything else is not made one (lost+found:
# a root may be a file system of its own)
ARCHIVE = "archive"


def archived(job_path: Path) -> bool:
    """A job directory ``farro gc --archive`` moved to ``ROOT/archive/``: readable, but
    nothing commits there any more (no transition, no landing record)."""
    return job_path.parent.name == ARCHIVE


_ROOT_NAMES = frozenset({*DIRS, "farro.toml", "worktrees", "archive", "lost+found"})


def enclosing_root(path: Path) -> Path | None:
    """The FARRO root ``path`` is (or is inside), symlinks resolved; None when none is.

    A workspace there would be written by agents and read by the queue: its
    entries in incoming/ or active/ are not jobs, and jobs would judge each other.
    """
    real = Path(os.path.realpath(path))
    for p in (real, *real.parents):
        if all(os.path.isdir(p / d) for d in DIRS):
            return p
    return None


def _names(path: Path) -> Iterator[str]:
    with os.scandir(path) as it:
        for entry in it:
            if not entry.name.startswith("."):
                yield entry.name
