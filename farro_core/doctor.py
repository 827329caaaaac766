"""``farro doctor``: does the root's file system give what FARRO relies on?

FARRO's only coordination is the file system: flock for claims and commits,
rename for every move, fsync of directories for durability, one ``st_dev`` for
the whole root, and file mtimes for heartbeats. A file system that quietly lacks
one of these (NFSv3 mounted ``nolock``, sshfs, SMB with ``nobrl``) lets two
workers claim the same job and nobody notices. So the checks run for real on the
root, and workers refuse to start where exclusion cannot be guaranteed
(``allow_unsafe_fs`` overrides). docs/scaling.md says which file systems and
mount options are supported.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from farro_core import fs, fsclock, humanize, identity, locks
from farro_core.errors import AlreadyExists, Refused
from farro_core.root import DIRS, Root
from farro_core.settings import Settings

log = logging.getLogger("farro.doctor")

Verdict = Literal["pass", "warn", "fail"]
WORK_DIR = "doctor"

#: file system types on one machine's disks or memory: never shared by two hosts
LOCAL_TYPES = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "zfs", "f2fs", "overlay", "bcachefs", "jfs"}
)


@dataclass(frozen=True)
class Check:
    name: str
    verdict: Verdict
    detail: str


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    options: frozenset[str]

    def option(self, key: str) -> str | None:
        """The value of ``key=value`` among the options (``""`` for a bare flag)."""
        for opt in self.options:
            name, _, value = opt.partition("=")
            if name == key:
                return value
        return None


@dataclass
class Report:
    root: Path
    mount: Mount | None
    checks: list[Check] = field(default_factory=list)
    #: some check could not run (full disk, read-only root): not a pass to remember
    incomplete: bool = False

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.verdict == "fail"]

    def lines(self) -> list[str]:
        return [f"{c.verdict:<4}  {c.name:<19} {c.detail}" for c in self.checks]


# ---------------------------------------------------------------- the mount


def find_mount(path: Path, mountinfo: str = "/proc/self/mountinfo") -> Mount | None:
    """The mount holding ``path`` (the longest mount point that prefixes it)."""
    real = os.path.realpath(path)
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError:
        return None
    best: Mount | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 3:
            continue
        point = _unescape(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.point)):
            opts = frozenset(fields[5].split(",")) | frozenset(tail[2].split(","))
            best = Mount(point, tail[0], opts)
    return best


def _unescape(text: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def judge_mount(m: Mount | None) -> Check:
    """The file system type and mount options against docs/scaling.md's table."""
    if m is None:
        return Check("file system", "warn", "unknown (no /proc/self/mountinfo entry)")
    t = m.fstype
    where = f"{t} on {m.point}"
    local_lock = m.option("local_lock")
    if t in LOCAL_TYPES:
        return Check("file system", "pass", f"{where} (local: hosts on this machine only)")
    if t in ("nfs", "nfs4"):
        if m.option("nolock") is not None or local_lock in ("all", "flock"):
            return Check(
                "file system",
                "fail",
                f"{where} with locks local to this host (nolock/local_lock): "
                "workers on two hosts can claim one job",
            )
        if m.option("nocto") is not None:
            return Check(
                "file system", "warn", f"{where} with nocto: other hosts may read stale job.json"
            )
        vers = m.option("vers") or ("4" if t == "nfs4" else "3")
        if not vers.startswith("4"):
            return Check(
                "file system", "warn", f"{where} vers={vers}: locks rely on lockd/statd; prefer v4"
            )
        return Check("file system", "pass", f"{where} vers={vers} with locking")
    if t == "lustre":
        if m.option("flock") is not None:
            return Check("file system", "pass", f"{where} with flock")
        return Check(
            "file system", "fail", f"{where} without -o flock: locks do not exclude across hosts"
        )
    if t in ("ceph", "fuse.ceph-fuse"):
        return Check("file system", "pass", where)
    if t in ("fuse.sshfs", "sshfs"):
        return Check("file system", "fail", f"{where}: sshfs has no locks across hosts")
    if t in ("cifs", "smb3"):
        if m.option("nobrl") is not None:
            return Check("file system", "fail", f"{where} with nobrl: locks are local only")
        return Check("file system", "warn", f"{where}: SMB locking is untested with FARRO")
    return Check("file system", "warn", f"{where}: unknown type; cross-host locking unverified")


# ---------------------------------------------------------------- live checks


