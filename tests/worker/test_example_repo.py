"""The repository `farro init --example` makes is one a real agent's job can pass in.

README's examples run against it; an agent that runs pytest, ruff and mypy while
it works (as Claude Code, Codex or Aider do) leaves their caches behind, which
the example's own .gitignore keeps out of the judging: recorded, not failed.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from farro_core import example
from farro_core.root import Root

from .helpers import PYTHON, make_worker, sh, submit

PY = shlex.quote(PYTHON)
AGENT = (
    f"env -u PYTHONDONTWRITEBYTECODE {PY} -m pytest -q && {PY} -m ruff check -q . ; "
    f"{PY} -m mypy src/utils.py ; "
    "printf 'def slugify(text: str) -> str:\\n    return text\\n' >> src/utils.py"
)


def test_an_agent_running_the_tools_passes_in_the_example_repo(wroot: Root, tmp_path: Path) -> None:
    repo = tmp_path / "src" / "myrepo"
    assert example.create(repo)
    submit(wroot, "type it", agent=sh(AGENT), workspace=str(repo), allowed_paths=["src/**"])
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out and out.lifecycle.reason
    res = out.lifecycle.result
    assert res is not None and res.work is not None and not res.violations
    assert [c.path for c in res.work.changed] == ["src/utils.py"]
    tops = {t.path for t in res.work.ignored.top}
    assert {".pytest_cache/", ".ruff_cache/", ".mypy_cache/", "tests/__pycache__/"} <= tops, tops
    assert not res.work.ignored.judged
