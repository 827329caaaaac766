"""Judging with real tools and hostile agents: ignored writes, hidden edits, planted commands.

The agents run the real ruff and pytest of the dev venv, and real git: every way
an agent could hide an out-of-scope edit from the judging, or make FARRO's own
git run a command, is tried for real.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from farro_core import operations, workspace
from farro_core.envelope import Envelope
from farro_core.root import Root

from .helpers import PYTHON, git, make_plain, make_worker, sh, submit

PY = shlex.quote(PYTHON)
# pytest writes tests/__pycache__ too, unless the environment forbids bytecode
TOOLS = (
    f"{PY} -m ruff check . && env -u PYTHONDONTWRITEBYTECODE {PY} -m pytest -q tests "
    "&& echo 'A = 2' > src/a.py"
)
CACHES = ".ruff_cache/\n.pytest_cache/\n__pycache__/\n"


def make_package(path: Path, gitignore: str | None = CACHES) -> Path:
    """A small real package: a module, a test, and (in git) a .gitignore for tool caches."""
    path.mkdir()
    (path / "src").mkdir()
    (path / "src" / "a.py").write_text("A = 1\n")
    (path / "tests").mkdir()
    (path / "tests" / "test_a.py").write_text("def test_a() -> None:\n    assert 1 + 1 == 2\n")
    (path / "README.md").write_text("readme\n")
    if gitignore is not None:
        (path / ".gitignore").write_text(gitignore)
    return path


def make_git_package(path: Path, gitignore: str | None = CACHES) -> Path:
    make_package(path, gitignore)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def run(root: Root, agent: str, workspace: Path, allow: list[str], **kw: object) -> Envelope:
    submit(root, "edit", agent=sh(agent), workspace=str(workspace), allowed_paths=allow, **kw)
    out = make_worker(root).run_once()
    assert out is not None
    return out


# ---------------------------------------------------------------- ignored writes


def test_real_ruff_and_pytest_caches_are_ignored_and_recorded(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    out = run(wroot, TOOLS, repo, ["src/**"])
    assert out.status == "succeeded", out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.violations == [] and res.work is not None
    ign = res.work.ignored
    tops = {t.path for t in ign.top}
    assert {".ruff_cache/", ".pytest_cache/", "tests/__pycache__/"} <= tops, tops
    assert ign.files >= 4 and sum(t.files for t in ign.top) == ign.files
    assert not ign.judged and ign.rules == "the base commit's .gitignore files"
    # the judged work is exactly the one edit, and ignored writes are never committed
    assert [(c.path, c.change) for c in res.work.changed] == [("src/a.py", "M")]
    files = git(repo, "ls-tree", "-r", "--name-only", f"farro/{out.id}").split()
    assert not any("cache" in f for f in files)
    log = (out.path / "logs" / "attempt-1.log").read_text()
    assert "ignored paths (the base commit's .gitignore files), not judged: " in log


def test_the_same_caches_fail_with_judge_ignored(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    out = run(wroot, TOOLS, repo, ["src/**"], judge_ignored=True)
    assert out.status == "failed"
    res = out.lifecycle.result
    assert res is not None and res.work is not None and res.work.ignored.judged
    assert any(v.startswith(".ruff_cache/") for v in res.violations)
    assert any(v.startswith(".pytest_cache/") for v in res.violations)
    assert any(v.startswith("tests/__pycache__/") for v in res.violations)


def test_judge_ignored_from_the_settings(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    submit(wroot, "x", agent=sh(TOOLS), workspace=str(repo), allowed_paths=["src/**"])
    out = make_worker(wroot, judge_ignored=True).run_once()
    assert out is not None and out.status == "failed"
    # and a job's own choice wins over the setting
    submit(
        wroot,
        "x",
        agent=sh(TOOLS),
        workspace=str(repo),
        allowed_paths=["src/**"],
        judge_ignored=False,
    )
    out = make_worker(wroot, judge_ignored=True).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason


def test_editing_gitignore_or_info_exclude_hides_nothing(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    for trick in (
        "echo notes.txt >> .gitignore",
        'echo notes.txt >> "$(git rev-parse --git-common-dir)/info/exclude"',
        'echo notes.txt >> "$(git rev-parse --git-dir)/info/exclude"',
        'echo notes.txt > ../x-excludes; git config core.excludesFile "$PWD/../x-excludes"',
    ):
        agent = f"{trick}; echo secret > notes.txt; echo 'A = 2' > src/a.py"
        out = run(wroot, agent, repo, ["src/**", ".gitignore"])
        assert out.status == "failed", trick
        assert out.lifecycle.result is not None
        assert "notes.txt" in out.lifecycle.result.violations, trick


def test_an_ignored_path_cannot_be_faked_with_pathspec_magic(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    out = run(wroot, "echo x > ':(top).ruff_cache'; echo y > ':!x'", repo, ["src/**"])
    assert out.status == "failed"
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == [":!x", ":(top).ruff_cache"]


def test_tracked_files_under_ignored_names_are_judged(wroot: Root, tmp_path: Path) -> None:
    """Ignore rules cover new files only, as in git: a tracked file's edit is judged."""
    repo = make_git_package(tmp_path / "repo")
    (repo / "build.log").write_text("tracked\n")
    (repo / ".gitignore").write_text(CACHES + "*.log\n")
    git(repo, "add", "-f", "build.log", ".gitignore")
    git(repo, "commit", "-q", "-m", "tracked log")
    out = run(wroot, "echo more >> build.log; rm README.md; echo new > new.log", repo, ["src/**"])
    res = out.lifecycle.result
    assert res is not None and res.violations == ["README.md", "build.log"]
    assert res.work is not None and [t.path for t in res.work.ignored.top] == ["new.log"]


