"""Pooled worktrees: each worker keeps one worktree per repository and reuses it.

A fresh ``git worktree add`` writes the whole checkout; reusing a worktree costs
only what differs between two bases. Layout, under ``ROOT/worktrees/<repo key>/``
(the key names the repository's common git dir, so one repo has one pool)::

    slot-N/        the worktree
    slot-N.lock    flock held by the worker using it, for as long as the worker lives
    slot-N.json    the repository and the worktree's git dir, as FARRO registered them
    slot-N.index   FARRO's own index of the worktree, written by FARRO's checkout
    git.lock       taken around ``git worktree add/remove`` (git races on one repo)

The flock is the ownership: two workers never share a slot, and a worker killed
with -9 drops its lock with its process, so the next worker that needs a slot of
that repository takes the dead one's over and resets it, after ending every unit
on the host whose owner is dead (:func:`procs.orphans`): the dead worker's agent
may still be writing in there. A slot where one of those survives its SIGKILL (a kill
the kernel refused, a process stuck on a hung network file system), by its
``FARRO_WORKSPACE`` or its working directory, is skipped with a warning naming the
pids, never reset under it. A slot is created only
when every existing slot is held, so slots never outnumber the workers that ran
at once, and disk stays one checkout per worker.

Isolation. Before each attempt the slot is reset to the attempt's base: a forced
detached checkout through FARRO's own index (the agent's index is never read), then
every untracked entry removed (ignored ones too, unless ``workspace_reuse`` is
``keep-ignored``: then only those the base commit's ``.gitignore`` files ignore are
kept), and the worktree's own git dir cleared of what the last job's git left there
(locks, a merge or rebase under way, ``config.worktree``). FARRO's index records the
stat data git saw when it wrote the files; a file the agent touched has another
ctime (which no agent can set back), so git rewrites it, and a file whose recorded
ctime or mtime falls in or after the second the index was written in (where an
edit's stat data can equal the recorded ones: git may compare whole seconds) is
hashed first, and removed unless its bytes and mode are the index's, so git writes
it again. Those racy entries are read from the index itself (:func:`index_facts`),
never by a stat of every file. That index is trusted only while the worker that
wrote it holds it and its bytes and mtime are as they were (git's racy rule reads
that mtime): a slot taken over from a dead worker is reset from an index with no
stat data, which rewrites every file. Anything that goes wrong while resetting
discards the slot and makes it anew.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from farro_core import fs, locks, procs
from farro_core.root import Root

Reuse = Literal["clean", "keep-ignored"]
_SLOT = re.compile(r"^slot-([1-9][0-9]{0,5})$")
GIT_LOCK = "git.lock"
GIT_LOCK_TIMEOUT_S = 300.0
log = logging.getLogger("farro.pool")


def pool_dir(root: Root) -> Path:
    return root.path / "worktrees"


def repo_key(common_dir: Path) -> str:
    """``<name>-<hash>``: readable, and unique per common git dir."""
    real = os.path.realpath(common_dir)
    name = Path(real).name
    if name == ".git":
        name = Path(real).parent.name
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name.removesuffix(".git"))[:40] or "repo"
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:12]
    return f"{name}-{digest}"


@dataclass(frozen=True)
class IndexFacts:
    """What FARRO reads from its own index of a slot, in one pass over its entries."""

    #: entries whose recorded ctime or mtime is not older than the index's own second
    #: (an edit in that second can leave stat data equal to them, so they are hashed),
    #: with their mode and object id
    racy: dict[str, tuple[str, str]]
    #: (path, mode, object id) of every ``.gitignore`` and ``.gitattributes`` entry
    named: tuple[tuple[str, str, str], ...]
    #: a submodule entry (mode 160000) is there
    gitlinks: bool


_NAMED = (b".gitignore", b".gitattributes")


def index_facts(data: bytes, written_s: int) -> IndexFacts | None:
    """Racy entries, ignore and attribute files, and submodules of an index file's bytes.

    Only index versions 2 and 3 are read (FARRO's git writes version 2), with
    either object hash, told by the trailing checksum; anything else is None.
    Seconds, not nanoseconds: git built without nanosecond stat compares whole
    seconds, so an entry recorded in the index's own second is racy.
    """
    for hash_len, algo in ((20, "sha1"), (32, "sha256")):
        if (
            len(data) > 12 + hash_len
            and hashlib.new(algo, data[:-hash_len]).digest() == data[-hash_len:]
        ):
            break
    else:
        return None
    if data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3):
        return None
    flags_at = 40 + hash_len
    # ctime s, mtime s, mode, flags
    head = struct.Struct(f">I4xI12xI{flags_at - 28}xH").unpack_from
    end = len(data) - hash_len
    racy: dict[str, tuple[str, str]] = {}
    named: list[tuple[str, str, str]] = []
    gitlinks = False
    off = 12
    try:
        for _ in range(count):
            ctime_s, mtime_s, mode, flags = head(data, off)
            start = off + flags_at + 2
            if flags & 0x4000:  # extended flags (version 3)
                if version < 3:
                    return None
                start += 2
            n = flags & 0xFFF
            if n == 0xFFF:  # a name this long or longer: up to its NUL
                n = data.index(b"\0", start + n) - start
            hit = ctime_s >= written_s or mtime_s >= written_s
            if hit or mode == 0o160000 or data[start + n - 1] in b"es":
                name = data[start : start + n]
                oid = data[off + 40 : off + 40 + hash_len].hex()
                if hit:
                    racy[os.fsdecode(name)] = (f"{mode:o}", oid)
                gitlinks = gitlinks or mode == 0o160000
                if name.rsplit(b"/", 1)[-1] in _NAMED:
                    named.append((os.fsdecode(name), f"{mode:o}", oid))
            off += (start - off + n + 8) // 8 * 8  # 1 to 8 NULs pad each entry
            if off > end:
                return None
    except (struct.error, ValueError, IndexError):
        return None
    return IndexFacts(racy, tuple(named), gitlinks)


def _ident(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _read_whole(path: Path) -> tuple[bytes, tuple[int, int, int, int, int]] | None:
    """A file's bytes and its identity, the same before and after the read (None: not)."""
    try:
        with open(path, "rb") as fh:
            before = _ident(os.fstat(fh.fileno()))
            data = fh.read()
            if _ident(os.fstat(fh.fileno())) != before or len(data) != before[2]:
                return None
    except OSError:
        return None
    return data, before


@dataclass
class Slot:
    """One pooled worktree, held (flocked) by the worker that uses it."""

    key_dir: Path
    number: int
    lock: locks.Flock
    #: (device, inode, size, mtime, ctime) of the slot's index as FARRO last wrote it;
    #: None: not trusted. Any write, chmod, link or replacement moves its ctime (which
    #: no agent can set back) or its inode, so the same identity is the same bytes
    trusted: tuple[int, int, int, int, int] | None = None
    #: that index's mtime (ns): when git wrote it; an entry recorded in or after its
    #: second may match an edit made within that second (``IndexFacts.racy``)
    written_ns: int = 0
    #: what FARRO needs from that index, read when it was trusted
    facts: IndexFacts | None = None

    @property
    def gitlinks(self) -> bool:
        """The base may hold submodules (judging then reads every file)."""
        return self.facts is None or self.facts.gitlinks

    @property
    def name(self) -> str:
        return f"slot-{self.number}"

    @property
    def path(self) -> Path:
        return self.key_dir / self.name

    @property
    def meta_file(self) -> Path:
        return self.key_dir / f"{self.name}.json"

    @property
    def index_file(self) -> Path:
        return self.key_dir / f"{self.name}.index"

    def meta(self) -> dict[str, str] | None:
        try:
            body = fs.read_json(self.meta_file, limit=1 << 16)
        except (OSError, ValueError):
            return None
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in ("common_dir", "git_dir")
        ):
            return None
        return {k: body[k] for k in ("common_dir", "git_dir")}

    def trust_index(self) -> None:
        """Record the slot's index as FARRO just wrote it (after a checkout at the base)."""
        self.trusted, self.facts = None, None
        got = _read_whole(self.index_file)
        if got is None:
            return
        data, ident = got
        self.written_ns = ident[3]
        self.facts = index_facts(data, self.written_ns // 10**9)
        # an index FARRO cannot read is not trusted: every file is then compared
        self.trusted = ident if self.facts is not None else None

    def index_trusted(self) -> bool:
        """Its bytes and its mtime as FARRO left them: git's racy-entry rule reads that
        mtime, so one moved forward would make git trust stat data it must not."""
        try:
            return self.trusted is not None and _ident(os.stat(self.index_file)) == self.trusted
        except OSError:
            return False

    def trusted_bytes(self) -> bytes | None:
        """The index's bytes, if they are still the ones FARRO trusted (None: not)."""
        got = _read_whole(self.index_file) if self.trusted is not None else None
        return got[0] if got is not None and got[1] == self.trusted else None

    def release(self) -> None:
        self.lock.release()

    def __del__(self) -> None:  # a worker dropped without stop(): its slot is free again
        self.lock.release()


@dataclass
class Pool:
    """The slots one worker holds, one per repository, until :meth:`close`."""

    root: Root
    slots: dict[str, Slot] = field(default_factory=dict)

    def slot(self, common_dir: Path) -> Slot:
        """This worker's slot for the repository: the one it holds, a free one, or a new one."""
        key = repo_key(common_dir)
        held = self.slots.get(key)
        if held is not None and not held.lock.released:
            return held
        key_dir = pool_dir(self.root) / key
        fs.make_private_dir(pool_dir(self.root))
        fs.make_private_dir(key_dir)
        dir_fd = fs.open_dir(key_dir)
        skipped: set[int] = set()
        try:
            while True:
                taken = _numbers(key_dir)
                for n in taken:
                    got = None if n in skipped else locks.try_lock(dir_fd, f"slot-{n}.lock")
                    if got is None:
                        continue
                    # a worker killed with -9 left its agent running in there; this
                    # process may have started before it died, so nothing reaped it,
                    # and reap_orphans() skips while a sibling worker is at it: end
                    # them here, and be sure they are gone before the reset
                    left = _survivors_in(key_dir / f"slot-{n}")
                    if left:
                        log.warning(
                            "not reusing the worktree %s/slot-%d: processes %s of a dead "
                            "worker still run in it after SIGKILL",
                            key_dir,
                            n,
                            ", ".join(str(p) for p in left[:10]),
                        )
                        got.release()
                        skipped.add(n)
                        continue
                    self.slots[key] = Slot(key_dir, n, got)
                    return self.slots[key]
                n = (max(taken) + 1) if taken else 1
                try:  # O_EXCL: two workers picking the same new number make one slot
                    os.close(
                        os.open(
                            f"slot-{n}.lock",
                            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                            0o600,
                            dir_fd=dir_fd,
                        )
                    )
                except FileExistsError:
                    continue
        finally:
            os.close(dir_fd)

    def close(self) -> None:
        """Let go of every slot (the worktrees stay for the next worker)."""
        for slot in self.slots.values():
            slot.release()
        self.slots.clear()


def _survivors_in(slot_dir: Path) -> list[int]:
    """End every unit on the host whose owner died (as a worker does when it starts);
    the pids that outlived their kill and may write in ``slot_dir``: their unit ran
    there (``FARRO_WORKSPACE``) or their working directory is in it."""
    left: list[int] = []
    for orphan in procs.orphans():
        alive = procs.end_orphan(orphan)
        where = orphan.farro_env.get("FARRO_WORKSPACE")
        if alive and (
            (where is not None and _inside(where, slot_dir))
            or any(_inside(_cwd(p), slot_dir) for p in alive)
        ):
            left.extend(alive)
    return left


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def _inside(path: str, top: Path) -> bool:
    """``path`` is ``top`` or below it, whether either is spelt through a symlink."""
    if not path:
        return False
    for p in {path, os.path.realpath(path)}:
        for t in {str(top), os.path.realpath(top)}:
            if p == t or p.startswith(t.rstrip(os.sep) + os.sep):
                return True
    return False


def _numbers(key_dir: Path) -> list[int]:
    out = []
    for name in os.listdir(key_dir):
        if name.endswith(".lock") and (m := _SLOT.fullmatch(name[: -len(".lock")])):
            out.append(int(m.group(1)))
    return sorted(out)


def git_lock(root: Root, common_dir: Path) -> locks.Flock:
    """The repository's lock around ``git worktree add/remove`` (git races there)."""
    key_dir = pool_dir(root) / repo_key(common_dir)
    fs.make_private_dir(pool_dir(root))
    fs.make_private_dir(key_dir)
    dir_fd = fs.open_dir(key_dir)
    try:
        return locks.lock(dir_fd, GIT_LOCK, timeout=GIT_LOCK_TIMEOUT_S)
    finally:
        os.close(dir_fd)


def remove_tree(path: Path) -> None:
    """Remove ``path`` (file, symlink or tree), making directories writable on the way:
    an agent may leave a read-only directory behind. Symlinks are never followed."""

    def fix(_func: object, p: str, _exc: object) -> None:
        parent = os.path.dirname(p)
        try:
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, stat.S_IRWXU)
                shutil.rmtree(p, onerror=fix)
            else:
                os.unlink(p)
        except FileNotFoundError:
            pass

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, onerror=fix)
    else:
        try:
            os.unlink(path)
        except PermissionError:
            os.chmod(path.parent, stat.S_IRWXU)
            os.unlink(path)


