"""incoming/ ranked for claims, kept between them, and brought up to date by what changed.

Every claim needs the best queued job. Listing and sorting incoming/ at each claim
made a claim cost what is queued (24-28 ms with 10,000 queued); this keeps the
ranking and patches it with the entries that came and went (README, Performance).
What a job's place is (its prompt's priority and creation time, its preset) is
job.py's: it passes that reader in (:data:`OrderOf`).
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from typing import Protocol

from farro_core import dirwatch
from farro_core.ids import ID_PATTERN
from farro_core.lru import LRU
from farro_core.root import Root

#: (-priority, created_at, preset) of a queued job, read from its prompt
Order = tuple[int, float, str | None]

#: the order of a job whose directory could not be opened: last among priority 0
UNOPENED: Order = (0, float("inf"), None)


class OrderOf(Protocol):
    """Reads a queued job's :data:`Order` (``fresh``: not from a cache)."""

    def __call__(self, root: Root, job_id: str, ino: int, *, fresh: bool = False) -> Order: ...


#: (-priority, created_at, id, preset): a queued job's place; ids are unique, so two
#: keys never tie before the preset (None and str would not compare)
QueueKey = tuple[int, float, str, str | None]

#: above this share of the queue changed since the last look, the ranking is
#: sorted afresh rather than patched entry by entry (each patch moves the list's tail)
_RESORT_SHARE = 8

#: from this many entries in incoming/ on, a process watches it (inotify, on a local
#: file system) instead of listing it at each claim: a watch is one of the user's
#: few inotify instances (128 by default), so a short queue, cheap to list, takes none
_WATCH_FROM = 256

#: while watching, incoming/ is still listed this often (seconds), so a change no
#: event told of (a file system mounted over incoming/, say) hides nothing for long
_RELIST_S = 10.0

Entry = tuple[str, int]  # (name, inode) of a directory in incoming/


