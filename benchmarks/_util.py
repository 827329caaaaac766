"""Shared helpers for the benchmarks: timing statistics, result rows, scratch space."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

BIN = Path(sys.executable).parent

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Row:
    """One line of the report: what was measured, the goal, the figure, pass or not."""

    name: str
    goal: str
    measured: str
    ok: bool | None  # None: informational, no goal
    note: str = ""


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), nearest rank on the sorted values."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def timed(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> tuple[T, float]:
    """What ``fn(*args, **kwargs)`` returned and how long the call took, in seconds."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def scratch_base() -> Path:
    """Where the benchmarks make their roots: $FARRO_BENCH_DIR, else /var/tmp (not tmpfs)."""
    return Path(os.environ.get("FARRO_BENCH_DIR") or "/var/tmp")


@contextmanager
def scratch(name: str) -> Iterator[Path]:
    """A fresh directory on the real disk (not tmpfs) under :func:`scratch_base`."""
    base = scratch_base()
    base.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f"farro-bench-{name}-", dir=base))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fs_type(path: Path) -> str:
    """The file system type holding ``path`` (from /proc/self/mounts, longest prefix)."""
    best, kind = "", "?"
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                parts = line.split()
                mnt, typ = parts[1], parts[2]
                if str(path).startswith(mnt) and len(mnt) > len(best):
                    best, kind = mnt, typ
    except OSError:
        pass
    return kind


def farro_cli() -> list[str] | None:
    """The ``farro`` console script, or None while the CLI does not exist yet."""
    exe = BIN / "farro"
    if not exe.exists():
        return None
    probe = subprocess.run([str(exe), "--help"], capture_output=True, timeout=60)
    return [str(exe)] if probe.returncode == 0 else None


def print_table(rows: list[Row], title: str = "") -> None:
    if title:
        print(f"\n{title}")
    heads = ("benchmark", "goal", "measured", "pass")
    cells = [
        (r.name, r.goal, r.measured, {True: "PASS", False: "FAIL", None: "-"}[r.ok]) for r in rows
    ]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(heads)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r, c in zip(rows, cells, strict=True):
        print("  ".join(x.ljust(w) for x, w in zip(c, widths, strict=True)))
        if r.note:
            print(f"    note: {r.note}")
    sys.stdout.flush()


def report(rows: list[Row], title: str) -> int:
    """Print the table; the exit status: 1 when a goal is missed, else 0."""
    print_table(rows, title)
    return 0 if all(r.ok is not False for r in rows) else 1


@dataclass
class SyncCount:
    """fsync and syncfs calls made while :func:`counting_syncs` was active."""

    fsyncs: int = 0
    syncfs: int = 0


@contextmanager
def counting_syncs() -> Iterator[SyncCount]:
    """Count this process's ``os.fsync`` and ``fs.syncfs`` calls; every call still happens."""
    from farro_core import fs

    real_fsync, real_syncfs = os.fsync, fs.syncfs
    count = SyncCount()

    def fsync(fd: int) -> None:
        count.fsyncs += 1
        real_fsync(fd)

    def syncfs(fd: int) -> bool:
        done = real_syncfs(fd)
        count.syncfs += done
        return done

    os.fsync, fs.syncfs = fsync, syncfs  # type: ignore[assignment]
    try:
        yield count
    finally:
        os.fsync, fs.syncfs = real_fsync, real_syncfs