def test_plain_directory_with_an_ignore_file(wroot: Root, tmp_path: Path) -> None:
    ws = make_package(tmp_path / "plain", gitignore=None)
    (tmp_path / "rules").write_text(CACHES)
    out = run(wroot, TOOLS, ws, ["src/**"])
    assert out.status == "failed"  # no ignore file named: the caches are judged
    assert out.lifecycle.result is not None
    assert any(v.startswith(".ruff_cache/") for v in out.lifecycle.result.violations)
    out = run(wroot, TOOLS, ws, ["src/**"], ignore_file=str(tmp_path / "rules"))
    assert out.status == "succeeded", out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.work is not None
    assert {".ruff_cache/", ".pytest_cache/"} <= {t.path for t in res.work.ignored.top}
    assert res.work.ignored.rules == f"ignore file {tmp_path / 'rules'}"
    # the agent cannot widen the rules during its run: they were read before it started
    rules = tmp_path / "rules"
    out = run(wroot, f"echo '*' >> {shlex.quote(str(rules))}; echo x > notes.txt", ws, ["src/**"],
              ignore_file=str(rules))  # fmt: skip
    assert out.status == "failed" and out.lifecycle.result is not None
    assert out.lifecycle.result.violations == ["notes.txt"]


def test_ignore_file_relative_to_the_workspace(wroot: Root, tmp_path: Path) -> None:
    ws = make_package(tmp_path / "plain", gitignore=".ruff_cache/\n")
    submit(wroot, "x", agent=sh(f"{PY} -m ruff check ."), workspace=str(ws), allowed_paths=["src"])
    out = make_worker(wroot, ignore_file=".gitignore").run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason


# ---------------------------------------------------------------- globs, file by file


def test_a_dir_glob_allows_a_new_directory_in_git(wroot: Root, tmp_path: Path) -> None:
    """git once reported the new .ruff_cache as one collapsed name; now file by file."""
    repo = make_git_package(tmp_path / "repo", gitignore="")
    out = run(wroot, f"{PY} -m ruff check .", repo, [".ruff_cache/**"])
    assert out.status == "succeeded", out.lifecycle.reason
    out = run(wroot, f"{PY} -m ruff check .; echo x > .ruff_cachex", repo, [".ruff_cache/**"])
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == [".ruff_cachex"]


