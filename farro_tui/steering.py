"""Steering: requeue, kill, land and follow up, asked of the transition table and done
through operations.

A key whose action cannot act here is shown disabled and, pressed, says why (in
the core's words); an allowed one is confirmed, then done off the UI thread, and
what was refused is said per job.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from textual import on, work
from textual.actions import ActionParseResult
from textual.actions import parse as parse_action
from textual.dom import DOMNode

from farro_core import operations
from farro_core.errors import FarroError
from farro_core.job import load as load_job
from farro_core.operations import phrase
from farro_core.root import Root
from farro_core.transitions import TERMINAL, Status, operator_can_kill, operator_can_requeue
from farro_core.visible import visible as visible_text
from farro_tui.hosting import SystemHost
from farro_tui.messages import ActionDone
from farro_tui.screens.dialogs import ConfirmScreen
from farro_tui.screens.diff import DiffScreen
from farro_tui.screens.followup import FollowUp, NoteScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.main import MainScreen
from farro_tui.widgets.queue_view import STATUS_LABEL

#: actions that change a job; ``--readonly`` hides them all
STEERING = frozenset({"requeue", "kill", "land", "follow_up"})
VERBS = {
    "requeue": ("Requeue", "requeued"),
    "kill": ("Kill", "killed"),
    "land": ("Land", "landed"),
    "follow_up": ("Follow up", "created follow-up"),
}
#: actions shown disabled where they cannot act; pressing their key says why
EXPLAINED = STEERING | {"log"}


def can(verb: str, status: str | None) -> bool:
    """Ask the transition table, never a hard-coded list (landing moves no job: a
    succeeded one may land; ``farro land --force`` is for the rest)."""
    if status is None or status not in Status.__members__.values():
        return False
    s = Status(status)
    if verb == "land":
        return s is Status.SUCCEEDED
    if verb == "follow_up":
        return s in TERMINAL
    return operator_can_requeue(s) if verb == "requeue" else operator_can_kill(s)


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def refusal(verb: str, status: dict[str, str | None]) -> str:
    """Why ``verb`` acts on none of these jobs, in the core's words (for the notification)."""
    allowed = [STATUS_LABEL.get(s.value, s.value) for s in Status if can(verb, s.value)]
    rule = f"only {_either(allowed)} jobs can be {VERBS[verb][1]}"
    if not status:
        return f"no job under the cursor; {rule}"
    if len(status) == 1:
        ((job_id, st),) = status.items()
        known = "is not read yet" if st is None else phrase(st)
        return f"job {job_id} {known}; {rule}"
    counts = Counter(STATUS_LABEL.get(st, st) if st else "unread" for st in status.values())
    which = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()))
    return f"none of the {len(status)} marked jobs can be ({which}); {rule}"