@dataclass
class SlotInfo:
    """A slot on disk, as ``farro gc`` sees it."""

    key_dir: Path
    number: int
    in_use: bool
    meta: dict[str, str] | None


def scan(root: Root) -> list[SlotInfo]:
    """Every slot under the root, and whether a live worker holds it."""
    out: list[SlotInfo] = []
    top = pool_dir(root)
    try:
        keys = sorted(os.listdir(top))
    except FileNotFoundError:
        return out
    for key in keys:
        key_dir = top / key
        if key.startswith(".") or not stat.S_ISDIR(os.lstat(key_dir).st_mode):
            continue
        dir_fd = fs.open_dir(key_dir)
        try:
            numbers = set(_numbers(key_dir))
            for name in os.listdir(key_dir):
                if m := _SLOT.fullmatch(name):
                    numbers.add(int(m.group(1)))
            for n in sorted(numbers):
                free = locks.is_free(dir_fd, f"slot-{n}.lock")
                meta_path = key_dir / f"slot-{n}.json"
                try:
                    body = json.loads(fs.read_file(meta_path, limit=1 << 16))
                except (OSError, ValueError):
                    body = None
                meta = (
                    {k: v for k, v in body.items() if isinstance(v, str)}
                    if isinstance(body, dict)
                    else None
                )
                if meta is not None and not {"common_dir", "git_dir"} <= meta.keys():
                    meta = None
                out.append(SlotInfo(key_dir, n, not free, meta))
        finally:
            os.close(dir_fd)
    return out
