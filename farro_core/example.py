"""``farro init --example DIR``: a small git repository to try jobs on.

README's examples name ``~/src/myrepo``; this makes one, so that every example
runs as written: a Python module without type hints, a test file, the two
spec files ``farro submit batch.json more.toml`` reads, and a .gitignore of the
tools' caches, so an agent that runs pytest or ruff is not failed for them. The repository has a
first commit, because a job's worktree branches from HEAD.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from farro_core.errors import BadInput

FILES = {
    # the caches the tools a real agent runs (pytest, ruff, mypy) leave behind: ignored
    # by the base commit, so they are recorded, not judged (see README, Judging)
    ".gitignore": """\
__pycache__/
.pytest_cache/
.ruff_cache/
.mypy_cache/
""",
    "README.md": """\
# myrepo

A small repository made by `farro init --example`, to try FARRO jobs on.
""",
    "src/utils.py": '''\
"""Small text helpers, without type hints yet."""


def slugify(text):
    return "-".join(text.lower().split())


def chunks(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]
''',
    "tests/test_io.py": '''\
"""Tests of src/utils.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from utils import chunks, slugify  # noqa: E402


def test_slugify():
    assert slugify("Hello  World") == "hello-world"


def test_chunks():
    assert chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
''',
    "batch.json": """\
{
  "jobs": [
    {
      "title": "Add type hints to utils.py",
      "prompt": "Add type hints to every function in src/utils.py. Keep behaviour unchanged.",
      "workspace": ".",
      "allowed_paths": ["src/**"],
      "rubric": [
        {"id": "types", "description": "mypy passes", "check": "mypy src/utils.py"},
        {"id": "tests", "description": "tests pass", "check": "pytest -q", "timeout_s": 300}
      ],
      "labels": {"batch": "typing"}
    }
  ]
}
""",
    "more.toml": """\
[[jobs]]
title = "Document utils.py"
prompt = "Write a docstring for every function in src/utils.py."
workspace = "."
allowed_paths = ["src/**"]
rubric = [{id = "tests", description = "tests pass", check = "pytest -q"}]
labels = {batch = "docs"}
""",
}

_GIT_ID = ("-c", "user.name=farro", "-c", "user.email=farro@localhost")


def create(path: Path) -> bool:
    """Make the example repository at ``path``; False when it is there already.

    An existing directory is kept only if it is a git repository with a commit
    (the example made earlier, or any repository: nothing in it is touched);
    anything else there is refused, never overwritten.
    """
    built = build(path)
    if built is None:
        return False
    place(built, path)
    return True


def build(path: Path) -> Path | None:
    """Build the repository aside, beside ``path``; None when ``path`` is one to keep.

    Split from :func:`place` so that ``farro init`` builds it before it makes the
    root: a DIR that cannot be made then leaves no root behind.
    """
    if check_target(path):
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        built = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except OSError as exc:
        raise BadInput(f"--example {path}: {exc.strerror or exc}") from None
    try:
        for name, text in FILES.items():
            file = built / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8")
        _git(built, "init", "-q")
        _git(built, "add", "-A")
        _git(built, *_GIT_ID, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "example")
        os.chmod(built, 0o755)  # mkdtemp made it 0700; a repository usually is not
    except BaseException:
        discard(built)
        raise
    return built


def place(built: Path, path: Path) -> None:
    """Rename what :func:`build` made into place: never half made."""
    try:
        os.rename(built, path)
    except BaseException as exc:
        discard(built)
        if isinstance(exc, OSError):
            raise BadInput(f"--example {path}: {exc.strerror or exc}") from None
        raise


def discard(built: Path) -> None:
    shutil.rmtree(built, ignore_errors=True)  # our own, never visible under its name


def check_target(path: Path) -> bool:
    """True when ``path`` is a repository to keep, False when it is free; else BadInput."""
    if not os.path.lexists(path):
        return False
    if path.is_dir() and not path.is_symlink() and _has_commit(path):
        return True
    raise BadInput(
        f"--example {path}: exists and is not a git repository with a commit; give a new directory"
    )


def _has_commit(path: Path) -> bool:
    try:
        proc = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        return False
    return proc.returncode == 0 and os.path.lexists(path / ".git")


def _git(path: Path, *args: str) -> None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(path), "-c", "core.hooksPath=/dev/null", *args],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        raise BadInput("--example needs git, which is not installed") from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()
        raise BadInput(f"--example {path}: git {args[-1]} failed: {last[-1] if last else ''}")
