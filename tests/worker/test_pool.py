"""Pooled worktrees: one per worker and repository, reused, and nothing leaks between jobs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import wait_until

from farro_core import operations, pool, procs, workspace
from farro_core.envelope import Envelope
from farro_core.fsck import fsck
from farro_core.root import Root

from .helpers import (
    git,
    log_text,
    make_repo,
    make_worker,
    pid_alive,
    pooled_worktrees,
    sh,
    submit,
)

#: the first job writes everywhere a later job could see it
WRITE_EVERYWHERE = (
    "echo sneaky >> README.md; echo sneaky >> src/a.py; rm docs/guide.md; "
    "echo untracked > new.txt; mkdir -p deep/er && echo x > deep/er/f; "
    "echo ignored > trace.log; mkdir -p cache && echo x > cache/data.log; "
    "mkdir nested && git -C nested init -q && echo n > nested/f; "
    "mkdir locked && echo x > locked/f && chmod 500 locked; "
    "ln -s /etc/passwd link; chmod 000 src/a.py; echo junk > docs/.git; "
    "mkdir -p n2/.git && echo x > n2/.git/HEAD && echo y > n2/f; chmod 000 docs"
)
#: the next job fails unless the worktree is exactly the base commit
CHECK_PRISTINE = (
    'test "$(cat README.md)" = readme && test "$(cat src/a.py)" = "A = 1" && '
    'test "$(cat docs/guide.md)" = guide && '
    "test ! -e new.txt && test ! -e deep && test ! -e trace.log && test ! -e cache && "
    "test ! -e nested && test ! -e locked && test ! -L link && "
    "test ! -e docs/.git && test ! -e n2 && "
    "echo ok >> src/ok.py"
)
#: and git sees a clean worktree (the agent's own git: not for planted-config tests)
CHECK_CLEAN_GIT = 'test -z "$(git status --porcelain --ignored)" && ' + CHECK_PRISTINE


def _run(root: Root, agent: str, repo: Path, worker_name: str = "w1", **kw: object) -> Envelope:
    submit(root, "x", agent=sh(agent), workspace=str(repo), allowed_paths=["**"], **kw)
    w = make_worker(root, worker_name)
    out = w.run_once()
    assert out is not None
    return out


def test_nothing_a_job_wrote_is_seen_by_the_next(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot)
    submit(wroot, "a", agent=sh(WRITE_EVERYWHERE), workspace=str(repo), allowed_paths=["**"])
    first = w.run_once()
    assert first is not None and first.status == "succeeded", first.lifecycle.reason
    for _ in range(2):
        submit(wroot, "b", agent=sh(CHECK_CLEAN_GIT), workspace=str(repo), allowed_paths=["**"])
        out = w.run_once()
        assert out is not None and out.status == "succeeded", out.lifecycle.reason
        assert git(repo, "show", f"farro/{out.id}:src/ok.py") == "ok"
    assert len(pooled_worktrees(wroot)) == 1  # one worker, one repo: one worktree, reused
    # the first job's work is still on its branch, and the branch is free to check out
    assert git(repo, "show", f"farro/{first.id}:new.txt") == "untracked"
    assert git(repo, "branch", "--list", f"farro/{first.id}") != ""
    git(repo, "branch", "-D", f"farro/{first.id}")
    assert git(repo, "status", "--porcelain") == ""  # the operator's checkout untouched


def test_a_worker_killed_mid_job_leaves_a_worktree_the_next_one_cleans(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    env = submit(wroot, "x", workspace=str(repo))
    script = (
        "import os, sys\n"
        "from farro_core import pool, workspace\n"
        "from farro_core.job import load\n"
        "from farro_core.root import Root\n"
        "root = Root.open(sys.argv[1])\n"
        "env = load(root, sys.argv[2])\n"
        "ws = workspace.prepare(root, env, slots=pool.Pool(root))\n"
        "(ws.path / 'README.md').write_text('dead\\n')\n"
        "(ws.path / 'junk.log').write_text('junk\\n')\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(wroot.path), env.id], check=False)
    assert proc.returncode == -signal.SIGKILL
    (dead,) = pooled_worktrees(wroot)
    assert (dead / "junk.log").exists()
    out = _run(wroot, CHECK_PRISTINE + " && test ! -e junk.log", repo)
    assert out.status == "succeeded", out.lifecycle.reason
    assert pooled_worktrees(wroot) == [dead]  # taken over, not a second one


def _orphan_in_slot(root: Root, job_id: str) -> int:
    """A worker process that starts the job's agent in its slot, then dies with -9:
    the agent's pid (it goes on writing late.txt in the slot)."""
    script = (
        "import os, subprocess, sys\n"
        "from farro_core import pool, procs, runner, workspace\n"
        "from farro_core.job import load\n"
        "from farro_core.root import Root\n"
        "root = Root.open(sys.argv[1])\n"
        "env = load(root, sys.argv[2])\n"
        "ws = workspace.prepare(root, env, slots=pool.Pool(root))\n"
        "unit = procs.Unit('agent')\n"
        "loop = 'while :; do echo late > late.txt; sleep 0.05; done'\n"
        "p = unit.popen(['/bin/sh', '-c', loop], runner.agent_env(env, ws.path, 'w0'),\n"
        "               cwd=ws.path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(root.path), job_id],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return int(proc.stdout.split()[0])


@pytest.mark.parametrize("sibling_reaping", [False, True])
def test_a_live_worker_taking_a_dead_workers_slot_ends_its_agent_first(
    wroot: Root, tmp_path: Path, sibling_reaping: bool
) -> None:
    """A worker started before the other died reaped nothing at its start: the dead
    one's agent, still writing in the slot, must not write into the next job's tree.
    Nor may it be left to a sibling worker of the process that is reaping right then
    (the workers of a process that just started all reap at once; one does it)."""
    repo = make_repo(tmp_path / "repo")
    env = submit(wroot, "x", workspace=str(repo))
    orphan = _orphan_in_slot(wroot, env.id)
    try:
        operations.kill(wroot, env.id)  # queued still: the next worker runs the check job
        (dead,) = pooled_worktrees(wroot)
        wait_until(lambda: (dead / "late.txt").exists(), "the dead worker's agent writing")
        check = CHECK_PRISTINE + " && sleep 0.3 && test ! -e late.txt"
        with procs._orphan_lock if sibling_reaping else contextlib.nullcontext():
            out = _run(wroot, check, repo)
        assert out.status == "succeeded", out.lifecycle.reason
        assert not pid_alive(orphan)
        assert not (dead / "late.txt").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan, signal.SIGKILL)


