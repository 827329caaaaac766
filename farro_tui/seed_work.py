"""A job whose work sits in a real git repository, the same commits every run.

The diff pane's snapshot tests, screenshots and benchmark need a succeeded job
with two attempts of work: the repository is built with fixed author and
committer dates, so its commit ids (shown in the pane's title) never change,
and the job's files are written directly with fixed ids and timestamps, as
:mod:`farro_tui.seed` does for the showcase.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from farro_core import audit
from farro_core.envelope import Lifecycle, Prompt, Result, RubricVerdict
from farro_core.root import Root
from farro_core.transitions import Status
from farro_core.work import AttemptCommit, Change, Work
from farro_core.workspace import git, git_bytes
from farro_tui.seed import FIXED_NOW, demo_claim, place, showcase_id

_DATE = "2026-01-15T10:00:00Z"

PARSER = '''"""A small CSV parser."""

import csv
from io import StringIO


def parse(text):
    rows = []
    for row in csv.reader(StringIO(text)):
        rows.append(row)
    return rows


def header(text):
    return parse(text)[0]
'''

PARSER_V2 = '''"""A small CSV parser."""

import csv
from io import StringIO


def parse(text: str, *, strict: bool = False) -> list[list[str]]:
    """Every row of ``text``; ``strict`` refuses rows of unequal length."""
    rows = list(csv.reader(StringIO(text)))
    if strict and len({len(r) for r in rows}) > 1:
        raise ValueError("rows of unequal length")
    return rows


def header(text: str) -> list[str]:
    rows = parse(text)
    return rows[0] if rows else []
'''

TESTS = """from csvparse.parser import header, parse


def test_empty_input() -> None:
    assert parse("") == []
    assert header("") == []


def test_strict_refuses_ragged_rows() -> None:
    try:
        parse("a,b\\nc\\n", strict=True)
    except ValueError:
        return
    raise AssertionError("ragged rows accepted")
"""


def _git(repo: Path, *args: str) -> str:
    dates = {"GIT_AUTHOR_DATE": _DATE, "GIT_COMMITTER_DATE": _DATE}
    return git_bytes(repo, *args, env=dates).stdout.decode().strip()


def _write(repo: Path, files: dict[str, str | None]) -> None:
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _commit(repo: Path, message: str) -> str:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--no-verify", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def make_repo(
    repo: Path, attempts: list[dict[str, str | None]], base_files: dict[str, str | None]
) -> tuple[str, list[str]]:
    """A repository on ``main`` and one work commit per attempt, each on the base."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    _write(repo, base_files)
    base = _commit(repo, "initial")
    commits = []
    for n, files in enumerate(attempts, start=1):
        _git(repo, "checkout", "-q", "-B", "work", base)
        _write(repo, files)
        commits.append(_commit(repo, f"farro: attempt {n}"))
    _git(repo, "checkout", "-q", "main")
    _git(repo, "branch", "-q", "-D", "work")
    return base, commits