class Ranking:
    """incoming/ ranked, kept between claims, and brought up to date at each claim.

    Up to date by one of two means, whichever this root allows. Listing incoming/
    again (the listing is the truth: other processes create, requeue and claim
    jobs) and comparing it with the last listing as a set of (name, inode)
    entries, so only the entries that came or went cost Python work (a prompt
    read on first sight, a bisect). Or, on a local file system once the queue is
    long, an inotify watch (:mod:`farro_core.dirwatch`), added *before* the
    listing it continues, which names every entry created, removed or renamed
    since the last claim: only those are looked at again (``lstat``), so a claim
    costs what changed, not what is queued. An overflowed event queue means a
    listing again. An id that came back as another directory is another inode,
    so another entry, ranked by its own prompt. Shared by the worker threads of a
    process: one lock around it all, since events, once read, are gone.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watch: dirwatch.DirWatch | None = None
        self._forget()

    def _forget(self) -> None:
        if self._watch is not None:
            self._watch.close()
        self._watch = None
        self._watch_tried = False
        self._seen: dict[str, int] = {}  # every name in incoming/ (dotfiles too): its inode
        self._key: dict[Entry, QueueKey] = {}  # the queued ids' keys
        self._ranked: list[QueueKey] = []  # those keys, sorted
        self._unread: set[Entry] = set()  # directories that could not be opened
        self._stale: set[str] = set()  # names a claim found ranked by another prompt
        self._listed_at = float("-inf")  # when incoming/ was last listed (monotonic)

    @property
    def watching(self) -> bool:
        return self._watch is not None and self._watch.alive

    def ranked(self, root: Root, order: OrderOf, head: int | None = None) -> list[QueueKey]:
        """The queued jobs, best first, as incoming/ holds them now (a snapshot): the
        first ``head`` of them, if given (a copy of 100k keys costs half a millisecond).
        ``order`` reads a job's place from its prompt (job.py's business)."""
        with self._lock:
            try:
                self._refresh(root, order)
            except BaseException:
                self._forget()  # half patched, events read: the next claim starts afresh
                raise
            return self._ranked[:head]

    def stale(self, name: str) -> None:
        """``name`` is ranked by a prompt it no longer has: read it again at the next look.

        Without a watch, a directory removed and made again between two listings
        can come back at the inode number it had, so no listing tells it apart; the
        claim, which reads the prompt anyway, does.
        """
        with self._lock:
            self._stale.add(name)

    def _refresh(self, root: Root, order: OrderOf) -> None:
        stale, self._stale = self._stale, set()
        if self._watch is not None and self._watch.alive:
            names = self._watch.changed()
            if names is not None:
                self._look_again(root, order, names | stale)
                if time.monotonic() - self._listed_at < _RELIST_S:
                    return
                stale = set()  # read again just now; the listing below checks the rest
        listing = _listing(root)
        self._listed_at = time.monotonic()
        if not self._watch_tried and len(listing) >= _WATCH_FROM:
            self._watch_tried = True
            self._watch = dirwatch.open_watch(root.incoming)
            if self._watch is not None:
                listing = _listing(root)  # the listing the watch's events continue
        # an entry whose directory could not be opened is ranked last: try it again
        retry = {e for e in self._unread if listing.get(e[0]) == e[1]}
        gone = (self._seen.items() - listing.items()) | retry
        new = (listing.items() - self._seen.items()) | retry
        self._seen = listing
        self._apply(root, order, gone, new)
        if stale:
            self._look_again(root, order, stale)

    def _look_again(self, root: Root, order: OrderOf, names: set[str]) -> None:
        """Bring the entries of ``names`` (and those not opened yet) up to date.

        A name the events give is read again even when its inode is the one kept:
        removed and made again in between, a directory can get the inode number its
        predecessor freed, with another prompt (another priority, another preset).
        """
        retry = self._unread.copy()
        gone: set[Entry] = set()
        new: set[Entry] = set()
        incoming = os.fspath(root.incoming)
        for name in names | {n for n, _ in retry}:
            old = self._seen.get(name)
            try:
                ino: int | None = os.lstat(os.path.join(incoming, name)).st_ino
            except FileNotFoundError:
                ino = None
            if old is not None:
                gone.add((name, old))
                del self._seen[name]
            if ino is not None:
                new.add((name, ino))
                self._seen[name] = ino
        self._apply(root, order, gone, new, fresh=True)

    def _apply(
        self,
        root: Root,
        order_of: OrderOf,
        gone: set[Entry],
        new: set[Entry],
        *,
        fresh: bool = False,
    ) -> None:
        if not (gone or new):
            return
        resort = (len(gone) + len(new)) * _RESORT_SHARE > len(self._ranked)
        for entry in gone:
            self._unread.discard(entry)
            key = self._key.pop(entry, None)
            if key is not None and not resort:
                del self._ranked[bisect.bisect_left(self._ranked, key)]
        added = []
        for entry in new:
            job_id, ino = entry
            if job_id.startswith(".") or not ID_PATTERN.fullmatch(job_id):
                continue
            order = order_of(root, job_id, ino, fresh=fresh)
            if order is UNOPENED:
                self._unread.add(entry)
            key = (order[0], order[1], job_id, order[2])
            self._key[entry] = key
            added.append(key)
        if resort:
            self._ranked = sorted(self._key.values())
        else:
            for key in added:
                bisect.insort(self._ranked, key)


def _listing(root: Root) -> dict[str, int]:
    """Every name in incoming/ with its inode (free from the directory read)."""
    with os.scandir(root.incoming) as it:
        return {e.name: e.inode() for e in it}


def of(root: Root) -> Ranking:
    """This process's ranking of ``root``'s queue, made on first use."""
    holder: LRU[str, Ranking] = root.cache("claim_queue", 1)
    found = holder.get("queue")
    if found is None:
        with _QUEUE_LOCK:
            found = holder.get("queue")
            if found is None:
                found = Ranking()
                holder.put("queue", found)
    return found


_QUEUE_LOCK = threading.Lock()
