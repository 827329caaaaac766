"""Which names of one directory changed since the last look: inotify, read without waiting.

What lets a claim keep incoming/ ranked without listing it again (ranking.Ranking). The
kernel queues an event inside the very rename, mkdir or rmdir that changes the
directory, before that call returns; so once a create (or a claim, or a requeue)
by any process on this machine has returned, the next :meth:`DirWatch.changed`
names its entry. Only on a local file system: a network file system's other
clients change the directory without this kernel seeing it, so there
:func:`open_watch` gives None and the caller lists the directory each time.
"""

from __future__ import annotations

import logging
import os
import weakref
from pathlib import Path

log = logging.getLogger("farro.dirwatch")

#: statfs(2) ``f_type`` of the file systems whose every change passes through this
#: kernel: ext2/3/4, xfs, btrfs, tmpfs, zfs, f2fs, jfs. No network file system, and
#: no overlay, whose lower layers can change beneath it.
WATCHABLE = frozenset(
    {0xEF53, 0x58465342, 0x9123683E, 0x01021994, 0x2FC12FC1, 0xF2F52010, 0x3153464A}
)


def fs_magic(path: Path) -> int | None:
    """statfs(2)'s ``f_type`` of the file system holding ``path`` (None: not to be had)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct statfs is 120 bytes on x86-64
        if libc.statfs(os.fsencode(path), buf) != 0:
            return None
    except (OSError, AttributeError):
        return None
    # f_type, the struct's first field, is a C long (__fsword_t)
    return ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF


class DirWatch:
    """An inotify watch on one directory's entries (not its subdirectories' contents)."""

    def __init__(self, path: Path) -> None:
        from inotify_simple import INotify, flags  # type: ignore[import-untyped]

        self._flags = flags
        self._inotify = INotify(nonblocking=True)
        try:
            mask = (
                flags.CREATE
                | flags.DELETE
                | flags.MOVED_FROM
                | flags.MOVED_TO
                | flags.DELETE_SELF
                | flags.MOVE_SELF
                | flags.ONLYDIR
                | flags.DONT_FOLLOW
            )
            self._inotify.add_watch(path, mask)
        except BaseException:
            self._inotify.close()
            raise
        # closed with its owner (a root's cache, dropped or collected), never left to
        # the FileIO's own finalizer, which warns of an unclosed file
        self._closer = weakref.finalize(self, self._inotify.close)
        self._pid = os.getpid()
        self.alive = True

    def changed(self) -> set[str] | None:
        """Names created, removed or renamed in or out since the last call.

        None when that cannot be told: the kernel's event queue overflowed (list
        the directory again), or the directory itself was removed, moved or
        unmounted, or this is a forked child, sharing the parent's queue of events
        (then :attr:`alive` is False: the watch is over for good).
        """
        if os.getpid() != self._pid:  # a forked child: its events are read by the parent
            self.close()
            return None
        f = self._flags
        names: set[str] = set()
        lost = False
        for event in self._inotify.read(timeout=0):
            if event.mask & (f.DELETE_SELF | f.MOVE_SELF | f.UNMOUNT | f.IGNORED):
                self.close()
                return None
            if event.mask & f.Q_OVERFLOW:
                lost = True
            elif event.name:
                names.add(event.name)
        return None if lost else names

    def close(self) -> None:
        self.alive = False
        self._closer()


def open_watch(path: Path) -> DirWatch | None:
    """A watch on ``path``, or None where a watch could miss a change, or none can be had."""
    if fs_magic(path) not in WATCHABLE:
        return None
    try:
        return DirWatch(path)
    except (ImportError, OSError) as exc:  # no inotify here, or out of instances or watches
        log.debug("no inotify watch on %s (%s): listing it at each claim", path, exc)
        return None