def seed_work(
    root: Root,
    repo: Path,
    *,
    big_lines: int = 0,
    name: str = "diff",
) -> str:
    """A succeeded job with two attempts of work in ``repo``; returns its id.

    ``big_lines`` adds that many lines of new code to attempt 2, in files of
    1,000 lines (the benchmark's 50,000-line diff).
    """
    base_files: dict[str, str | None] = {
        "README.md": "# csvparse\n\nParse CSV.\n",
        "csvparse/__init__.py": "",
        "csvparse/parser.py": PARSER,
        "csvparse/legacy.py": "def old():\n    return None\n",
    }
    first: dict[str, str | None] = {"csvparse/parser.py": PARSER.replace("rows = []", "rows=[]")}
    second: dict[str, str | None] = {
        "csvparse/parser.py": PARSER_V2,
        "tests/test_parser.py": TESTS,
        "csvparse/legacy.py": None,
        "README.md": "# csvparse\n\nParse CSV, strictly if asked.\n",
    }
    for i in range(0, big_lines, 1000):
        n = min(1000, big_lines - i)
        second[f"gen/table_{i // 1000:03d}.py"] = "".join(
            f"VALUE_{i + k} = {{'id': {i + k}, 'name': \"row {i + k}\"}}  # generated\n"
            for k in range(n)
        )
    base, commits = make_repo(repo, [first, second], base_files)
    created = FIXED_NOW - timedelta(minutes=100)
    job_id = showcase_id(name, created)
    for n, c in enumerate(commits, start=1):
        _git(repo, "update-ref", f"refs/farro/{job_id}/attempt-{n}", c)
    _git(repo, "update-ref", f"refs/farro/{job_id}/base", base)
    _git(repo, "update-ref", f"refs/heads/farro/{job_id}", commits[-1])
    numstat = _git(repo, "diff-tree", "-r", "--numstat", "--no-renames", base, commits[-1])
    kinds = {
        line.split("\t", 1)[1]: line[0]
        for line in _git(repo, "diff-tree", "-r", "--name-status", base, commits[-1]).splitlines()
    }
    changed = []
    for line in numstat.splitlines():
        ins, dels, name = line.split("\t", 2)
        kind = kinds.get(name, "M")
        changed.append(
            Change(
                path=name,
                change="A" if kind == "A" else "D" if kind == "D" else "M",
                insertions=int(ins),
                deletions=int(dels),
            )
        )
    title = "Type the CSV parser and add a strict mode"
    prompt = Prompt(
        id=job_id,
        title=title,
        prompt=f"{title}.\n\nAdd tests for empty input and ragged rows.",
        rubric=[{"id": "tests-pass", "description": "the test suite passes", "check": "pytest"}],
        allowed_paths=["**"],
        workspace=str(repo),
        labels={"batch": "jan"},
        created_at=created,
        created_by="ops@farro-demo",
    )
    started = created + timedelta(minutes=5)
    finished = started + timedelta(seconds=200)
    result = Result(
        attempt=2,
        exit_code=0,
        started_at=started,
        finished_at=finished,
        duration_s=200.0,
        rubric=[RubricVerdict(id="tests-pass", passed=True, exit_code=0, output_tail="2 passed")],
        verdict="passed",
        log="logs/attempt-2.log",
        base_commit=base,
        work=Work(
            branch=f"farro/{job_id}",
            base_branch="main",
            commits=[AttemptCommit(attempt=n, commit=c) for n, c in enumerate(commits, 1)],
            changed=changed[:500],
            changed_count=len(changed),
            insertions=sum(c.insertions or 0 for c in changed),
            deletions=sum(c.deletions or 0 for c in changed),
        ),
        report={"cost_usd": 0.31, "tokens_in": 12000, "tokens_out": 3400},
    )
    lc = Lifecycle(
        id=job_id,
        status=Status.SUCCEEDED,
        attempt=2,
        revision=5,
        claim=demo_claim("w1", started),
        result=result,
        reason="every required check passed",
        created_at=created,
        updated_at=finished,
    )
    place(root, prompt, lc)
    audit.append(
        root,
        audit.record(
            job=job_id,
            frm="in-progress",
            to="succeeded",
            actor="agent",
            worker="w1",
            attempt=2,
            revision=5,
            reason=lc.reason,
            ts=finished,
        ),
    )
    return job_id


def seed_follow_up(root: Root, parent_id: str, note: str = "Also accept a BOM.") -> str:
    """A queued follow-up of ``parent_id`` continuing its work (``farro retry --from-work``),
    with fixed ids and times; the parent's history names it. Returns its id."""
    from farro_core import job
    from farro_core.followup import spec

    parent = job.load(root, parent_id)
    s = spec(parent, note, from_work=True)
    created = FIXED_NOW - timedelta(minutes=20)
    child_id = showcase_id(f"follow-up {parent_id}", created)
    fields = s.model_dump(exclude={"id", "schema_version"})
    fields["title"] = s.title
    prompt = Prompt(id=child_id, created_at=created, created_by="ops@farro-demo", **fields)
    lc = Lifecycle(
        id=child_id,
        status=Status.QUEUED,
        attempt=0,
        revision=1,
        reason="created by ops@farro-demo",
        created_at=created,
        updated_at=created,
    )
    place(root, prompt, lc)
    for rec in (
        audit.record(
            job=child_id, frm=None, to="queued", actor="creator", worker=None, attempt=0,
            revision=1, reason=lc.reason, event="created", ts=created,
        ),
        audit.record(
            job=parent_id, frm="succeeded", to="succeeded", actor="ops@farro-demo",
            worker=None, attempt=parent.lifecycle.attempt, revision=parent.lifecycle.revision,
            reason=f"follow-up job {child_id} created from its work by ops@farro-demo",
            event="followed-up", ts=created,
        ),
    ):  # fmt: skip
        audit.append(root, rec)
    return child_id