#: its tokens name a namespace no other suite's worker judges, so none reaps its units
_OWN_PID_NAMESPACE = ["unshare", "--pid", "--fork", "--mount-proc"]


def _unkillable(wroot: Root, *args: str) -> dict[str, Any]:
    """unkillable_takeover.py's scenario on ``wroot``, in a pid namespace of its own."""
    scenario = Path(__file__).with_name("unkillable_takeover.py")
    run = subprocess.run(
        [*_OWN_PID_NAMESPACE, sys.executable, str(scenario), "main", str(wroot.path), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout)
    return out


@pytest.mark.parametrize("in_slot", [True, False])
def test_a_slot_whose_dead_workers_agent_survives_its_kill_is_not_reset(
    wroot: Root, tmp_path: Path, in_slot: bool
) -> None:
    """Found is not dead: a slot whose agent outlives its SIGKILL (here the kernel
    refuses it: see unkillable_takeover.py) is skipped and another slot made, never
    reset and handed on while the agent may write in it; an agent that survives
    elsewhere does not cost this slot."""
    repo = make_repo(tmp_path / "repo")
    first = submit(wroot, "x", workspace=str(repo))
    nxt = submit(wroot, "y", workspace=str(repo))
    out = _unkillable(wroot, first.id, nxt.id, "" if in_slot else str(tmp_path))
    assert out["alive"], out  # it did survive the kill
    dead_slot = Path(out["slot"])
    if in_slot:
        assert out["got"] != str(dead_slot)
        assert (dead_slot / "junk.log").exists()  # not reset under the agent
        assert f"processes {out['agent']} of a dead worker still run" in out["stderr"]
        assert len(pooled_worktrees(wroot)) == 2
    else:
        assert out["got"] == str(dead_slot)
        assert not (dead_slot / "junk.log").exists()
        assert pooled_worktrees(wroot) == [dead_slot]


def test_fsck_repair_names_a_dead_workers_agent_that_outlives_its_kill(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    first = submit(wroot, "x", workspace=str(repo))
    out = _unkillable(wroot, first.id, "-", "", "repair")
    assert out["alive"], out
    (finding,) = [json.loads(line) for line in out["got"].splitlines()]
    assert finding == {"action": f"killed, but {out['agent']} still run", "repaired": False}


def test_fsck_repair_ends_a_dead_workers_agent_in_its_worktree(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = submit(wroot, "x", workspace=str(repo))
    orphan = _orphan_in_slot(wroot, env.id)
    try:
        (slot,) = pooled_worktrees(wroot)
        wait_until(lambda: (slot / "late.txt").exists(), "the dead worker's agent writing")
        found = [f for f in fsck(wroot) if f.kind == "orphan"]
        # any FARRO process on the host may end it first; alive now, it was seen
        assert found or not pid_alive(orphan)
        assert all(not f.repaired and env.id in f.detail for f in found), found
        assert all(f.path == os.path.relpath(slot, wroot.path) for f in found), found
        fixed = [f for f in fsck(wroot, repair=True) if f.kind == "orphan"]
        assert all(f.repaired for f in fixed)
        assert not pid_alive(orphan)
        assert [f for f in fsck(wroot) if f.kind == "orphan"] == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(orphan, signal.SIGKILL)


def test_what_a_job_left_in_its_worktrees_git_dir_is_not_seen_by_the_next(
    wroot: Root, tmp_path: Path
) -> None:
    """The worktree's own git dir is the slot's too: a lock an agent's git left (killed
    mid-commit), a rebase, merge or bisect under way must not greet the next agent."""
    repo = make_repo(tmp_path / "repo")
    plant = (
        'G=$(git rev-parse --git-dir); touch "$G/index.lock"; '
        'git rev-parse HEAD > "$G/MERGE_HEAD"; mkdir -p "$G/rebase-merge"; '
        'echo main > "$G/rebase-merge/head-name"; echo x > "$G/BISECT_START"; '
        'printf "[core]\\n\\thooksPath = /nowhere\\n" > "$G/config.worktree"'
    )
    w = make_worker(wroot)
    submit(wroot, "a", agent=sh(plant), workspace=str(repo))
    first = w.run_once()
    assert first is not None and first.status == "succeeded", first.lifecycle.reason
    check = (
        "G=$(git rev-parse --git-dir); for f in index.lock MERGE_HEAD rebase-merge "
        'BISECT_START config.worktree; do test ! -e "$G/$f" || exit 1; done; '
        "! git status | grep -i -E 'rebas|merg|bisect' && git add -A && " + CHECK_CLEAN_GIT
    )
    submit(wroot, "b", agent=sh(check), workspace=str(repo), allowed_paths=["**"])
    out = w.run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert len(pooled_worktrees(wroot)) == 1


def test_a_lock_left_on_the_slots_index_costs_one_new_worktree_not_one_per_job(
    wroot: Root, tmp_path: Path
) -> None:
    """A FARRO git killed mid-reset (a timeout, a power cut) leaves slot-N.index.lock."""
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot)
    notes = []
    for i in range(3):
        if i == 1:
            (pooled_worktrees(wroot)[0].parent / "slot-1.index.lock").touch()
        submit(wroot, "x", agent=sh("echo x >> README.md"), workspace=str(repo))
        out = w.run_once()
        assert out is not None and out.status == "succeeded", out.lifecycle.reason
        notes.append(next(ln for ln in log_text(out).splitlines() if "worktree " in ln))
    assert "could not be reset" in notes[1], notes
    assert "reused: reset to base" in notes[2], notes


def test_two_workers_never_share_and_slots_stay_bounded(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    common = Path(git(repo, "rev-parse", "--absolute-git-dir"))
    a, b = pool.Pool(wroot), pool.Pool(wroot)
    sa, sb = a.slot(common), b.slot(common)
    assert sa.path != sb.path and a.slot(common) is sa
    a.close()
    c = pool.Pool(wroot)
    assert c.slot(common).path == sa.path  # a free slot is taken before a new one is made
    b.close()
    c.close()
    w = make_worker(wroot)
    for _ in range(4):
        submit(wroot, "x", agent=sh("echo x >> README.md"), workspace=str(repo))
        out = w.run_once()
        assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert len(pooled_worktrees(wroot)) == 1


def test_keep_ignored_keeps_only_what_the_base_ignores(wroot: Root, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")  # .gitignore: *.log
    w = make_worker(wroot, workspace_reuse="keep-ignored")
    write = (
        "echo warm > cache.log; echo x > new.txt; echo sneaky >> README.md; echo '' > .gitignore"
    )
    submit(wroot, "a", agent=sh(write), workspace=str(repo), allowed_paths=["**"])
    out = w.run_once()
    assert out is not None and out.status == "succeeded"
    check = (
        'test "$(cat cache.log)" = warm && test ! -e new.txt && test "$(cat README.md)" = readme'
    )
    submit(wroot, "b", agent=sh(check), workspace=str(repo), allowed_paths=["**"])
    out = w.run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason


def test_planted_git_config_runs_nothing_in_later_jobs(wroot: Root, tmp_path: Path) -> None:
    """Hooks, fsmonitor and filters an agent plants in its worktree's or the repo's config."""
    repo = make_repo(tmp_path / "repo")
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.sh"
    evil.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\ncat\n')
    evil.chmod(0o755)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for hook in ("post-checkout", "pre-commit", "post-commit", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        (hooks / hook).chmod(0o755)
    plant = (
        "git config extensions.worktreeConfig true; "
        f"git config --worktree core.hooksPath {hooks}; "
        f"git config --worktree core.fsmonitor {evil}; "
        f"git config core.fsmonitor {evil}; "
        f"git config filter.evil.clean {evil}; git config filter.evil.smudge {evil}; "
        "git config core.checkStat minimal; git config core.trustctime false; "
        "echo '* filter=evil' > .gitattributes"
    )
    first = _run(wroot, plant, repo)
    assert first.status == "succeeded", first.lifecycle.reason
    w = make_worker(wroot)
    for _ in range(2):
        submit(wroot, "b", agent=sh(CHECK_PRISTINE), workspace=str(repo), allowed_paths=["**"])
        out = w.run_once()
        assert out is not None and out.status == "succeeded", out.lifecycle.reason
    # the later agents run no git, so anything that ran was run by FARRO's own git
    assert not marker.exists(), marker.read_text()


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(wroot: Root, tmp_path: Path) -> None:
    """The judging's stat shortcut: a same-size edit with the mtime set back is judged."""
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot)
    submit(wroot, "warm", agent=sh("true"), workspace=str(repo), allowed_paths=["src/**"])
    out = w.run_once()
    assert out is not None and out.status == "succeeded"
    sneaky = (
        "touch -r README.md ../.ref-$$; echo README > README.md; "
        "touch -r ../.ref-$$ README.md; rm ../.ref-$$"
    )
    submit(wroot, "edit", agent=sh(sneaky), workspace=str(repo), allowed_paths=["src/**"])
    out = w.run_once()
    assert out is not None and out.status == "failed"
    assert out.lifecycle.result is not None and out.lifecycle.result.violations == ["README.md"]


def test_a_reused_worktree_has_its_link_restored(wroot: Root, tmp_path: Path) -> None:
    """An agent that points its worktree's .git elsewhere changes nothing for the next job."""
    repo = make_repo(tmp_path / "repo")
    other = make_repo(tmp_path / "other")
    w = make_worker(wroot)
    gitdir = Path(git(other, "rev-parse", "--absolute-git-dir"))
    submit(wroot, "a", agent=sh(f"echo 'gitdir: {gitdir}' > .git"), workspace=str(repo))
    first = w.run_once()
    assert first is not None
    submit(wroot, "b", agent=sh(CHECK_PRISTINE), workspace=str(repo), allowed_paths=["**"])
    out = w.run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert git(other, "status", "--porcelain") == ""
    slot = next(iter(w.pool.slots.values()))
    assert os.path.realpath(
        workspace.git(slot.path, "rev-parse", "--git-common-dir").stdout.strip()
    ) == os.path.realpath(repo / ".git")


def test_a_file_named_git_below_the_top_is_judged(wroot: Root, tmp_path: Path) -> None:
    """Git lists no ``.git`` entry below the top, nor what a directory holding one holds."""
    repo = make_repo(tmp_path / "repo")
    w = make_worker(wroot)
    for agent, expected in (
        ("true", []),
        ("echo junk > docs/.git", ["docs/.git"]),
        ("mkdir -p n/.git && echo x > n/.git/HEAD && echo y > n/f", ["n/.git/HEAD", "n/f"]),
    ):
        submit(wroot, "x", agent=sh(agent), workspace=str(repo), allowed_paths=["src/**"])
        out = w.run_once()
        assert out is not None and out.lifecycle.result is not None
        assert out.lifecycle.result.violations == expected, agent


def test_workers_making_worktrees_of_one_repo_at_once_do_not_race(
    wroot: Root, tmp_path: Path
) -> None:
    """git itself races on concurrent `worktree add` of one repo: the repo lock serialises."""
    import threading

    repo = make_repo(tmp_path / "repo")
    envs = [submit(wroot, f"j{i}", workspace=str(repo)) for i in range(4)]
    pools = [pool.Pool(wroot) for _ in envs]
    errors: list[BaseException] = []
    paths: list[Path] = []

    def one(env: Envelope, slots: pool.Pool) -> None:
        try:
            paths.append(workspace.prepare(wroot, env, slots=slots).path)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(e, p)) for e, p in zip(envs, pools, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(paths)) == 4
    for p in paths:
        assert (p / "README.md").read_text() == "readme\n"
    for slots in pools:
        slots.close()


def test_a_tampered_slot_record_never_adopts_the_operators_worktree(
    wroot: Root, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    mine = tmp_path / "feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(mine))
    admin = Path(git(mine, "rev-parse", "--absolute-git-dir"))
    link = (admin / "gitdir").read_text()
    head = git(mine, "rev-parse", "HEAD")
    (mine / "wip.txt").write_text("the operator's work in progress\n")
    w = make_worker(wroot)
    tamper = f'sed -i \'s#"git_dir": "[^"]*"#"git_dir": "{admin}"#\' ../slot-1.json'
    submit(wroot, "a", agent=sh(tamper), workspace=str(repo))
    first = w.run_once()
    assert first is not None and first.status == "succeeded", first.lifecycle.reason
    assert str(admin) in (pooled_worktrees(wroot)[0].parent / "slot-1.json").read_text()
    submit(wroot, "b", agent=sh(CHECK_PRISTINE), workspace=str(repo), allowed_paths=["**"])
    out = w.run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    assert (admin / "gitdir").read_text() == link
    assert git(mine, "rev-parse", "HEAD") == head
    assert git(mine, "branch", "--show-current") == "feature"
    assert (mine / "wip.txt").read_text() == "the operator's work in progress\n"


def _collide(index: Path, rel: str, st: os.stat_result) -> None:
    """Give ``rel``'s entry in a version 2/3 index the stat data ``st``: as if git had
    checked the file out within the very timestamp tick of the agent's later edit."""
    import hashlib
    import struct

    data = bytearray(index.read_bytes())
    assert data[:4] == b"DIRC"
    version, count = struct.unpack(">II", data[4:12])
    assert version in (2, 3), version
    off = 12
    for _ in range(count):
        flags = struct.unpack(">H", data[off + 60 : off + 62])[0]
        start = off + 62 + (2 if version == 3 and flags & 0x4000 else 0)
        end = data.index(b"\0", start)
        if data[start:end] == rel.encode():
            fields = (st.st_ctime_ns, st.st_mtime_ns)
            times = [v for ns in fields for v in (ns // 10**9, ns % 10**9)]
            rest = [st.st_dev, st.st_ino]
            data[off : off + 24] = struct.pack(">6I", *times, *(v & 0xFFFFFFFF for v in rest))
            data[off + 28 : off + 40] = struct.pack(">3I", st.st_uid, st.st_gid, st.st_size)
            break
        off = (end - off + 8) // 8 * 8 + off  # 1 to 8 NULs pad each entry
    else:
        raise AssertionError(f"{rel} is not in {index}")
    body = bytes(data[:-20])
    index.write_bytes(body + hashlib.sha1(body).digest())


def test_a_same_size_edit_within_the_checkouts_tick_is_judged_and_committed(
    wroot: Root, tmp_path: Path
) -> None:
    """Racy git: the edit's stat data equal what FARRO's checkout recorded (one mtime
    tick, same size), so only content tells it apart; the work commit must hold it."""
    repo = make_repo(tmp_path / "repo")
    slots = pool.Pool(wroot)
    env = submit(wroot, "x", workspace=str(repo))
    ws = workspace.prepare(wroot, env, slots=slots)
    assert ws.slot is not None
    a = ws.path / "src" / "a.py"
    tick = os.lstat(a).st_mtime_ns - 5 * 10**9  # a past tick: any copy is made later
    a.write_text("A = 9\n")  # the base has "A = 1\n": same size
    os.utime(a, ns=(tick, tick))
    st = os.lstat(a)
    _collide(ws.slot.index_file, "src/a.py", st)
    os.utime(ws.slot.index_file, ns=(tick, tick))  # the index written in the edit's tick
    ws.slot.trust_index()  # as FARRO's own checkout would have left it
    found = workspace.changes(ws)
    assert found.kinds == {"src/a.py": "M"}
    head = workspace.commit_work(ws, env.id, 1, found)
    assert head is not None, "a changed file recorded as no work"
    assert git(repo, "show", f"{head}:src/a.py") == "A = 9"
    # an index whose mtime moved on (git would then trust those stat data) is not trusted
    os.utime(ws.slot.index_file, ns=(tick + 10**9, tick + 10**9))
    assert not ws.slot.index_trusted()
    slots.close()


def test_an_edit_whose_ctime_falls_in_the_index_tick_is_judged_and_reset(
    wroot: Root, tmp_path: Path
) -> None:
    """Git's racy rule looks at the entry's mtime only: an edit with its mtime set back,
    whose ctime (which no one sets back) is the index's own tick, still matches the stat
    data. FARRO hashes it anyway, and the next reset writes the base's bytes again."""
    repo = make_repo(tmp_path / "repo")
    slots = pool.Pool(wroot)
    env = submit(wroot, "x", workspace=str(repo))
    ws = workspace.prepare(wroot, env, slots=slots)
    assert ws.slot is not None
    a = ws.path / "src" / "a.py"
    old = os.lstat(a).st_mtime_ns - 5 * 10**9
    a.write_text("A = 9\n")
    os.utime(a, ns=(old, old))
    st = os.lstat(a)
    _collide(ws.slot.index_file, "src/a.py", st)
    os.utime(ws.slot.index_file, ns=(st.st_ctime_ns, st.st_ctime_ns))
    ws.slot.trust_index()
    assert workspace.changes(ws).kinds == {"src/a.py": "M"}
    again = workspace.prepare(wroot, submit(wroot, "y", workspace=str(repo)), slots=slots)
    assert again.path == ws.path
    assert a.read_text() == "A = 1\n"
    assert workspace.changes(again).kinds == {}
    slots.close()


def test_index_facts_are_read_from_the_index_git_wrote(tmp_path: Path) -> None:
    """Racy entries, ignore/attribute files and submodules come from the index's bytes
    (recorded stat data, not the files as they are now); an index FARRO cannot read
    (version 4, a bad checksum) gives nothing, so the slot is not trusted."""
    repo = make_repo(tmp_path / "repo")
    (repo / "src" / ".gitattributes").write_text("*.py text\n")
    git(repo, "add", "-A")
    blob = git(repo, "rev-parse", "HEAD:README.md")
    deep = "/".join(["d" * 200] * 25)  # past an entry's 12-bit name length
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{deep}/.gitignore")
    git(
        repo, "update-index", "--add", "--cacheinfo", f"160000,{git(repo, 'rev-parse', 'HEAD')},sub"
    )
    index = repo / ".git" / "index"
    data = index.read_bytes()
    written_s = os.stat(index).st_mtime_ns // 10**9

    facts = pool.index_facts(data, written_s + 10)  # every entry recorded before it
    assert facts is not None and facts.racy == {} and facts.gitlinks
    staged = {
        line.split("\t")[1]: line.split(" ")[:2]
        for line in git(repo, "ls-files", "-s").splitlines()
    }
    assert {p: [m, o] for p, m, o in facts.named} == {
        p: staged[p] for p in (".gitignore", "src/.gitattributes", f"{deep}/.gitignore")
    }
    # what the index recorded counts, not the files now (--cacheinfo records no stat data)
    facts = pool.index_facts(data, written_s - 10)
    assert facts is not None
    assert facts.racy == {
        p: tuple(ms) for p, ms in staged.items() if p not in ("sub", f"{deep}/.gitignore")
    }

    git(repo, "rm", "-q", "--cached", "sub")
    assert not pool.index_facts(index.read_bytes(), 0).gitlinks  # type: ignore[union-attr]
    assert pool.index_facts(data[:-1] + bytes([data[-1] ^ 1]), 0) is None
    git(repo, "update-index", "--index-version", "4")
    assert pool.index_facts(index.read_bytes(), 0) is None


def _bytes(top: Path, skip: str | None = None) -> int:
    """Allocated bytes of the files below ``top`` (``skip``: a top-level name left out)."""
    total = 0
    for p in top.rglob("*"):
        if skip is not None and p.relative_to(top).parts[0] == skip:
            continue
        if p.is_file() and not p.is_symlink():
            total += p.lstat().st_blocks * 512
    return total


def test_worktrees_on_disk_stay_one_checkout_per_worker_whatever_the_jobs(
    wroot: Root, tmp_path: Path
) -> None:
    """Issue 11's bound: (workers) x (checkout) x 1.2, after any number of jobs."""
    repo = make_repo(tmp_path / "repo")
    for i in range(200):  # a checkout big enough that FARRO's own files are small beside it
        (repo / "src" / f"m{i}.py").write_text(f"M = {i}\n" * 200)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "more")
    checkout = _bytes(repo, skip=".git")
    workers = [make_worker(wroot, "w1"), make_worker(wroot, "w2")]
    junk = (
        "head -c 200000 /dev/urandom > junk.bin; head -c 200000 /dev/urandom > junk.log; "
        "echo x >> src/m1.py"
    )
    for n in range(6):
        for w in workers:
            submit(
                wroot, f"j{n} {w.name}", agent=sh(junk), workspace=str(repo), allowed_paths=["**"]
            )
            out = w.run_once()
            assert out is not None and out.status == "succeeded", out
    for w in workers:  # the last job's leftovers go at the next reset
        submit(wroot, f"tidy {w.name}", agent=sh("true"), workspace=str(repo))
        out = w.run_once()
        assert out is not None and out.status == "succeeded"
    assert len(pooled_worktrees(wroot)) == 2
    assert _bytes(wroot.path / "worktrees") <= 2 * checkout * 1.2
