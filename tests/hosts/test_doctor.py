"""``farro doctor`` on real file systems (a tmpfs and a loop-mounted ext4, mounted
here as root), and its refusal of a file system whose locks exclude nobody."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_until

from farro_core import doctor
from farro_core.doctor import Mount, find_mount, judge_mount
from farro_core.root import Root

from .harness import HERE

FARRO = [sys.executable, "-m", "farro_core.cli"]
FARRO_TUI = [sys.executable, "-m", "farro_tui.main"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    env.update(extra)
    return env


def _farro(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FARRO, *args], capture_output=True, text=True, env=_env(**env), check=False, timeout=120
    )


def _need_mounts() -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail("doctor's file system tests need root and mount(8)")
        pytest.skip("doctor's file system tests need root (they mount a tmpfs and an ext4)")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    _need_mounts()
    point = tmp_path / "tmpfs"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Path]:
    _need_mounts()
    if shutil.which("mkfs.ext4") is None:
        pytest.fail("doctor's ext4 test needs mkfs.ext4 (e2fsprogs)")
    image, point = tmp_path / "ext4.img", tmp_path / "ext4"
    point.mkdir()
    with open(image, "wb") as fh:
        fh.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize("kind", ["tmpfs", "ext4"])
def test_doctor_passes_a_real_file_system_and_names_it(
    kind: str, request: pytest.FixtureRequest
) -> None:
    point: Path = request.getfixturevalue(kind)
    root = point / "root"
    init = _farro("init", "--root", str(root))
    assert init.returncode == 0, init.stderr
    assert "doctor:" not in init.stderr  # all passed: init says nothing more
    out = _farro("doctor", "--root", str(root))
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["pass", "file", "system", kind]
    names = {line[6:25].strip() for line in lines}
    assert names >= {"flock", "flock (procs)", "posix locks (procs)", "rename", "st_dev"}
    assert names >= {"directory fsync", "clock skew", "locks (hosts)"}
    assert all(line.startswith("pass") for line in lines), out.stdout
    report = json.loads(_farro("doctor", "--json", "--root", str(root)).stdout)
    assert (report["fstype"], report["mount"], report["ok"]) == (kind, str(point), True)
    assert not (root / "run" / "doctor").exists() or not os.listdir(root / "run" / "doctor")


def test_a_file_system_without_locks_is_refused(tmp_path: Path) -> None:
    """Fault injection: flock and POSIX locks that always succeed (NFS nolock, sshfs)."""
    root = Root.init(tmp_path / "root")
    fault = {"PYTHONPATH": str(HERE / "faults"), "FARRO_TEST_FAULT": "nolocks"}
    out = _farro("doctor", "--root", str(root.path), **fault)
    assert out.returncode == 1, out.stdout + out.stderr
    failed = [line for line in out.stdout.splitlines() if line.startswith("fail")]
    assert [line[6:25].strip() for line in failed] == [
        "flock",
        "flock (procs)",
        "posix locks (procs)",
    ], out.stdout

    init = _farro("init", "--root", str(root.path), **fault)
    assert init.returncode == 0
    assert "farro: doctor: fail: flock: a second open file took a held flock" in init.stderr
    assert "workers will refuse to run on this root" in init.stderr

    run = subprocess.run(
        [*FARRO_TUI, "--workers-only", "--root", str(root.path)],
        capture_output=True,
        text=True,
        env=_env(**fault),
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("farro-tui: ") and "unsafe for workers: flock" in last, run.stderr
    assert "allow_unsafe_fs" in last
    assert os.listdir(root.workers_dir) == [], "a worker started on a file system without locks"
    assert not (root.run / "manager.json").exists(), "a manager started without locks"

    # the explicit override runs them anyway, and says so
    allowed = subprocess.Popen(
        [*FARRO_TUI, "--workers-only", "--workers", "1", "--root", str(root.path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(FARRO_ALLOW_UNSAFE_FS="true", **fault),
    )
    try:
        wait_until(lambda: os.listdir(root.workers_dir), "the allowed worker to start", 60)
    finally:
        allowed.terminate()
        text = allowed.communicate(timeout=60)[0].decode()
    assert "allowed by allow_unsafe_fs" in text


def test_a_live_manager_whose_lock_looks_free_means_locks_do_not_cross_hosts(
    tmp_path: Path,
) -> None:
    """What another host's manager looks like through a file system without shared
    locks: it touches run/manager.json every sweep, yet its lock is free from here."""
    root = Root.init(tmp_path / "root")
    (root.run / "manager.json").write_text(
        json.dumps({"host": "elsewhere", "pid": 7, "since": "2026-01-01T00:00:00+00:00"})
    )
    stop = threading.Event()

    def sweeping() -> None:
        while not stop.wait(0.1):
            os.utime(root.run / "manager.json")

    t = threading.Thread(target=sweeping)
    t.start()
    try:
        check = doctor.check_foreign_manager(root, root.settings)
    finally:
        stop.set()
        t.join()
    assert check.verdict == "fail" and "locks do not cross hosts" in check.detail
    # once it stops sweeping, it is just a manager that died: no wait, no failure
    old = os.stat(root.run / "manager.json").st_mtime - 60
    os.utime(root.run / "manager.json", (old, old))
    gone = doctor.check_foreign_manager(root, root.settings)
    assert gone.verdict == "pass" and "is gone" in gone.detail


@pytest.mark.parametrize(
    ("fstype", "options", "verdict"),
    [
        ("nfs4", "rw,vers=4.2,local_lock=none", "pass"),
        ("nfs4", "rw,vers=4.2,local_lock=flock", "fail"),
        ("nfs", "rw,vers=3,nolock", "fail"),
        ("nfs", "rw,vers=3", "warn"),
        ("nfs4", "rw,vers=4.1,nocto", "warn"),
        ("ceph", "rw,name=farro", "pass"),
        ("lustre", "rw,flock", "pass"),
        ("lustre", "rw,localflock", "fail"),
        ("fuse.sshfs", "rw,user_id=0", "fail"),
        ("cifs", "rw,nobrl", "fail"),
        ("cifs", "rw", "warn"),
        ("ext4", "rw,relatime", "pass"),
        ("9p", "rw", "warn"),
    ],
)
def test_mount_types_and_options_are_judged_as_docs_scaling_says(
    fstype: str, options: str, verdict: str
) -> None:
    m = Mount("/srv/farro", fstype, frozenset(options.split(",")))
    assert judge_mount(m).verdict == verdict


def test_find_mount_takes_the_longest_mount_point_and_unescapes_it(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "40 22 0:50 / /srv/my\\040share rw shared:2 - nfs4 srv:/x rw,vers=4.2,local_lock=none\n"
    )
    m = find_mount(Path("/srv/my share/root"), str(info))
    assert m is not None and (m.point, m.fstype) == ("/srv/my share", "nfs4")
    assert m.option("vers") == "4.2"
    other = find_mount(Path("/srv/other"), str(info))
    assert other is not None and other.fstype == "ext4"
