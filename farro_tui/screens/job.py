"""The job pane: everything about one job, and its history as a timeline."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from farro_core import audit
from farro_core.agents import MONEY_KEYS, report_money
from farro_core.envelope import Envelope, agent_text
from farro_core.errors import FarroError
from farro_core.followup import children_in
from farro_core.fs import read_json
from farro_core.humanize import duration, timestamp
from farro_core.job import kill_requested, load
from farro_core.transitions import TERMINAL, Status
from farro_core.visible import visible
from farro_core.work import Work, change_line, summary
from farro_tui.access import FarroAccess
from farro_tui.widgets.footer import FarroFooter
from farro_tui.widgets.queue_view import STATUS_LABEL, STATUS_STYLE

CHANGE_STYLE = {"A": "green", "D": "red", "M": "", "T": "yellow"}
MARKS = {True: ("✓", "green"), False: ("✗", "red"), None: ("?", "bright_black")}
#: a check's state in words where the mark alone would mislead (the words `farro show` uses)
STATE_WORDS = {"error": "could not run", "timed_out": "timed out", "ungraded": "ungraded"}


def _ts(value: datetime | str | None) -> str:
    return visible(timestamp(value, missing="—"))


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def _work_section(w: Work, base_commit: str | None) -> list[RenderableType]:
    """Branch, base, each attempt's commit, the diffstat, the paths, the ignored writes."""
    out: list[RenderableType] = [_section("Work")]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bright_black", no_wrap=True)
    grid.add_column()
    for label, text in summary(w, base_commit):
        grid.add_row(
            label, Text(text, style="yellow" if label == "ignored" and w.ignored.files else "")
        )
        if label == "changed":  # its paths under it, never under the ignored writes
            for c in w.changed[:50]:
                grid.add_row("", Text(change_line(c), style=CHANGE_STYLE.get(c.change, "")))
            if w.changed_count > 50:
                more = f"… {w.changed_count - 50} more (farro show --json)"
                grid.add_row("", Text(more, style="bright_black"))
    out.append(grid)
    return out


def _lineage_section(env: Envelope, children: list[str]) -> list[RenderableType]:
    """Where the job comes from and its follow-ups (``<`` and ``>`` go there)."""
    lineage = env.prompt.lineage
    if lineage is None and not children:
        return []
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bright_black", no_wrap=True)
    grid.add_column()
    if lineage is not None:
        how = f", from its work {lineage.from_work[:12]}" if lineage.from_work else ""
        grid.add_row("parent", f"{lineage.parent}{how}  (<)")
    if children:
        grid.add_row("follow-ups", f"{', '.join(children)}  (>)")
    return [_section("Lineage"), grid]


def attempts(env: Envelope) -> str:
    """The attempt line: what is used of the budget and what happens next, by status."""
    p, lc = env.prompt, env.lifecycle
    used = lc.attempt - lc.attempt_base
    text = f"{lc.attempt} ({used} of {p.max_attempts} used"
    if lc.attempt_base:
        # runs before an operator's requeue or a worker's release do not count
        text += f", after {lc.attempt_base} uncounted"
    if lc.status == Status.FAILED:
        return text + "; failed for good: no automatic retry)"
    if lc.status in TERMINAL:
        return text + ")"
    return text + f", {lc.attempts_left(p.max_attempts)} automatic left)"