class Steering(SystemHost):
    """Requeue, kill, land and follow up (hidden in a read-only console), and which
    actions are enabled."""

    readonly: bool
    operator: str
    kill_wait_s: float

    if TYPE_CHECKING:

        def current_job(self) -> str | None: ...

        def no_job(self) -> str: ...

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in STEERING:
            if self.readonly:
                return False
            if not isinstance(self.screen, MainScreen | JobScreen | LogScreen | DiffScreen):
                return False
            ids = self.targets()
            if not any(
                can(action, self.store.status_of(i) or self._status_on_screen()) for i in ids
            ):
                return None  # shown disabled: the table allows it for no target
            return True
        if action == "pause":
            return self.system is not None
        if action == "log" and isinstance(self.screen, LogScreen):
            return False  # the log is open: l would only open it again over itself
        if action in ("log", "diff"):
            return self.current_job() is not None or None
        return True

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """A key whose action is disabled here says why, instead of doing nothing."""
        if isinstance(action, str):
            dest, name, params = parse_action(action)
            on_app = dest == "app" or (not dest and default_namespace in (None, self))
            if on_app and name in STEERING and self.readonly:
                self.notify("read-only console: it changes no job", title=VERBS[name][0])
                return True
            if on_app and name in EXPLAINED and self.check_action(name, params) is None:
                self.explain(name)
                return True
            pane = default_namespace if not dest and not on_app else None
            explain = getattr(pane, "explain", None)
            if pane is not None and explain is not None and pane.check_action(name, params) is None:
                explain(name, params)  # a pane's own key, shown disabled: it says why
                return True
        return await super().run_action(action, default_namespace, namespaces)

    def explain(self, name: str) -> None:
        if name == "log":
            self.notify(self.no_job(), title="Log", severity="warning")
            return
        ids = self.targets()
        status = {i: self.store.status_of(i) or self._status_on_screen() for i in ids}
        self.notify(refusal(name, status), title=f"Cannot {name}", severity="warning")

    def _status_on_screen(self) -> str | None:
        """The status the open job screen shows (its one target), for a job the store lacks."""
        screen = self.screen
        if isinstance(screen, JobScreen) and screen.env is not None:
            return str(screen.env.status)
        return None

    def targets(self) -> list[str]:
        fn = getattr(self.screen, "targets", None)
        return list(fn()) if fn is not None else []

    def action_requeue(self) -> None:
        self.steer("requeue")

    def action_kill(self) -> None:
        self.steer("kill")

    def action_land(self) -> None:
        """Land the targets in order into the branch each was based on, once confirmed."""
        if self.readonly:
            return
        ids = self.targets()
        status = {i: self.store.status_of(i) or self._status_on_screen() for i in ids}
        rows = {i: self.store.rows.get(i) for i in ids}
        landed = {i for i, row in rows.items() if row is not None and row.landed}
        legal = [i for i in ids if can("land", status[i]) and i not in landed]
        skipped = len(ids) - len(legal)
        if not legal:
            self.notify(
                "nothing to land: no selected job has succeeded and not landed yet",
                severity="warning",
            )
            return
        noun = "job" if len(legal) == 1 else "jobs"
        lines = [f"Land {len(legal)} {noun}, in this order?"]
        for i in legal[:4]:
            row = rows[i]
            into = _base_branch(self.root, i)
            title = f" {visible_text(row.title)[:28]}" if row else ""
            to = visible_text(into) if into else "(no branch: farro land --into)"
            lines.append(f"  {i}{title} → {to}")  # the dialog shows text, not markup
        if len(legal) > 4:
            lines.append(f"  … and {len(legal) - 4} more")
        lines.append("Each goes into the branch it was based on (→), as one new commit;")
        lines.append("landing stops at the first job whose work does not apply.")
        if skipped:
            lines.append(f"{skipped} skipped: not succeeded, or landed already (farro land).")

        def answered(ok: bool | None) -> None:
            if ok:
                self.run_land(legal)

        self.push_screen(ConfirmScreen("Land?", "\n".join(lines), yes="Land"), answered)

    def action_follow_up(self) -> None:
        """A note, a confirmation, then ``farro retry`` for the current job."""
        job_id = self.current_job()
        if self.readonly or job_id is None:
            return
        status = self.store.status_of(job_id) or self._status_on_screen()
        if not can("follow_up", status):
            self.notify(f"{job_id} is {status}: follow up a job once it has finished")
            return
        try:
            env = load_job(self.root, job_id)
        except FarroError as exc:
            self.notify(str(exc), severity="error")
            return
        res = env.lifecycle.result
        has_work = bool(res and res.work and any(c.commit for c in res.work.commits))

        def noted(got: FollowUp | None) -> None:
            if got is None:
                return
            start = "its last work commit" if got.from_work else "the job's base, afresh"
            body = "\n".join(
                [
                    f"A new job: {visible_text(env.prompt.title)[:60]}",
                    "its prompt, then your note,",
                    f"  {visible_text(got.note)[:200]}",
                    f"then what failed in its last attempt, starting from {start}.",
                ]
            )

            def answered(ok: bool | None) -> None:
                if ok:
                    self.run_follow_up(job_id, got)

            self.push_screen(ConfirmScreen("Follow up?", body, yes="Create"), answered)

        title = visible_text(env.prompt.title)
        self.push_screen(NoteScreen(job_id, title, has_work=has_work), noted)

    @work(thread=True, group="steer")
    def run_follow_up(self, job_id: str, got: FollowUp) -> None:
        from farro_core.followup import retry

        try:
            child = retry(self.root, job_id, got.note, from_work=got.from_work, by=self.operator)
        except FarroError as exc:
            self.post_message(ActionDone("follow_up", [], [(job_id, str(exc))]))
            return
        self.post_message(ActionDone("follow_up", [child.id], []))

    @work(thread=True, group="steer")
    def run_land(self, ids: list[str]) -> None:
        """Off the UI thread: git runs for each job."""
        from farro_core.land import LandStopped, land_all

        try:
            land_all(self.root, ids, by=self.operator)
            self.post_message(ActionDone("land", ids, []))
        except LandStopped as exc:
            done = ids[: len(exc.done)]
            self.post_message(ActionDone("land", done, [(exc.stopped_at, str(exc))]))
        except FarroError as exc:
            self.post_message(ActionDone("land", [], [(ids[0], str(exc))]))

    def steer(self, verb: str) -> None:
        """Confirm, then act on every target the table allows; say what was skipped."""
        if self.readonly:
            return
        ids = self.targets()
        status = {i: self.store.status_of(i) or self._status_on_screen() for i in ids}
        legal = [i for i in ids if can(verb, status[i])]
        skipped = [i for i in ids if i not in legal]
        if not legal:
            self.notify(refusal(verb, status), title=f"Cannot {verb}", severity="warning")
            return
        title, _ = VERBS[verb]
        noun = "job" if len(legal) == 1 else "jobs"
        lines = [f"{title} {len(legal)} {noun}?"]
        for i in legal[:4]:
            row = self.store.rows.get(i)
            label = f" {visible_text(row.title)[:28]}" if row else ""
            lines.append(f"  {i}{label} ({status[i]})")
        if len(legal) > 4:
            lines.append(f"  … and {len(legal) - 4} more")
        screen = self.screen
        hidden = screen.hidden_marks() if isinstance(screen, MainScreen) else 0
        if hidden:
            are = "job is" if hidden == 1 else "jobs are"
            lines.append(f"{hidden} marked {are} hidden by the filter or tab.")
        if skipped:
            their = "its" if len(skipped) == 1 else "their"
            lines.append(f"{len(skipped)} skipped: {verb} is not allowed for {their} status.")
        running = [i for i in legal if status[i] == "in-progress"]
        if verb == "kill" and running:
            whose = (
                "its worker is asked to stop it"
                if len(running) == 1
                else ("their workers are asked to stop them")
            )
            lines.append(f"{len(running)} running: {whose}.")

        def answered(ok: bool | None) -> None:
            if ok:
                self.run_steer(verb, legal)

        self.push_screen(ConfirmScreen(f"{title}?", "\n".join(lines), yes=title), answered)

    @work(thread=True, group="steer")
    def run_steer(self, verb: str, ids: list[str]) -> None:
        """Off the UI thread: a kill of running jobs waits for their workers, all at once."""
        done: list[str] = []
        refused: list[tuple[str, str]] = []
        if verb == "requeue":
            for job_id in ids:
                try:
                    operations.requeue(self.root, job_id, by=self.operator)
                    done.append(job_id)
                except FarroError as exc:
                    refused.append((job_id, str(exc)))
            self.post_message(ActionDone(verb, done, refused))
            return
        waiting: list[str] = []

        def asked(running: list[str]) -> None:
            waiting.extend(running)
            self.call_from_thread(self._killing, running, True)

        try:
            results = operations.kill_many(
                self.root, ids, by=self.operator, wait_s=self.kill_wait_s, on_requested=asked
            )
        finally:
            if waiting:
                self.call_from_thread(self._killing, waiting, False)
        for res in results:
            if res.outcome == "refused":
                refused.append((res.job_id, str(res.error)))
            else:
                done.append(res.job_id)
        self.post_message(ActionDone(verb, done, refused))

    def _killing(self, ids: list[str], on: bool) -> None:
        main = self._main()
        if main is not None:
            (main.queue.killing.update if on else main.queue.killing.difference_update)(ids)
            main.queue.refresh()
        if on:
            n = len(ids)
            self.notify(
                f"kill requested for {n} running job{'s' * (n != 1)}; waiting for the worker…",
                title="Kill",
            )

    @on(ActionDone)
    def _action_done(self, msg: ActionDone) -> None:
        _, past = VERBS[msg.verb]
        if msg.done:
            n = len(msg.done)
            what = msg.done[0] if n == 1 else f"{n} jobs"
            self.notify(f"{past} {what}", title=VERBS[msg.verb][0])
        for job_id, why in msg.refused[:3]:
            self.notify(why, title=f"{msg.verb} refused: {job_id}", severity="warning", timeout=8)
        if len(msg.refused) > 3:
            self.notify(f"… and {len(msg.refused) - 3} more refused", severity="warning")
        main = self._main()
        if main is not None:
            main.queue.marks.difference_update(msg.done)
        self.feeder.poke()
        if msg.verb == "land" and msg.done:
            self.feeder.want(msg.done)  # job.json changed in place in done/: read it again
        for screen in self.screen_stack:
            if isinstance(screen, JobScreen):
                screen.reload()


def _base_branch(root: Root, job_id: str) -> str | None:
    """The branch a job's work lands into by default (None: unknown, or unreadable)."""
    try:
        res = load_job(root, job_id).lifecycle.result
    except FarroError:
        return None
    return res.work.base_branch if res is not None and res.work is not None else None
