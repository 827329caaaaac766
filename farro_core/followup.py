"""``farro retry``: a follow-up job that asks the agent to fix what a job left.

prompt.json never changes, so a follow-up is a new job: the parent's prompt,
then the operator's note, then what failed (each failing check's name and the
tail of its output, the paths outside ``allowed_paths``). Every other field is
the parent's. Its ``lineage`` names the parent, and with ``--from-work`` the
parent's last work commit, which becomes its base: the agent continues the work
rather than redo it.
"""

from __future__ import annotations

from typing import Any

from farro_core import audit, job
from farro_core.envelope import Envelope, JobSpec, Lineage, parse_spec
from farro_core.errors import BadInput, Refused
from farro_core.root import Root
from farro_core.transitions import TERMINAL

MAX_NOTE_CHARS = 20_000
#: lines of each failing check's output carried into the follow-up's prompt
TAIL_LINES = 40


def failures(parent: Envelope) -> list[str]:
    """What went wrong in the parent's last attempt, as prompt text (empty: nothing)."""
    res = parent.lifecycle.result
    if res is None:
        return []
    out: list[str] = []
    for v in res.rubric:
        if v.passed is False:
            code = f" (exit {v.exit_code})" if v.exit_code is not None else ""
            req = "" if v.required else " (optional)"
            out.append(f"### {v.id}{req}{code}")
            tail = v.output_tail.rstrip().splitlines()[-TAIL_LINES:]
            if tail:
                out += ["```", *tail, "```"]
    if res.violations:
        out.append("### paths changed outside allowed_paths")
        out += [f"- {p}" for p in res.violations[:50]]
    if res.error:
        out += ["### error", res.error]
    return out


def compose(parent: Envelope, note: str) -> str:
    """The follow-up's prompt: the parent's, the operator's note, the failures."""
    parts = [parent.prompt.prompt.rstrip(), "", "## Follow-up from the operator", "", note.strip()]
    failed = failures(parent)
    if failed:
        attempt = parent.lifecycle.result.attempt if parent.lifecycle.result else 0
        parts += ["", f"## What failed in job {parent.id} (attempt {attempt})", "", *failed]
    return "\n".join(parts) + "\n"


def spec(parent: Envelope, note: str, *, from_work: bool = False) -> JobSpec:
    """The follow-up's spec; refuses an empty note, an unfinished parent, and
    ``from_work`` without a work commit."""
    if not note.strip():
        raise BadInput("--note may not be empty: say what the agent should do differently")
    if len(note) > MAX_NOTE_CHARS:
        raise BadInput(f"--note exceeds {MAX_NOTE_CHARS} characters")
    if parent.status not in TERMINAL:
        raise Refused(f"job {parent.id} is {parent.status}: follow up a job once it has finished")
    p = parent.prompt
    res = parent.lifecycle.result
    work_commit = None
    base_branch = None
    if res is not None and res.work is not None:
        base_branch = res.work.base_branch
        work_commit = next((c.commit for c in reversed(res.work.commits) if c.commit), None)
    if from_work and work_commit is None:
        raise Refused(
            f"job {parent.id} has no work commit to continue from "
            "(its workspace is not a git repo, or no attempt changed anything)"
        )
    title = f"Follow-up: {p.title}"
    fields = {
        "prompt": compose(parent, note),
        "title": title[:200],
        "rubric": [r.model_dump() for r in p.rubric],
        "allowed_paths": list(p.allowed_paths),
        "workspace": p.workspace,
        "agent": p.agent,
        "timeout_s": p.timeout_s,
        "max_attempts": p.max_attempts,
        "priority": p.priority,
        "labels": dict(p.labels),
        "judge_ignored": p.judge_ignored,
        "ignore_file": p.ignore_file,
        "lineage": Lineage(
            parent=parent.id,
            from_work=work_commit if from_work else None,
            base_branch=base_branch if from_work else None,
        ).model_dump(),
    }
    return parse_spec(fields, "follow-up")


def retry(
    root: Root, job_id: str, note: str, *, from_work: bool = False, by: str = "operator"
) -> Envelope:
    """Create the follow-up of ``job_id``; the parent's audit gets a ``followed-up`` line."""
    parent = job.load(root, job_id)
    child = job.create(root, spec(parent, note, from_work=from_work), created_by=by)
    how = " from its work" if from_work else ""
    audit.note(
        root,
        parent.lifecycle,
        actor=by,
        reason=f"follow-up job {child.id} created{how} by {by}",
        event="followed-up",
    )
    return child


def children(root: Root, job_id: str) -> list[str]:
    """The follow-ups of ``job_id``, oldest first, from the audit log (no tree walk)."""
    return children_in(list(audit.read(root, job_id)))


def children_in(history: list[dict[str, Any]]) -> list[str]:
    """The follow-ups a job's audit lines name (its ``followed-up`` lines)."""
    found: list[str] = []
    prefix = "follow-up job "
    for rec in history:
        reason = str(rec.get("reason", ""))
        if rec.get("event") == "followed-up" and reason.startswith(prefix):
            child = reason[len(prefix) :].split(" ", 1)[0]
            if child not in found:
                found.append(child)
    return found