_CHILD = """
import fcntl, sys
out = []
for path, take in ((sys.argv[1], fcntl.flock), (sys.argv[2], fcntl.lockf)):
    fd = open(path, "r+b")
    try:
        take(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        out.append("free")
    except BlockingIOError:
        out.append("busy")
    except OSError as exc:
        out.append("error:" + (exc.strerror or str(exc)))
print(" ".join(out))
"""


def check_locks(work: Path) -> list[Check]:
    """flock between two open files, then flock and POSIX locks against another process."""
    fl, px = work / "flock.lock", work / "posix.lock"
    checks = []
    fd1 = os.open(fl, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    fd2 = os.open(fl, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    fd3 = os.open(px, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(fd3, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            return [Check("locks", "fail", f"cannot take a free lock: {_err(exc)}")]
        if locks.try_flock_fd(fd2):
            checks.append(Check("flock", "fail", "a second open file took a held flock"))
        else:
            checks.append(Check("flock", "pass", "excludes between open files"))
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c", _CHILD, str(fl), str(px)],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            seen = done.stdout.split()
        except (OSError, subprocess.SubprocessError) as exc:
            seen = [f"error:{exc}"] * 2
        for name, got in zip(
            ("flock", "posix locks"), seen + ["error:no answer"] * 2, strict=False
        ):
            if got == "busy":
                checks.append(Check(f"{name} (procs)", "pass", "another process is excluded"))
            else:
                what = "took the held lock" if got == "free" else got.removeprefix("error:")
                checks.append(Check(f"{name} (procs)", "fail", f"another process {what}"))
    finally:
        for fd in (fd1, fd2, fd3):
            os.close(fd)  # closing drops the locks
    return checks


def check_foreign_manager(root: Root, settings: Settings) -> Check:
    """Across hosts, where it can be seen: a live manager on another host must look locked.

    manager.json names the last holder; a holder that still touches it (every sweep)
    while its lock looks free from here means locks do not cross hosts.
    """
    from farro_core.manager import MANAGER_JSON, lock_is_held, read_holder

    name = "locks (hosts)"
    holder = read_holder(root)
    if holder is None or holder.host == identity.host():
        return Check(name, "pass", "no other host manages this root now: nothing to compare")
    if lock_is_held(root):
        return Check(name, "pass", f"the manager lock of {holder.host} is seen held from here")
    path = root.run / MANAGER_JSON
    gone = Check(name, "pass", f"the last manager ({holder.host}) is gone: nothing to compare")
    try:
        first = os.stat(path, follow_symlinks=False).st_mtime_ns
    except OSError:
        return gone
    if fsclock.fs_now(root) - first / 1e9 > 2 * settings.watchdog_interval_s + 1:
        return gone  # not sweeping: a manager that died (its lock is rightly free)
    deadline = time.monotonic() + 2 * settings.watchdog_interval_s + 1
    while time.monotonic() < deadline:
        time.sleep(min(0.2, settings.watchdog_interval_s))
        if lock_is_held(root):
            return Check(name, "pass", f"the manager lock of {holder.host} is seen held from here")
        try:
            if os.stat(path, follow_symlinks=False).st_mtime_ns != first:
                return Check(
                    name,
                    "fail",
                    f"{holder.host} is sweeping as manager, yet its lock looks free from here: "
                    "locks do not cross hosts",
                )
        except OSError:
            break
    return gone


def check_rename(work: Path) -> Check:
    """rename replaces a file in one step; a directory keeps its inode; never over one."""
    a, b = work / "a", work / "b"
    fs.write_file(a, b"one", durable=False)
    fs.write_file(b, b"two", durable=False)
    os.rename(a, b)
    if os.path.lexists(a) or fs.read_file(b) != b"one":
        return Check("rename", "fail", "rename over a file is not atomic")
    d1, d2 = work / "d1", work / "d2"
    os.mkdir(d1)
    fs.write_file(d1 / "x", b"x", durable=False)
    ino = os.stat(d1).st_ino
    fs.rename_noreplace(d1, d2)
    if os.path.lexists(d1) or os.stat(d2).st_ino != ino or not (d2 / "x").exists():
        return Check("rename", "fail", "a directory rename copied instead of moving")
    os.mkdir(d1)
    try:
        fs.rename_noreplace(d2, d1)
    except AlreadyExists:
        return Check("rename", "pass", "atomic, in place, never over an existing directory")
    return Check("rename", "fail", "a directory was renamed over an existing one")


def check_dir_fsync(root: Root) -> Check:
    fd = fs.open_dir(root.path)
    try:
        os.fsync(fd)
    except OSError as exc:
        return Check("directory fsync", "fail", f"fsync of an O_DIRECTORY descriptor: {_err(exc)}")
    finally:
        os.close(fd)
    return Check("directory fsync", "pass", "O_DIRECTORY fsync works")


def check_st_dev(root: Root, work: Path) -> Check:
    """One device for the whole root, the same through a path and through a descriptor."""
    devs = {os.stat(root.path / d).st_dev for d in ("", *DIRS)}
    devs.add(os.stat(work).st_dev)
    fd = fs.open_dir(root.path)
    try:
        devs.add(os.fstat(fd).st_dev)
    finally:
        os.close(fd)
    devs.add(os.stat(root.path).st_dev)
    if len(devs) != 1:
        return Check("st_dev", "fail", "the root spans devices or its st_dev changes")
    return Check("st_dev", "pass", "one device, stable")


def check_clock(root: Root, settings: Settings) -> Check:
    skew = fsclock.measure(root)
    warn_s = settings.clock_skew_warn_s
    shown = humanize.skew(abs(skew), warn_s)
    what = f"this host's clock is {shown} {'ahead of' if skew >= 0 else 'behind'} the fs"
    if abs(skew) > warn_s:
        over = f"over clock_skew_warn_s, {humanize.skew(warn_s, warn_s)}"
        return Check("clock skew", "warn", f"{what} ({over}; fix NTP)")
    return Check("clock skew", "pass", what)


def _err(exc: OSError) -> str:
    return exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))


# ---------------------------------------------------------------- run them


def diagnose(root: Root, settings: Settings | None = None) -> Report:
    """Run every check on the root (it writes and removes a few files under run/doctor/).

    A check that cannot run (a full disk, a read-only root) is a warning, not a
    failure: it proves nothing about locks, and the report is marked incomplete.
    """
    settings = settings or root.settings
    report = Report(root.path, find_mount(root.path))
    report.checks.append(judge_mount(report.mount))
    base = root.run / WORK_DIR
    work = base / f"{fsclock.host_key(identity.host())}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(base, 0o700)
        os.mkdir(work, 0o700)
    except OSError as exc:
        report.checks.append(Check("checks", "warn", f"could not run them: {_err(exc)}"))
        report.incomplete = True
        return report
    steps: list[tuple[str, Callable[[], list[Check]]]] = [
        ("locks", lambda: check_locks(work)),
        ("locks (hosts)", lambda: [check_foreign_manager(root, settings)]),
        ("rename", lambda: [check_rename(work)]),
        ("directory fsync", lambda: [check_dir_fsync(root)]),
        ("st_dev", lambda: [check_st_dev(root, work)]),
        ("clock skew", lambda: [check_clock(root, settings)]),
    ]
    try:
        for name, step in steps:
            try:
                report.checks.extend(step())
            except OSError as exc:
                report.checks.append(Check(name, "warn", f"could not run: {_err(exc)}"))
                report.incomplete = True
    finally:
        _remove(work)
    return report


def _remove(work: Path) -> None:
    """Remove only what the checks made (names they use), then the directory."""
    for name in ("flock.lock", "posix.lock", "a", "b", "d1/x", "d2/x", "d1", "d2"):
        p = work / name
        try:
            if p.is_dir() and not p.is_symlink():
                os.rmdir(p)
            else:
                os.unlink(p)
        except OSError:
            pass
    try:
        os.rmdir(work)
    except OSError as exc:
        log.warning("could not remove %s: %s", work, exc)


_passed: set[int] = set()
_passed_lock = threading.Lock()


def require_safe(root: Root, settings: Settings | None = None) -> Report | None:
    """Refuse (exit 1) to run workers where exclusion cannot be guaranteed.

    Runs once per device per process (a pass is remembered by st_dev). Returns the
    report when the checks ran, None when a pass was remembered.
    """
    settings = settings or root.settings
    dev = os.stat(root.path).st_dev
    with _passed_lock:
        if dev in _passed:
            return None
    report = diagnose(root, settings)
    for c in report.checks:
        if c.verdict == "warn":
            log.warning("doctor: %s: %s", c.name, c.detail)
    bad = report.failed
    if bad:
        first = bad[0]
        if not settings.allow_unsafe_fs:
            raise Refused(
                f"{root.path}: unsafe for workers: {first.name}: {first.detail} "
                "(`farro doctor` lists every check; allow_unsafe_fs = true overrides)"
            )
        for c in bad:
            log.warning("doctor: %s: %s (allowed by allow_unsafe_fs)", c.name, c.detail)
        return report
    if not report.incomplete:
        with _passed_lock:
            _passed.add(dev)
    return report
