"""The root: layout and modes from init, refusal of missing, incomplete or unsafe roots,
path resolution, locating a job, listing ids."""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from farro_core import job
from farro_core.envelope import JobSpec
from farro_core.errors import BadInput, NotFound, RootError
from farro_core.root import DIRS, Root, resolve_path
from farro_core.transitions import Status


def test_init_creates_every_dir_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        r = Root.init(tmp_path / "a" / "b")
    finally:
        os.umask(old)
    assert r.path == tmp_path / "a" / "b"
    assert stat.S_IMODE(os.stat(r.path).st_mode) == 0o700
    for d in DIRS:
        p = r.path / d
        assert p.is_dir() and not p.is_symlink(), d
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o700, d
    for d in ("tmp", "incoming", "active", "done", "quarantine", "inbox/accepted", "run/workers"):
        assert d in DIRS


def test_init_is_idempotent_and_keeps_contents(root: Root) -> None:
    env = job.create(root, JobSpec(prompt="x"))
    again = Root.init(root.path)
    assert again.ids("incoming") == [env.id]


def test_open_missing_root_names_it(tmp_path: Path) -> None:
    with pytest.raises(RootError, match=r"no FARRO root at .*farro init") as info:
        Root.open(tmp_path / "nope")
    assert info.value.exit_code == 2


def test_open_uninitialised_dir_names_the_missing_part(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir(mode=0o700)
    with pytest.raises(RootError, match=r"not an initialised FARRO root \(missing tmp/\)"):
        Root.open(tmp_path / "r")


def test_open_a_file_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(RootError, match="not a directory"):
        Root.open(tmp_path / "f")


@pytest.mark.parametrize("sub", ["", "incoming", "active", "done", "tmp", "inbox", "run"])
def test_open_refuses_group_or_other_writable(root: Root, sub: str) -> None:
    os.chmod(root.path / sub, 0o777)
    with pytest.raises(RootError, match="writable by group or others"):
        Root.open(root.path)


def test_open_refuses_a_queue_dir_that_is_a_symlink(root: Root, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    os.rmdir(root.active)
    os.symlink(elsewhere, root.active)
    with pytest.raises(RootError, match="symlink"):
        Root.open(root.path)


def test_open_refuses_queue_dirs_on_two_file_systems(root: Root) -> None:
    """done/ on its own tmpfs, mounted in a private mount namespace of a subprocess."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to mount a second file system privately")
    probe = subprocess.run([unshare, "-m", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m not permitted here: {probe.stderr.decode().strip()}")
    script = (
        f"mount -t tmpfs -o mode=0700 farro-test {shlex.quote(str(root.done))} && "
        f"{shlex.quote(sys.executable)} -c "
        + shlex.quote(
            "import sys\n"
            "from farro_core.root import Root\n"
            "from farro_core.errors import RootError\n"
            "try:\n"
            f"    Root.open({str(root.path)!r})\n"
            "except RootError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
    )
    res = subprocess.run([unshare, "-m", "sh", "-c", script], capture_output=True, timeout=60)
    assert res.returncode == 3, res
    assert b"span file systems" in res.stdout
    Root.open(root.path)  # outside that namespace the root is whole again


def test_resolve_path_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FARRO_ROOT", str(tmp_path / "env"))
    assert resolve_path(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_path() == tmp_path / "env"
    monkeypatch.delenv("FARRO_ROOT")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_path() == tmp_path / "home" / ".farro"
    monkeypatch.chdir(tmp_path)
    assert resolve_path("rel") == tmp_path / "rel"  # made absolute


def test_locate_follows_the_job_through_queues(root: Root) -> None:
    env = job.create(root, JobSpec(prompt="x"))
    assert root.locate(env.id) == root.incoming / env.id
    os.rename(root.incoming / env.id, root.done / env.id)
    assert root.locate(env.id) == root.done / env.id


def test_locate_unknown_and_bad_ids(root: Root) -> None:
    with pytest.raises(NotFound, match="no job abcdefgh12"):
        root.locate("abcdefgh12")
    with pytest.raises(BadInput):
        root.locate("../incoming")


def test_ids_skip_non_ids_and_dotfiles(root: Root) -> None:
    envs = [job.create(root, JobSpec(prompt=str(i))) for i in range(3)]
    (root.incoming / ".hidden").mkdir()
    (root.incoming / "not an id").mkdir()
    (root.incoming / "abcdefgh\n").mkdir()
    assert sorted(root.ids("incoming")) == sorted(e.id for e in envs)
    assert root.count("incoming") == 5  # the non-ids count against max_queued too
    assert root.ids("done") == []


def test_queue_dir(root: Root) -> None:
    assert root.queue_dir(Status.QUEUED) == root.incoming
    assert root.queue_dir(Status.STALE) == root.active
    assert root.queue_dir(Status.KILLED) == root.done


def test_settings_come_from_flags(root: Root) -> None:
    r = Root.open(root.path, workers=7)
    assert r.settings.workers == 7
    assert Root.open(root.path).settings.workers == 2


def test_init_refuses_a_root_inside_another(root: Root) -> None:
    # `farro init --root ~/q/incoming` made its dirs jobs of ~/q: 8 corrupt entries
    for inner in (root.path / "incoming", root.path / "done" / "new" / "deeper"):
        with pytest.raises(RootError, match=f"inside the FARRO root {root.path}"):
            Root.init(inner)
    assert os.listdir(root.path / "incoming") == [] and os.listdir(root.path / "done") == []
    Root.init(root.path)  # the root itself: checked and kept


def test_init_refuses_a_directory_that_holds_other_things(tmp_path: Path) -> None:
    # `farro init --root ~/src/myrepo` (meant: --example) spread 8 dirs over the repo
    repo = tmp_path / "myrepo"
    (repo / "src").mkdir(parents=True)
    (repo / "README.md").write_text("hi\n")
    with pytest.raises(RootError, match=r"myrepo holds README.md and 1 more, so it is no"):
        Root.init(repo)
    assert sorted(os.listdir(repo)) == ["README.md", "src"]
    ready = tmp_path / "ready"  # its farro.toml written first: that is a root's own file
    ready.mkdir()
    (ready / "farro.toml").write_text("workers = 3\n")
    (ready / "lost+found").mkdir()  # a file system of its own: nothing of the operator's
    assert Root.init(ready).settings.workers == 3
    (ready / "notes.txt").write_text("mine\n")
    Root.init(ready)  # a root already: checked and kept, whatever else it holds


def test_init_refuses_an_existing_loose_directory(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    with pytest.raises(RootError, match="writable by group or others"):
        Root.init(loose)
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o777  # not silently "fixed" either


def test_init_on_a_symlink_to_a_root_resolves_it_and_a_file_is_refused(tmp_path: Path) -> None:
    real = Root.init(tmp_path / "real")
    (tmp_path / "link").symlink_to(real.path)
    again = Root.init(tmp_path / "link")
    assert again.path == real.path and again.via == tmp_path / "link"
    (tmp_path / "file").write_text("x")
    with pytest.raises(RootError, match=r"file exists and is not a directory"):
        Root.init(tmp_path / "file")