def render_job(
    env: Envelope, history: list[dict[str, Any]], killing: bool, children: list[str] | None = None
) -> RenderableType:
    """Every string of the job, its result and its history is shown through visible()."""
    p, lc = env.prompt, env.lifecycle
    parts: list[RenderableType] = []
    # the title alone on its line, the status word starting the next: two runs of
    # different styles never meet at a bare space (an SVG export drops it there)
    parts.append(Text(visible(p.title), style="bold"))
    sub = Text()
    sub.append(STATUS_LABEL.get(lc.status, lc.status).upper(), STATUS_STYLE.get(lc.status))
    if killing:
        sub.append(" · kill requested", "bold red")
    if lc.kept is not None:  # farro keep: gc leaves the job as it is
        sub.append(" · kept", "bold cyan")
    sub.append(f" · {env.id}", "bright_black")
    if lc.reason:
        sub.append(f" · {visible(lc.reason)}")
    parts.append(sub)
    why: list[RenderableType] = []  # result, rubric, paths: what an operator reads first
    about: list[RenderableType] = []  # lifecycle

    about.append(_section("Lifecycle"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bright_black", no_wrap=True)
    grid.add_column()
    grid.add_row("attempt", attempts(env))
    grid.add_row("revision", str(lc.revision))
    grid.add_row("reason", Text(visible(lc.reason) or "—"))
    if lc.claim is not None:
        c = lc.claim
        who = f"{visible(c.worker)} on {visible(c.host)} pid {c.pid}"
        if lc.status == Status.IN_PROGRESS:
            grid.add_row("claim", Text(f"{who} since {_ts(c.claimed_at)}"))
        else:  # the claim of an attempt that ended: history, not a live worker
            grid.add_row("last claim", Text(f"{who} from {_ts(c.claimed_at)} (ended)"))
    if lc.not_before is not None:
        grid.add_row("not before", _ts(lc.not_before))
    if lc.kept is not None:
        said = f"{_ts(lc.kept.at)} by {visible(lc.kept.by)}: gc leaves its branch, refs and logs"
        grid.add_row("kept", Text(said))
    grid.add_row("created", Text(f"{_ts(lc.created_at)} by {visible(p.created_by)}"))
    grid.add_row("updated", _ts(lc.updated_at))
    grid.add_row("timeout", duration(p.timeout_s))
    grid.add_row("priority", str(p.priority))
    if p.labels:
        labels = " ".join(f"{visible(k)}={visible(v)}" for k, v in p.labels.items())
        grid.add_row("labels", Text(labels))
    workspace = visible(p.workspace) if p.workspace else f"{env.path.parent.name}/{env.id}/work"
    grid.add_row("workspace", Text(workspace))
    if p.agent is not None:
        grid.add_row("agent", Text(visible(agent_text(p.agent))))
    about.append(grid)

    r = lc.result
    why.append(_section("Result"))
    if r is None:
        why.append(Text("no attempt has finished yet", style="bright_black"))
    else:
        res = Table.grid(padding=(0, 2))
        res.add_column(style="bright_black", no_wrap=True)
        res.add_column()
        verdict = Text(
            visible(r.verdict or "—"),
            style={"passed": "green", "failed": "red"}.get(r.verdict or "", ""),
        )
        res.add_row("verdict", verdict)
        flags = [f for f, on in (("timed out", r.timed_out), ("killed", r.killed)) if on]
        res.add_row("exit code", f"{r.exit_code}" + (f" ({', '.join(flags)})" if flags else ""))
        res.add_row("attempt", f"{r.attempt}: {_ts(r.started_at)} → {_ts(r.finished_at)}")
        res.add_row("duration", duration(r.duration_s))
        # --- agent presets: cost and tokens always, whatever the report's size
        for label, text in report_money(r.report):
            res.add_row(label, Text(visible(text)))
        # whatever else the agent reported (a summary, …): its scalars, as given
        shown = [
            (k, v)
            for k, v in r.report.items()
            if isinstance(v, str | int | float | bool) and k not in MONEY_KEYS
        ]
        for key, value in shown[:12]:
            name = visible(str(key).replace("_", " "))[:20]
            res.add_row(Text(name), Text(visible(str(value))[:300]))
        if r.error:
            res.add_row("error", Text(visible(r.error), style="red"))
        if r.base_commit:
            res.add_row("base commit", Text(visible(r.base_commit)))
        why.append(res)

    why.append(_section(f"Rubric ({len(p.rubric)})"))
    verdicts = {v.id: v for v in (r.rubric if r else [])}
    if not p.rubric:
        why.append(Text("no checks: the agent's exit code decides", style="bright_black"))
    for item in p.rubric:
        v = verdicts.get(item.id)
        mark, colour = MARKS[v.passed if v else None]
        line = Text()
        line.append(f" {mark} ", f"bold {colour}")
        line.append(visible(item.id), "bold")
        if not item.required:
            line.append(" (optional)", "bright_black")
        if v is not None and not v.passed:
            said = STATE_WORDS.get(v.state or "", "failed" if v.passed is False else "")
            code = "" if v.exit_code is None else f"exit {v.exit_code}"
            words = ", ".join(w for w in (said, code) if w)
            if words:
                line.append(f"  {words}", colour)
        why.append(line)
        if item.description:  # its own line: the id's run and this one never meet
            why.append(Text(f"   {visible(item.description)}"))
        if item.check:
            why.append(Text(f"   $ {visible(item.check, lines=True)}", style="bright_black"))
        if v is not None and v.output_tail.strip():
            tail = "\n".join(visible(v.output_tail, lines=True).rstrip().splitlines()[-6:])
            why.append(Text("   " + tail.replace("\n", "\n   "), style="italic"))

    why.append(_section("Allowed paths"))
    why.append(Text("  ".join(visible(a) for a in p.allowed_paths)))
    if r is not None and r.violations:
        why.append(Text(f"violations ({len(r.violations)}):", style="bold red"))
        for path in r.violations[:50]:
            why.append(Text(f"  ✗ {visible(path)}", style="red"))

    if r is not None and r.work is not None:
        why += _work_section(r.work, r.base_commit)
    if r is not None and r.landed is not None:
        why.append(Text(f"landed {visible(r.landed.text())}", style="bold cyan"))
    why += _lineage_section(env, children or [])

    parts += why + about
    parts.append(_section("Prompt"))
    parts.append(Text(visible(p.prompt, lines=True)))

    parts.append(_section(f"History ({len(history)})"))
    timeline = Table.grid(padding=(0, 1))
    timeline.add_column(style="bright_black", no_wrap=True)
    timeline.add_column(no_wrap=True)
    timeline.add_column()
    for rec in history:
        frm, to = rec.get("from"), visible(str(rec.get("to", "")))
        move = Text()
        if frm:
            frm = visible(str(frm))
            move.append(STATUS_LABEL.get(frm, frm), STATUS_STYLE.get(frm))
            move.append(" → ")
        move.append(STATUS_LABEL.get(to, to), STATUS_STYLE.get(to))
        who = str(rec.get("actor", ""))
        if rec.get("worker"):
            who += f" {rec['worker']}"
        said = visible(f"{who}: {rec.get('reason', '')}")
        timeline.add_row(_ts(rec.get("ts")), move, Text(said, overflow="fold"))
    parts.append(timeline)
    return Group(*parts)


class JobScreen(FarroAccess, Screen[None]):
    """``enter`` on a row opens it; ``esc`` goes back. Reloads when the job changes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="back"),
        Binding("y", "raw", "Raw JSON", id="raw"),
        Binding("l", "app.log", "Log", id="log"),
        Binding("up,k", "scroll(-1)", "Up", show=False),
        Binding("down,j", "scroll(1)", "Down", show=False),
        Binding("g,home", "scroll_home", "Top", show=False),
        Binding("G,end", "scroll_end", "Bottom", show=False),
        # lineage (issue 13)
        Binding("less_than_sign", "parent", "Parent", id="job_parent", show=False),
        Binding("greater_than_sign", "child", "Follow-up", id="job_child", show=False),
    ]

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id
        self.env: Envelope | None = None
        self.raw = False
        self._revision: int | None = None
        self.follow_ups: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(f" Job {self.job_id}", id="pane-title")
        with VerticalScroll(id="job-body"):
            yield Static("loading…", id="job-content")
        yield FarroFooter()

    def on_mount(self) -> None:
        self.query_one("#job-body").focus()
        self.farro.feeder.follow(self.job_id)  # a record written in place in done/ too
        self.reload()
        self.farro.store_updated.subscribe(self, lambda _: self.store_changed(), immediate=True)

    def on_unmount(self) -> None:
        self.farro.feeder.unfollow(self.job_id)

    def targets(self) -> list[str]:
        return [self.job_id]

    def store_changed(self) -> None:
        row = self.farro.store.rows.get(self.job_id)
        if row is not None and row.revision != self._revision:
            self.reload()

    @work(thread=True, exclusive=True, group="job-load")
    def reload(self) -> None:
        root = self.farro.root
        try:
            env = load(root, self.job_id)
        except FarroError as exc:
            said = Text(f"cannot read job: {visible(str(exc))}", style="red")
            self.app.call_from_thread(self._show, said)
            return
        history, _ = audit.tail(root, self.job_id, 1000)  # bounded, however long the log
        children = children_in(history)
        killing = kill_requested(env.path, env.lifecycle.attempt) is not None
        if self.raw:
            body: RenderableType = Group(
                *(self._raw_file(env, name) for name in ("prompt.json", "job.json"))
            )
        else:
            body = render_job(env, history, killing and env.status == "in-progress", children)
        self.app.call_from_thread(self._loaded, env, body, children)

    @staticmethod
    def _raw_file(env: Envelope, name: str) -> RenderableType:
        try:
            text = json.dumps(read_json(env.path / name), indent=2)
        except (OSError, ValueError) as exc:
            return Text(f"{name}: {visible(str(exc))}", style="red")
        return Group(
            Text(f"\n{name}", style="bold underline"), Syntax(text, "json", theme="ansi_dark")
        )

    def _loaded(self, env: Envelope, body: RenderableType, children: list[str]) -> None:
        self.env = env
        self.follow_ups = children
        self._revision = env.lifecycle.revision
        self._show(body)
        self.refresh_bindings()

    def _show(self, body: RenderableType) -> None:
        self.query_one("#job-content", Static).update(body)
        mode = "raw JSON" if self.raw else ""
        title = f" Job {self.job_id}" + (f"  [{mode}]" if mode else "")
        self.query_one("#pane-title", Static).update(title)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "parent":
            return (self.env is not None and self.env.prompt.lineage is not None) or None
        if action == "child":
            return bool(self.follow_ups) or None
        return True

    def action_parent(self) -> None:
        if self.env is not None and self.env.prompt.lineage is not None:
            self.app.push_screen(JobScreen(self.env.prompt.lineage.parent))

    def action_child(self) -> None:
        """The newest follow-up (a job pane, so esc comes back here)."""
        if self.follow_ups:
            self.app.push_screen(JobScreen(self.follow_ups[-1]))

    def action_raw(self) -> None:
        self.raw = not self.raw
        self.reload()

    def action_scroll(self, delta: int) -> None:
        body = self.query_one("#job-body", VerticalScroll)
        body.scroll_relative(y=delta, animate=False)

    def action_scroll_home(self) -> None:
        self.query_one("#job-body", VerticalScroll).scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.query_one("#job-body", VerticalScroll).scroll_end(animate=False)