# ---------------------------------------------------------------- hidden edits


def test_index_flags_cannot_hide_an_edit(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    for flag in ("--skip-worktree", "--assume-unchanged"):
        agent = f"echo sneaky >> README.md; git update-index {flag} README.md"
        out = run(wroot, agent, repo, ["src/**"])
        assert out.status == "failed", flag
        assert out.lifecycle.result is not None
        assert out.lifecycle.result.violations == ["README.md"], flag


def test_a_replace_ref_cannot_rewrite_the_base(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    agent = (
        "old=$(git rev-parse HEAD:README.md); echo sneaky >> README.md; "
        "new=$(git hash-object -w README.md); git replace $old $new"
    )
    out = run(wroot, agent, repo, ["src/**"])
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == ["README.md"]


def test_moving_the_base_ref_does_not_move_the_base(wroot: Root, tmp_path: Path) -> None:
    """A later attempt is judged against the base job.json recorded, not the ref."""
    repo = make_git_package(tmp_path / "repo")
    base = git(repo, "rev-parse", "HEAD")
    agent = (
        'if [ "$FARRO_ATTEMPT" = 1 ]; then git commit -q --allow-empty -m moved; '
        "git update-ref refs/farro/$FARRO_JOB_ID/base HEAD; exit 1; fi; "
        "echo ok > src/ok.py"
    )
    submit(
        wroot, "x", agent=sh(agent), workspace=str(repo), allowed_paths=["src/**"], max_attempts=2
    )
    w = make_worker(wroot, retry_backoff_s=0)
    first = w.run_once()
    assert first is not None and first.status == "queued"
    second = w.run_once()
    assert second is not None and second.status == "succeeded", second.lifecycle.reason
    res = second.lifecycle.result
    assert res is not None and res.base_commit == base
    assert git(repo, "rev-parse", f"farro/{second.id}~1") == base
    assert res.work is not None
    assert [c.attempt for c in res.work.commits] == [1, 2]


def test_repointing_the_worktree_git_file_is_a_change(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    other = make_git_package(tmp_path / "other")
    out = run(wroot, f"echo 'gitdir: {other}/.git' > .git; echo y > README.md", repo, ["src/**"])
    assert out.status == "failed"
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == [".git", "README.md"]
    # a .git directory in its place: its files are changes like any other
    out = run(wroot, "rm .git; mkdir .git; echo x > .git/HEAD", repo, ["src/**"])
    assert out.status == "failed"
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == [".git", ".git/HEAD"]


# ---------------------------------------------------------------- planted commands


def test_planted_git_commands_never_run(wroot: Root, tmp_path: Path) -> None:
    """fsmonitor, hooks, filters, external diff, textconv, pager: none runs, now or later."""
    repo = make_git_package(tmp_path / "repo")
    marker = tmp_path / "ran"
    cmd = shlex.quote(f"touch {marker}; cat")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("post-checkout", "post-index-change", "reference-transaction", "post-commit"):
        h = hooks / name
        h.write_text(f"#!/bin/sh\ntouch {marker}\n")
        h.chmod(0o755)
    plant = "; ".join(
        [
            f"git config core.fsmonitor {cmd}",
            f"git config core.hooksPath {shlex.quote(str(hooks))}",
            f"git config filter.evil.clean {cmd}",
            f"git config filter.evil.smudge {cmd}",
            "git config filter.evil.required true",
            f"git config diff.external {cmd}",
            f"git config diff.evil.textconv {cmd}",
            f"git config core.pager {cmd}",
            # a driver defined only in a file the repo's config includes (includeIf)
            f"printf '[filter \"inc\"]\\n\\tclean = %s\\n' {cmd} > ../included.cfg",
            'git config "includeIf.gitdir:/.path" "$PWD/../included.cfg"',
            "printf '* filter=evil diff=evil\\n*.py filter=inc\\n' > .gitattributes",
            "echo 'A = 2' > src/a.py",
        ]
    )
    out = run(wroot, plant, repo, ["**"])
    assert out.status == "succeeded", out.lifecycle.reason
    assert not marker.exists()
    # the planted config stays in the repo: a later job (its checkout, its judging) is safe too
    assert git(repo, "config", "core.fsmonitor") == f"touch {marker}; cat"
    out = run(wroot, "echo 'A = 3' > src/a.py; echo x > README.md", repo, ["src/**"])
    assert out.lifecycle.result is not None
    assert out.lifecycle.result.violations == ["README.md"]
    assert not marker.exists()


def test_a_planted_filter_in_the_base_runs_at_no_checkout(wroot: Root, tmp_path: Path) -> None:
    repo = make_git_package(tmp_path / "repo")
    (repo / ".gitattributes").write_text("* filter=evil\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    marker = tmp_path / "ran"
    git(repo, "config", "filter.evil.smudge", f"ps -o args= $PPID >> {marker}; cat")
    git(repo, "config", "filter.evil.clean", f"ps -o args= $PPID >> {marker}; cat")
    out = run(wroot, "echo 'A = 2' > src/a.py", repo, ["src/**"])
    assert out.status == "succeeded", out.lifecycle.reason
    assert not marker.exists()
    assert git(repo, "show", f"farro/{out.id}:src/a.py") == "A = 2"


def test_plain_directory_has_no_git_to_fool(wroot: Root, tmp_path: Path) -> None:
    ws = make_plain(tmp_path / "plain")
    out = run(wroot, "echo x > README.md", ws, ["src/**"])
    assert out.lifecycle.result is not None and out.lifecycle.result.violations == ["README.md"]
    assert out.lifecycle.result.work is not None
    assert out.lifecycle.result.work.branch is None and out.lifecycle.result.work.commits == []


def test_a_later_attempt_starts_clean_despite_index_flags(wroot: Root, tmp_path: Path) -> None:
    """Attempt 1's flagged edit must not survive into attempt 2 and be blamed on it."""
    repo = make_git_package(tmp_path / "repo")
    agent = (
        'if [ "$FARRO_ATTEMPT" = 1 ]; then echo sneaky >> README.md; '
        "git update-index --skip-worktree README.md; echo x >> src/a.py; "
        "git update-index --assume-unchanged src/a.py; fi; echo ok > src/ok.py"
    )
    first = run(wroot, agent, repo, ["src/**"])
    assert first.status == "failed" and first.lifecycle.result is not None
    assert first.lifecycle.result.violations == ["README.md"]
    operations.requeue(wroot, first.id)
    w = make_worker(wroot)
    second = w.run_once()
    assert second is not None and second.status == "succeeded", second.lifecycle.reason
    res = second.lifecycle.result
    assert res is not None and res.work is not None
    assert [c.path for c in res.work.changed] == ["src/ok.py"]
    wt = next(iter(w.pool.slots.values())).path
    assert (wt / "README.md").read_text() == "readme\n"


def test_prepare_resets_index_flags_an_unjudged_attempt_left(wroot: Root, tmp_path: Path) -> None:
    """A crash between the agent and the judging leaves the flags: the next start clears them."""
    repo = make_git_package(tmp_path / "repo")
    env = submit(wroot, "x", workspace=str(repo))
    ws = workspace.prepare(wroot, env)
    (ws.path / "README.md").write_text("sneaky\n")
    git(ws.path, "update-index", "--skip-worktree", "README.md")
    assert ws.slot is not None
    ws.slot.release()  # its worker crashed: the next one takes the worktree over
    again = workspace.prepare(wroot, env, known_base=ws.base_commit)
    assert again.path == ws.path
    assert (ws.path / "README.md").read_text() == "readme\n"
    assert git(ws.path, "status", "--porcelain") == ""
